// What `dump`, `String(reflecting:)` and swift-testing's failure messages see of an event
// loop: a summary, for the reason Runtime+Reflection.swift gives (its timer wheel is
// `~Copyable`, and reflecting it traps).

extension SpindleEventLoop: CustomReflectable {
    /// The lifecycle state, not the internals.
    public var customMirror: Mirror {
        Mirror(self, children: ["isShutDown": isShutDown], displayStyle: .class)
    }
}
