// W7 timers: 100,000 tasks (10,000 in quick mode), all started at once, each sleeps once for a
// fixed-seed random whole number of milliseconds in 1...100, with each runtime's natural sleep:
// `Spindle.sleep` on a Spindle runtime or event loop (a wheel entry holding the continuation),
// `Task.sleep` elsewhere (swift-default: Dispatch's timers; swift-nio: the event loop's
// scheduled tasks, through NIO's takeover of the global executor). On Spindle, `Task.sleep` is
// measured too, in a separate child (`task_sleep_*` metrics): Swift 6.3 routes it to the same
// wheels, through a helper task per sleep. (W3 does the same with channels.)
//
// Metrics: total_ms, from before the first spawn to the last wake-up (ideal: a little over the
// longest sleep, 100 ms), and the lateness of each sleep, how long after its deadline (the
// instant the task asked for the sleep, plus the delay) the task ran again: p50, p99 and max.
// A sleep that returns before its deadline fails the check.
//
// The tasks are unstructured (`Task(executorPreference:)`, as W4 and W11 spawn), not children
// of a task group: they finish in deadline order, far from creation order, and Swift's runtime
// searches a group's child list from the oldest child for each one that finishes
// (shared/design.md, "Hazards"), which made a 100,000-child group cost 5-20 s here whatever the
// timers. The last task to finish resumes the root task.

import Spindle
import Synchronization

enum Timers {
    static let longestSleepMilliseconds = 100

    enum Sleep { case task, spindle }
    /// Set to `task` in a Spindle child's environment to measure `Task.sleep` instead.
    static let sleepVariable = "SPINDLE_BENCH_W7_SLEEP"

    static func run(tasks: Int, executor: (any TaskExecutor)?, sleep: Sleep) async throws -> [Metric] {
        var generator = SplitMix64(state: 0x5EED_0007)
        let plan = (0..<tasks).map { _ in Int.random(in: 1...longestSleepMilliseconds, using: &generator) }
        let log = LatenessLog(count: tasks)

        let start = ContinuousClock.now
        await withUnsafeContinuation { (done: UnsafeContinuation<Void, Never>) in
            log.whenAllRecorded = done
            for (index, milliseconds) in plan.enumerated() {
                Task(executorPreference: executor) {
                    let delay = Duration.milliseconds(milliseconds)
                    let asked = ContinuousClock.now
                    do {
                        switch sleep {
                        case .task: try await Task.sleep(for: delay)
                        case .spindle: try await Spindle.sleep(for: delay)
                        }
                    } catch {
                        log.record(nil, at: index)
                        return
                    }
                    log.record(asked.duration(to: .now) - delay, at: index)
                }
            }
        }
        let elapsed = start.duration(to: .now)

        let sorted = try log.lateness().sorted()
        try check(sorted[0] >= .zero, "W7: a sleep ended \((Duration.zero - sorted[0]).milliseconds) ms before its deadline")
        return [
            Metric(name: "total_ms", value: elapsed.milliseconds),
            Metric(name: "lateness_p50_ms", value: percentile(sorted, 0.50)),
            Metric(name: "lateness_p99_ms", value: percentile(sorted, 0.99)),
            Metric(name: "lateness_max_ms", value: sorted[sorted.count - 1].milliseconds),
        ]
    }

    /// Nearest-rank percentile of sorted durations, in milliseconds.
    private static func percentile(_ sorted: [Duration], _ fraction: Double) -> Double {
        let rank = Int((Double(sorted.count) * fraction).rounded(.up)) - 1
        return sorted[max(0, min(sorted.count - 1, rank))].milliseconds
    }
}

/// One lateness slot per task, written once by that task; the last task to record resumes the
/// waiter.
final class LatenessLog: @unchecked Sendable {
    // @unchecked Sendable: slot i is written only by task i, before its decrement of `remaining`
    // (acquiring-and-releasing); the waiter reads the slots only after the last decrement, so
    // every write happens before the reads. `whenAllRecorded` is set before the first task is
    // spawned and read only by the task whose decrement reaches zero.
    private let slots: UnsafeMutableBufferPointer<Duration?>
    private let remaining: Atomic<Int>
    var whenAllRecorded: UnsafeContinuation<Void, Never>?

    init(count: Int) {
        slots = .allocate(capacity: count)
        slots.initialize(repeating: nil)
        remaining = Atomic(count)
    }

    deinit { slots.deallocate() }

    /// Records task `index`'s lateness (nil: its sleep threw).
    func record(_ lateness: Duration?, at index: Int) {
        slots[index] = lateness
        if remaining.subtract(1, ordering: .acquiringAndReleasing).newValue == 0 {
            whenAllRecorded?.resume()
        }
    }

    /// Every task's lateness; throws if a sleep failed.
    func lateness() throws -> [Duration] {
        var values: [Duration] = []
        values.reserveCapacity(slots.count)
        for (index, slot) in slots.enumerated() {
            guard let slot else { throw WorkloadFailure(description: "W7: the sleep of task \(index) threw") }
            values.append(slot)
        }
        return values
    }
}
