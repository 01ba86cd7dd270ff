// Per-workload counts for the progress lines: rounds, units and one workload-specific figure.
// All relaxed: statistics, read by the watchdog thread for printing, ordering nothing.

import Synchronization

final class MixCounters: Sendable {
    let kind: MixKind
    let rounds = Atomic<UInt64>(0)
    let units = Atomic<UInt64>(0)
    let cancelled = Atomic<UInt64>(0)
    /// Yields, cross-worker deliveries, bytes echoed; for timers the largest lateness in µs.
    let extra = Atomic<UInt64>(0)

    init(kind: MixKind) { self.kind = kind }

    func add(units n: Int, cancelled c: Int = 0, extra e: UInt64 = 0) {
        units.add(UInt64(n), ordering: .relaxed)
        if c > 0 { cancelled.add(UInt64(c), ordering: .relaxed) }
        if e > 0 { extra.add(e, ordering: .relaxed) }
    }

    func roundDone() { rounds.add(1, ordering: .relaxed) }

    /// Raises the extra figure to `value` if it is larger (for a maximum).
    func raiseExtra(to value: UInt64) { extra.max(value, ordering: .relaxed) }

    var summary: String {
        var text = "\(kind.rawValue) \(human(Double(rounds.load(ordering: .relaxed)))) rounds "
            + "\(human(Double(units.load(ordering: .relaxed)))) \(kind.unitName)"
        let c = cancelled.load(ordering: .relaxed)
        if c > 0 { text += " (\(human(Double(c))) cancelled)" }
        if let name = kind.extraName { text += ", \(human(Double(extra.load(ordering: .relaxed)))) \(name)" }
        return text
    }
}

/// The counters of every workload in the run.
final class Stats: Sendable {
    let mixes: [MixCounters]
    /// Executor jobs run by the runtimes and loops of cycles that have ended (each cycle's
    /// `metrics().jobsRun` after its shutdown).
    let finishedJobs = Atomic<UInt64>(0)
    let cycles = Atomic<UInt64>(0)

    init(kinds: [MixKind]) { mixes = kinds.map(MixCounters.init) }

    func counters(_ kind: MixKind) -> MixCounters { mixes.first { $0.kind == kind }! }

    var summary: String { mixes.map(\.summary).joined(separator: " | ") }
}
