// A Spindle runtime or event loop as a ServiceLifecycle `Service`.
//
// A `ServiceGroup` starts its services in the order they are listed and, on graceful shutdown,
// signals them in reverse order, waiting for each to return before it signals the one before.
// So the service that owns the runtime is listed first: every service after it, which runs its
// work on the runtime, has finished (drained its connections, flushed its queues) by the time
// the runtime's turn comes, and only then does the runtime cancel what is left, give it its
// grace period, and stop its workers. Listed anywhere else, the runtime would stop under
// services that still use it (their work would go on, but on Swift's global executor).
//
// The service returns only after its own turn: ServiceGroup treats a service that returns
// before it was asked to as a failure ("finished unexpectedly"). Cancellation (the group
// cancelled, or its graceful-shutdown deadline passed) also shuts the runtime down, with the
// same grace period: shutdown is bounded by it whatever the tasks do, so this service cannot
// hang the group.

import Logging
import ServiceLifecycle
import Spindle

/// A `Service` that owns a Spindle `Runtime` (or `SpindleEventLoop`) and shuts it down when the
/// service group's graceful shutdown reaches it.
///
/// List it **first** in the group: the group shuts services down in reverse order, so the
/// services listed after it, which use the runtime, finish before it stops.
///
/// ```swift
/// let runtime = try Runtime()
/// let group = ServiceGroup(
///     services: [RuntimeService(runtime), TCPServerService(listener: listener, on: runtime) { ... }],
///     gracefulShutdownSignals: [.sigterm, .sigint],
///     logger: logger)
/// try await group.run()
/// ```
public struct RuntimeService: Service, CustomStringConvertible {
    /// The executor this service owns: a `Runtime` or an `SpindleEventLoop`.
    public let executor: any TaskExecutor
    /// How long the shutdown waits for the runtime's remaining tasks (and blocking jobs) after
    /// cancelling them, before it stops the workers.
    public let gracePeriod: Duration
    private let shutdown: @Sendable (Duration) async -> ShutdownReport
    private let logger: Logger
    private let name: String

    /// Owns `runtime`: when the group's graceful shutdown reaches this service (or the group is
    /// cancelled), the service calls `Runtime/shutdown(gracePeriod:)` and returns.
    public init(_ runtime: Runtime, gracePeriod: Duration = .seconds(10), logger: Logger = Logger(label: "spindle")) {
        self.init(
            runtime, "RuntimeService(runtime, \(runtime.workerCount) workers)", gracePeriod, logger,
            shutdown: { await runtime.shutdown(gracePeriod: $0) })
    }

    /// Owns `loop`, as ``init(_:gracePeriod:logger:)-(Runtime,_,_)`` owns a runtime.
    public init(_ loop: SpindleEventLoop, gracePeriod: Duration = .seconds(10), logger: Logger = Logger(label: "spindle")) {
        self.init(
            loop, "RuntimeService(event loop)", gracePeriod, logger,
            shutdown: { await loop.shutdown(gracePeriod: $0) })
    }

    private init(
        _ executor: any TaskExecutor, _ name: String, _ gracePeriod: Duration, _ logger: Logger,
        shutdown: @escaping @Sendable (Duration) async -> ShutdownReport
    ) {
        self.executor = executor
        self.name = name
        self.gracePeriod = gracePeriod
        self.logger = logger
        self.shutdown = shutdown
    }

    /// What the service runs, for ServiceLifecycle's logs: "RuntimeService(runtime, 4 workers)"
    /// or "RuntimeService(event loop)".
    public var description: String { name }

    /// Waits for graceful shutdown (or cancellation), then shuts the runtime down. Returns its
    /// report once the workers have stopped; never throws.
    public func run() async throws {
        do {
            try await gracefulShutdown()
        } catch {
            // Cancelled: the group is going down without us. Stop the runtime all the same.
        }
        let started = ContinuousClock.now
        let report = await shutdown(gracePeriod)
        let metadata: Logger.Metadata = [
            "abandoned_tasks": "\(report.abandonedTasks)",
            "stuck_workers": "\(report.stuckWorkers)",
            "abandoned_blocking_jobs": "\(report.abandonedBlockingJobs)",
            "duration": "\(ContinuousClock.now - started)",
        ]
        // Info either way: the runtime's own logger has warned about (and named) what was left.
        if report.abandonedTasks == 0 && report.stuckWorkers == 0 && report.abandonedBlockingJobs == 0 {
            logger.info("spindle runtime stopped", metadata: metadata)
        } else {
            logger.info("spindle runtime stopped, leaving work behind", metadata: metadata)
        }
    }
}
