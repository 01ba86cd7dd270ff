// Timers: 16-128 spawned tasks per round, each waiting once for 0-3 ms in one of four ways
// (`Spindle.sleep(for:)`, `Spindle.sleep(until:)`, `Task.sleep(for:)`, or a sleep inside a
// `withTimeout` whose deadline is shorter or longer than the sleep). A quarter of them are
// cancelled at a random point, so cancellations race with the timers firing.
//
// Invariants: every timer task ends exactly once; a sleep that returns has lasted at least its
// duration (never early); a `withTimeout` that throws `TimeoutError` did so no earlier than its
// deadline and only after its operation ended, and one that returns a value returned the
// operation's, which slept its whole duration; `CancellationError` comes only to a timer that
// was cancelled; nothing else is thrown. The largest lateness seen is printed (not checked:
// lateness on a loaded machine is the kernel's to decide).

import Spindle
import Synchronization

enum TimerMix {
    enum Kind: CaseIterable, Sendable { case sleepFor, sleepUntil, taskSleep, timeout }

    struct Plan: Sendable {
        let kind: Kind
        let micros: Int
        /// The `withTimeout` deadline.
        let timeoutMicros: Int
        let cancelled: Bool
    }

    static func run(_ round: Round) async {
        var rng = round.rng()
        let plans = (0..<rng.int(16...128)).map { _ in
            let micros = rng.int(0...3_000)
            return Plan(
                kind: Kind.allCases[rng.int(0...3)], micros: micros,
                timeoutMicros: rng.oneIn(2) ? rng.int(0...micros) : micros + rng.int(2_000...20_000),
                cancelled: rng.oneIn(4))
        }
        let ledger = Ledger(count: plans.count, round: round)
        round.phase("\(plans.count) timers")
        var tasks: [Task<Int, Never>] = []
        var cancellers: [Task<Void, Never>] = []
        for (index, plan) in plans.enumerated() {
            guard let task = round.spawn({ await wait(index, plan, ledger, round) }) else { break }
            tasks.append(task)
            if plan.cancelled, let canceller = round.cancelLater(task, &rng) { cancellers.append(canceller) }
        }
        var lateness = 0
        for task in tasks { lateness = max(lateness, await task.value) }
        for canceller in cancellers { await canceller.value }
        if tasks.count == plans.count { ledger.expectAllRanOnce("\(plans.count) timers") }
        round.counters.add(units: tasks.count, cancelled: plans.filter(\.cancelled).count)
        round.counters.raiseExtra(to: UInt64(lateness))
    }

    /// Waits as `plan` says and checks how it ended; returns the lateness in µs (0 if it did
    /// not sleep its whole duration).
    private static func wait(_ index: Int, _ plan: Plan, _ ledger: Ledger, _ round: Round) async -> Int {
        defer { ledger.mark(index) }
        let duration = Duration.microseconds(plan.micros)
        let start = ContinuousClock.now
        func elapsed() -> Duration { ContinuousClock.now - start }
        func unexpected(_ error: any Error) -> Never {
            round.fail("timer \(index) (\(plan.kind), \(plan.micros) µs) threw \(error)")
        }
        func checkCancellation(_ error: any Error) {
            guard error is CancellationError else { unexpected(error) }
            if !plan.cancelled && !round.cycleEndsAbruptly {
                round.fail("timer \(index) (\(plan.kind), \(plan.micros) µs) threw CancellationError but nobody cancelled it")
            }
        }
        func checkNotEarly(_ what: String, _ bound: Duration) -> Int {
            let waited = elapsed()
            if waited < bound {
                round.fail("timer \(index): \(what) ended after \(waited), before its \(bound)")
            }
            return Int((waited - bound) / .microseconds(1))
        }
        do {
            switch plan.kind {
            case .sleepFor:
                try await Spindle.sleep(for: duration)
            case .sleepUntil:
                let deadline = start + duration
                try await Spindle.sleep(until: deadline)
                if ContinuousClock.now < deadline { round.fail("timer \(index): sleep(until:) woke before its deadline") }
            case .taskSleep:
                try await Task.sleep(for: duration)
            case .timeout:
                let box = DoneFlag()
                do {
                    let value = try await withTimeout(.microseconds(plan.timeoutMicros)) { () async throws -> Int in
                        defer { box.set() }
                        try await Spindle.sleep(for: duration)
                        return index
                    }
                    if value != index { round.fail("timer \(index): withTimeout returned \(value)") }
                    return checkNotEarly("withTimeout's operation", duration)
                } catch is TimeoutError {
                    if !box.isSet { round.fail("timer \(index): withTimeout threw TimeoutError before its operation ended") }
                    _ = checkNotEarly("withTimeout (TimeoutError)", .microseconds(plan.timeoutMicros))
                    return 0
                }
            }
            return checkNotEarly("\(plan.kind)", duration)
        } catch {
            checkCancellation(error)
            return 0
        }
    }
}

/// A flag set once by a task and read by another after awaiting it.
final class DoneFlag: Sendable {
    private let value = Atomic<Bool>(false)
    /// Release/acquire: the reader sees the flag's writer's work; `withTimeout` awaiting its
    /// operation already orders them, but the check must not rely on what it checks.
    func set() { value.store(true, ordering: .releasing) }
    var isSet: Bool { value.load(ordering: .acquiring) }
}
