// A snapshot of a runtime's counters: every worker's (ExecutorCounters.swift) and the
// runtime-wide ones.


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
    /// The I/O reactor the workers run on (io_uring, or epoll where io_uring is refused or
    /// was not chosen; see ``ReactorChoice``).
    public var reactor: ReactorBackend

    /// Sum of `jobsRun` over all workers.
    public var jobsRun: UInt64 { workers.reduce(0) { $0 + $1.jobsRun } }
    /// Sum of `steals` over all workers.
    public var steals: UInt64 { workers.reduce(0) { $0 + $1.steals } }
}
