// The counters of one thread that runs jobs (a runtime's worker, or an event loop), and the
// public snapshot of them.
//
// Each counter is written by that thread only (SingleWriterCounter.swift), except for its
// ring's, which the ring writes (RingCounters.swift). Readers load them relaxed.

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
    /// The size of the timer wheel, stored (not bumped) whenever it changes; for the worker's
    /// own wheel under its lock, so a hand-off by the watch stores in order too.
    let timersPending = Atomic<UInt64>(0)
    /// The counters of the executor's ring, written by the ring (RingCounters.swift).
    let ring = RingCounters()
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
    /// The reactor of this worker or loop. On epoll, `cqesReaped` counts readiness events
    /// handled, `operationsInFlight` tasks waiting for readiness, and `sqesSubmitted` and
    /// `cqesReapedByWatch` stay 0.
    public var reactor: ReactorBackend = .ioUring
    /// Completions of its ring that the blocked-worker watch reaped while this worker was stuck
    /// in a job, so that the tasks they resumed ran on other workers (included in
    /// `cqesReaped`).
    public var cqesReapedByWatch: UInt64
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
            sqesSubmitted: ring.sqesSubmitted.load(ordering: .relaxed),
            cqesReaped: ring.cqesReaped.load(ordering: .relaxed),
            operationsInFlight: ring.operationsInFlight.load(ordering: .relaxed),
            cqesReapedByWatch: ring.cqesReapedByWatch.load(ordering: .relaxed))
    }
}
