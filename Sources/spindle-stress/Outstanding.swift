// What the run is waiting for right now: every round of every workload, and every shutdown,
// registers here while it runs. The watchdog fails the run when the oldest entry is older than
// `--watchdog` seconds, and prints them all, oldest first: a hang then names what hung.

import Synchronization

final class Outstanding: Sendable {
    struct Entry: Sendable {
        var what: String
        var phase: String
        let since: UInt64
        /// Where the entry's tasks are, described when a hang is reported.
        var probe: Probe?
    }

    private let entries = Locked<[UInt64: Entry]>([:])
    private let nextID = Atomic<UInt64>(0)

    /// Registers `what`; pass the token to `update` and `done`.
    func begin(_ what: String, phase: String = "started") -> UInt64 {
        // Relaxed: only uniqueness matters; the mutex orders the entries.
        let id = nextID.add(1, ordering: .relaxed).newValue
        let entry = Entry(what: what, phase: phase, since: monotonicNanos(), probe: nil)
        entries.withLock { $0[id] = entry }
        return id
    }

    /// Records how far `token`'s work has got.
    func update(_ token: UInt64, phase: String) {
        entries.withLock { $0[token]?.phase = phase }
    }

    /// Attaches `probe`, whose description the hang diagnostic prints.
    func attach(_ token: UInt64, _ probe: Probe) {
        entries.withLock { $0[token]?.probe = probe }
    }

    func done(_ token: UInt64) {
        _ = entries.withLock { $0.removeValue(forKey: token) }
    }

    /// The age in seconds of the oldest entry (0 when there is none).
    var oldestAge: Double {
        let now = monotonicNanos()
        let oldest = entries.withLock { $0.values.map(\.since).min() }
        return oldest.map { Double(now &- $0) / 1e9 } ?? 0
    }

    /// The entries, oldest first, at most `limit` of them.
    func dump(limit: Int = 60) -> String {
        let now = monotonicNanos()
        let all = entries.withLock { Array($0.values) }.sorted { $0.since < $1.since }
        var lines = all.prefix(limit).map {
            "  " + fixed(Double(now &- $0.since) / 1e9, 3).leftPadded(to: 9) + " s  \($0.what) (\($0.phase))"
                + ($0.probe.map { "\n              tasks: " + $0.description } ?? "")
        }
        if all.count > limit { lines.append("  ... and \(all.count - limit) more") }
        return "outstanding (\(all.count)):\n" + (lines.isEmpty ? "  nothing" : lines.joined(separator: "\n"))
    }
}
