// What `dump`, `String(reflecting:)` and swift-testing's failure messages see of a runtime or
// an event loop.
//
// Both hold a timer wheel, which is `~Copyable`, in a stored property (the event loop directly,
// the runtime through its workers). Swift's default reflection copies every field it shows, and
// copying a noncopyable field traps (`__swift_cannot_copy_noncopyable_type`): a failed
// `#expect(SpindleEventLoop.current == nil)` crashed the test process that way. So both present a
// summary instead of their fields.

extension Runtime: CustomReflectable {
    /// The worker count and lifecycle state, not the internals.
    public var customMirror: Mirror {
        Mirror(self, children: ["workerCount": workerCount, "isShutDown": isShutDown], displayStyle: .class)
    }
}
