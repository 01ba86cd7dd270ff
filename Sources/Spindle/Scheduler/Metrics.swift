// Per-worker counters, read as a snapshot from any thread.
//
// Each counter is written by exactly one thread (its worker) with a relaxed load and a relaxed
// store: a plain move on x86-64 and arm64, no read-modify-write, no lock. Readers load them
// relaxed; a snapshot is therefore approximate across counters (each value is exact for some
// recent moment), which is what counters are for.

import Synchronization

final class WorkerCounters: Sendable {
    let jobsRun = Atomic<UInt64>(0)
    let steals = Atomic<UInt64>(0)
    let jobsStolen = Atomic<UInt64>(0)
    let lifoHits = Atomic<UInt64>(0)
    let injectorPulls = Atomic<UInt64>(0)
    let parks = Atomic<UInt64>(0)
    let wakeupsSent = Atomic<UInt64>(0)
    let overflows = Atomic<UInt64>(0)
    let timersFired = Atomic<UInt64>(0)
    let queueDepthHighWater = Atomic<UInt64>(0)
    let sqesSubmitted = Atomic<UInt64>(0)
    let cqesReaped = Atomic<UInt64>(0)
    /// The size of the timer wheel, stored (not bumped) whenever it changes; for the worker's
    /// own wheel under its lock, so a hand-off by the watch stores in order too.
    let timersPending = Atomic<UInt64>(0)
    /// The ring's operations in flight, stored (not bumped) by the ring after each submission
    /// and reap (Ring.swift). Relaxed like the rest: a reader learns that a request has reached
    /// the kernel, not anything about memory the ring wrote.
    let operationsInFlight = Atomic<UInt64>(0)
}

extension Atomic where Value == UInt64 {
    /// Single-writer increment: relaxed load + relaxed store (see the file comment).
    @inline(__always)
    func bump(by amount: UInt64 = 1) {
        store(load(ordering: .relaxed) &+ amount, ordering: .relaxed)
    }

    /// Single-writer maximum.
    @inline(__always)
    func raise(to value: UInt64) {
        if value > load(ordering: .relaxed) { store(value, ordering: .relaxed) }
    }
}

/// A snapshot of one worker's counters.
public struct WorkerMetrics: Sendable, Equatable {
    /// Jobs (task starts and resumptions) this worker ran.
    public var jobsRun: UInt64
    /// Successful steals from other workers' queues.
    public var steals: UInt64
    /// Jobs taken by those steals.
    public var jobsStolen: UInt64
    /// Jobs run from the LIFO slot.
    public var lifoHits: UInt64
    /// Times this worker took work from the global injection queue.
    public var injectorPulls: UInt64
    /// Times this worker parked in its ring.
    public var parks: UInt64
    /// Parked workers this worker woke.
    public var wakeupsSent: UInt64
    /// Times this worker's full local queue made it spill new jobs to the injection queue.
    public var overflows: UInt64
    /// Timers this worker fired (`Task.sleep` helper jobs and `Spindle.sleep` wake-ups; a
    /// cancelled sleep whose entry reached its deadline unswept counts too).
    public var timersFired: UInt64
    /// Timers set and not yet fired on this worker's own wheel (timers set from other threads
    /// sit in the runtime's shared wheel and are not counted). A cancelled `Spindle.sleep`
    /// counts until the wheel sweeps it (see TimerWheel.swift). Not reset at shutdown.
    public var timersPending: UInt64
    /// The most jobs its local queue ever held at once.
    public var queueDepthHighWater: UInt64
    /// io_uring requests (SQEs) its ring submitted, the park's eventfd read included.
    public var sqesSubmitted: UInt64
    /// io_uring completions (CQEs) its ring reaped.
    public var cqesReaped: UInt64
    /// I/O operations (reads, writes, accepts...) submitted on its ring and not yet completed,
    /// as of the ring's last submission or reap. The park's own wake-up read and cancel
    /// requests are not counted.
    public var operationsInFlight: UInt64
}

/// A snapshot of a runtime's counters.
public struct RuntimeMetrics: Sendable {
    /// One entry per worker, in worker order.
    public var workers: [WorkerMetrics]
    /// Jobs waiting in the global injection queue when the snapshot was taken.
    public var injectorDepth: Int
    /// Parked workers woken by threads that are not workers of this runtime.
    public var foreignWakeups: UInt64
    /// Jobs enqueued by threads that are not workers of this runtime (tasks started or resumed
    /// from outside: blocking-pool results, the process's I/O loop, other executors), and,
    /// once shutdown has stopped the workers, every job enqueued at all.
    public var remoteEnqueues: UInt64
    /// Tasks started with `spawn` that have not finished yet.
    public var liveSpawnedTasks: Int
    /// Times the blocked-worker watch found a worker stuck in one job past its threshold.
    public var blockedWorkerReports: UInt64

    /// Sum of `jobsRun` over all workers.
    public var jobsRun: UInt64 { workers.reduce(0) { $0 + $1.jobsRun } }
    /// Sum of `steals` over all workers.
    public var steals: UInt64 { workers.reduce(0) { $0 + $1.steals } }
}

extension WorkerCounters {
    var snapshot: WorkerMetrics {
        WorkerMetrics(
            jobsRun: jobsRun.load(ordering: .relaxed),
            steals: steals.load(ordering: .relaxed),
            jobsStolen: jobsStolen.load(ordering: .relaxed),
            lifoHits: lifoHits.load(ordering: .relaxed),
            injectorPulls: injectorPulls.load(ordering: .relaxed),
            parks: parks.load(ordering: .relaxed),
            wakeupsSent: wakeupsSent.load(ordering: .relaxed),
            overflows: overflows.load(ordering: .relaxed),
            timersFired: timersFired.load(ordering: .relaxed),
            timersPending: timersPending.load(ordering: .relaxed),
            queueDepthHighWater: queueDepthHighWater.load(ordering: .relaxed),
            sqesSubmitted: sqesSubmitted.load(ordering: .relaxed),
            cqesReaped: cqesReaped.load(ordering: .relaxed),
            operationsInFlight: operationsInFlight.load(ordering: .relaxed))
    }
}
