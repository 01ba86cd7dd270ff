// A timer wheel that any thread may add to: the runtime's shared wheel (timers set from other
// threads, and those moved off a blocked worker) and an event loop's remote wheel. Its owner
// (any worker, or the loop) fires what is due.
//
// The wheel sits behind a lock; `deadline` mirrors its earliest deadline so that owners can
// decide without the lock whether to look. It is written inside the lock with release and read
// with acquire: an owner that reads a deadline and then takes the lock finds the entry. A stale
// value only delays a look until the owner's next check or park (and `insert` reports a new
// earliest deadline, so the caller can wake a parked owner).

import Synchronization

final class SharedTimerWheel: Sendable {
    private let wheel: Lock<TimerWheel>
    private let earliest = Atomic<UInt64>(.max)

    /// A wheel on `clock` (CLOCK_MONOTONIC, or a virtual loop's clock: TimerWheel's `clock`).
    init(clock: @escaping @Sendable () -> UInt64 = monotonicNanos) {
        wheel = Lock(TimerWheel(clock: clock))
    }

    /// The earliest deadline (CLOCK_MONOTONIC ns), `.max` when empty.
    var deadline: UInt64 { earliest.load(ordering: .acquiring) }

    /// Adds a timer; returns whether it became the earliest.
    @discardableResult
    func insert(_ action: TimerAction, deadline: UInt64) -> Bool {
        wheel.withLock { heap in
            let previous = heap.nextDeadline
            heap.insert(action, deadline: deadline)
            earliest.store(heap.nextDeadline, ordering: .releasing)
            return deadline < previous
        }
    }

    /// Removes the timers due at `now`, in firing order.
    func popDue(now: UInt64) -> [TimerAction] {
        if deadline > now { return [] }
        return wheel.withLock { heap in
            var due: [TimerAction] = []
            while let action = heap.popDue(now: now) { due.append(action) }
            earliest.store(heap.nextDeadline, ordering: .releasing)
            return due
        }
    }

    /// Removes every timer, with its deadline (shutdown).
    func removeAll() -> [TimedAction] {
        wheel.withLock { heap in
            defer { earliest.store(.max, ordering: .releasing) }
            return heap.removeAll()
        }
    }
}
