// The blocking pool's counters and their public snapshot.
//
// Every counter is an independent relaxed atomic: it orders nothing, it only counts. Several
// threads write each one (submitters, pool threads), so increments are read-modify-writes and
// maxima are compare-and-swap loops that only write when the value grows. A snapshot is
// approximate across counters (each value is exact for some recent moment).

import Synchronization

final class PoolCounters: Sendable {
    /// Jobs in the queue and not yet started or cancelled.
    let queued = Atomic<Int>(0)
    let queueHighWater = Atomic<Int>(0)
    let threadsHighWater = Atomic<Int>(0)
    /// Threads started that have not yet looked at the queue (the growth monitor's hint).
    let starting = Atomic<Int>(0)
    let started = Atomic<UInt64>(0)
    let completed = Atomic<UInt64>(0)
    let cancelled = Atomic<UInt64>(0)
    let abandoned = Atomic<UInt64>(0)

    func jobQueued() {
        let depth = queued.add(1, ordering: .relaxed).newValue
        queueHighWater.raiseShared(to: depth)
    }

    func jobLeftQueue() {
        queued.subtract(1, ordering: .relaxed)
    }
}

extension Atomic where Value == Int {
    /// Raises the value to `value` if that is larger; safe with many writers.
    func raiseShared(to value: Int) {
        var current = load(ordering: .relaxed)
        while value > current {
            let (exchanged, original) = compareExchange(expected: current, desired: value, ordering: .relaxed)
            if exchanged { return }
            current = original
        }
    }
}

/// A snapshot of a ``BlockingPool``'s counters.
public struct BlockingPoolMetrics: Sendable, Equatable {
    /// Pool threads currently alive (running a job or idle).
    public var threadsAlive: Int
    /// Of those, the threads waiting for a job.
    public var threadsIdle: Int
    /// The most pool threads that were ever alive at once.
    public var threadsHighWater: Int
    /// Jobs waiting for a thread now.
    public var jobsQueued: Int
    /// The most jobs that ever waited at once.
    public var queueDepthHighWater: Int
    /// Jobs a pool thread started.
    public var jobsStarted: UInt64
    /// Started jobs that returned (their value or error went back to the awaiting task).
    public var jobsCompleted: UInt64
    /// Jobs removed before they started: their task was cancelled, or the pool shut down.
    public var jobsCancelled: UInt64
    /// Jobs still running when a shutdown's grace period ended; their threads were left to
    /// finish them alone.
    public var jobsAbandoned: UInt64
}
