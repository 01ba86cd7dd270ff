// The outcome of shutting down a runtime or an event loop (their shutdown paths: Runtime+Lifecycle.swift,
// SpindleEventLoop+Lifecycle.swift), and how it is logged.

import Logging

/// What a shutdown had to leave behind.
public struct ShutdownReport: Sendable, Equatable {
    /// Spawned tasks still running when the grace period ended. They were cancelled; their
    /// remaining jobs run on Swift's global executor instead of this runtime.
    public var abandonedTasks: Int
    /// Workers still inside a job when shutdown gave up waiting for them; their threads exit
    /// as soon as that job returns.
    public var stuckWorkers: Int
    /// Blocking-pool jobs still running when the grace period ended (see
    /// ``BlockingPoolShutdownReport/abandonedJobs``).
    public var abandonedBlockingJobs: Int = 0
}

extension ShutdownReport {
    /// Logs the outcome of `executor`'s shutdown: a debug message when nothing was left behind, a
    /// warning naming what was (the tasks still alive when the grace period ended, from the
    /// task dump taken then, and the stuck workers and abandoned blocking jobs).
    func log(to logger: Logger, executor: String, leftBehind: [TaskSnapshot], gracePeriod: Duration?) {
        var metadata: Logger.Metadata = [
            "executor": "\(executor)",
            "abandoned_tasks": "\(abandonedTasks)",
            "stuck_workers": "\(stuckWorkers)",
            "abandoned_blocking_jobs": "\(abandonedBlockingJobs)",
        ]
        if let gracePeriod { metadata["grace_period"] = "\(gracePeriod)" }
        guard abandonedTasks > 0 || stuckWorkers > 0 || abandonedBlockingJobs > 0 else {
            logger.debug("spindle shut down cleanly", metadata: metadata)
            return
        }
        if !leftBehind.isEmpty {
            metadata["tasks"] = .array(leftBehind.map { .string($0.description) })
        }
        logger.warning("spindle shut down leaving work behind (it goes on outside the executor)", metadata: metadata)
    }
}
