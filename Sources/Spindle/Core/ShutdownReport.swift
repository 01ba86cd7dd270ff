// The outcome of shutting down a runtime or an event loop (their shutdown paths: Runtime+Lifecycle.swift,
// SpindleEventLoop+Lifecycle.swift).

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
