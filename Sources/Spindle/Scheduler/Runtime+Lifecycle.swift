// The public lifecycle of a Runtime: spawn, run (asyncio.run), shutdown, introspection, and
// delayed jobs (`Task.sleep`) through Swift's SchedulingExecutor hook.

internal import CSpindle
import Glibc
import Synchronization
@_spi(ExperimentalScheduling) import _Concurrency

extension Runtime {
    /// The runtime whose worker thread the caller is on, or nil on any other thread.
    public static var current: Runtime? {
        guard let raw = spindle_current_worker() else { return nil }
        return Unmanaged<Worker>.fromOpaque(raw).takeUnretainedValue().shared.runtime
    }

    /// The index of the worker the caller runs on, or nil off the workers.
    public static var currentWorkerIndex: Int? {
        guard let raw = spindle_current_worker() else { return nil }
        return Unmanaged<Worker>.fromOpaque(raw).takeUnretainedValue().index
    }

    /// Whether the caller is running on one of this runtime's workers.
    public var isCurrent: Bool {
        guard let raw = spindle_current_worker() else { return false }
        return Unmanaged<Worker>.fromOpaque(raw).takeUnretainedValue().shared === shared
    }

    /// A snapshot of the runtime's counters.
    public func metrics() -> RuntimeMetrics {
        RuntimeMetrics(
            workers: shared.workers.map { worker in
                var metrics = worker.counters.snapshot
                metrics.reactor = shared.reactorBackend
                return metrics
            },
            injectorDepth: shared.injector.count + shared.remoteQueue.count,
            foreignWakeups: shared.foreignWakeups.load(ordering: .relaxed),
            remoteEnqueues: shared.remoteEnqueues.load(ordering: .relaxed),
            liveSpawnedTasks: registry.liveCount,
            blockedWorkerReports: watch?.reports.load(ordering: .relaxed) ?? 0,
            reactor: shared.reactorBackend)
    }

    // MARK: Spawning

    /// Starts a task on this runtime. Shutdown cancels it if it is still running. The task is
    /// listed by ``taskDump()`` while it lives.
    ///
    /// - Throws: ``SpindleError/shutDown`` once shutdown has begun.
    @discardableResult
    public func spawn<Success: Sendable>(
        name: String? = nil,
        priority: TaskPriority? = nil,
        _ operation: sending @escaping () async -> Success
    ) throws(SpindleError) -> Task<Success, Never> {
        try registry.spawn(on: self, name: name, priority: priority, operation)
    }

    /// Starts a throwing task on this runtime. Shutdown cancels it if it is still running.
    ///
    /// The task is listed by ``taskDump()`` while it lives. If its operation throws an error
    /// other than `CancellationError` when no handle to it exists any more (the one returned
    /// here and every copy of it were dropped, so nobody can ever await the error), the error
    /// is logged with the task's name through the runtime's `logger` (asyncio's "Task exception
    /// was never retrieved"). A handle that still exists when the operation throws counts as
    /// observed, whether or not it is awaited later; so does a failure in the instant before
    /// `spawn` has returned. See docs/introspection.md.
    ///
    /// - Throws: ``SpindleError/shutDown`` once shutdown has begun.
    @discardableResult
    public func spawn<Success: Sendable>(
        name: String? = nil,
        priority: TaskPriority? = nil,
        _ operation: sending @escaping () async throws -> Success
    ) throws(SpindleError) -> Task<Success, any Error> {
        try registry.spawn(on: self, name: name, priority: priority, operation)
    }

    // MARK: run (asyncio.run)

    /// Starts a runtime, runs `operation` on it, then shuts it down: tasks started with
    /// `spawn` that are still running are cancelled and given `gracePeriod` to finish, the
    /// workers stop and their rings close. Returns the operation's value or rethrows its error.
    /// Cancelling the calling task cancels `operation`.
    ///
    /// - Throws: ``SpindleError/nestedRun`` when called from a thread of a running Spindle
    ///   runtime or event loop; the errors of ``init(workers:name:blockedWorkerThreshold:logger:reactor:)``; or `operation`'s error.
    public static func run<Success: Sendable>(
        workers: Int? = nil,
        reactor: ReactorChoice = .automatic,
        gracePeriod: Duration = .seconds(10),
        _ operation: sending @escaping () async throws -> Success
    ) async throws -> Success {
        if ExecutorContext.isOnSpindleThread { throw SpindleError.nestedRun }
        return try await runThenShutDown(
            on: try Runtime(workers: workers, reactor: reactor),
            shutdown: { await $0.shutdown(gracePeriod: gracePeriod) },
            operation)
    }

    /// The blocking form of ``run(workers:reactor:gracePeriod:_:)`` for synchronous
    /// code such as a synchronous `main`: the calling thread waits until everything is done.
    public static func runBlocking<Success: Sendable>(
        workers: Int? = nil,
        reactor: ReactorChoice = .automatic,
        gracePeriod: Duration = .seconds(10),
        _ operation: sending @escaping () async throws -> Success
    ) throws -> Success {
        if ExecutorContext.isOnSpindleThread { throw SpindleError.nestedRun }
        let runtime = try Runtime(workers: workers, reactor: reactor)
        let outcome = ResultBox<Success>()
        Task(executorPreference: runtime) { await outcome.capture(operation) }
        outcome.wait()
        runtime.shutdownBlocking(gracePeriod: gracePeriod)
        return try outcome.get()
    }

    // MARK: Shutdown

    /// Stops the runtime: refuses new spawns, cancels the spawned tasks still running, waits up
    /// to `gracePeriod` for them (and for the blocking pool's running jobs), then stops the
    /// workers and closes their rings. Calling it again, or concurrently, waits for the first
    /// call's outcome.
    ///
    /// Safe to call from a task running on this runtime. Called from a spawned task, or from a
    /// task that one started (a child in its task group, or a `Task {}` it created: they share
    /// its task-local values), it cancels that spawned task with the others but neither waits
    /// for it (it cannot finish before this call returns) nor counts it as abandoned. The wait
    /// suspends the caller, not its thread, so the other tasks keep running meanwhile, and it
    /// ends as soon as the last of them finishes. The workers exit once the caller suspends
    /// or finishes; what it does after that runs on Swift's global executor.
    @discardableResult
    public func shutdown(gracePeriod: Duration = .seconds(10)) async -> ShutdownReport {
        guard beginShutdown() else { return waitForOtherShutdown() }
        let deadline = monotonicDeadline(after: gracePeriod)
        let spared = registry.callersTask
        await registry.drain(until: deadline, sparing: spared, on: self)
        let pool = await shutDownBlockingPool(blockingPool, until: deadline, on: self)
        return stopWorkers(abandoned: leftBehind(sparing: spared), pool: pool, gracePeriod: gracePeriod)
    }

    /// ``shutdown(gracePeriod:)`` for synchronous callers (blocks the calling thread; on a
    /// worker, that worker runs nothing else until it returns).
    @discardableResult
    public func shutdownBlocking(gracePeriod: Duration = .seconds(10)) -> ShutdownReport {
        guard beginShutdown() else { return waitForOtherShutdown() }
        let deadline = monotonicDeadline(after: gracePeriod)
        let spared = registry.callersTask
        registry.drainBlocking(until: deadline, sparing: spared)
        let pool = blockingPool.shutdownBlocking(gracePeriod: .nanoseconds(remaining(until: deadline)))
        return stopWorkers(abandoned: leftBehind(sparing: spared), pool: pool, gracePeriod: gracePeriod)
    }

    /// Returns true for the one caller that moves the runtime out of `running`.
    private func beginShutdown() -> Bool {
        guard shared.lifecycle.beginShutdown() == .begin else { return false }
        for task in registry.close() { task.cancel() }
        return true
    }

    /// The spawned tasks other than `spared` still alive when the grace period ended: their
    /// count, and (when there are any) their task dump, for the shutdown's log message.
    private func leftBehind(sparing spared: UInt64?) -> (count: Int, tasks: [TaskSnapshot]) {
        let count = registry.liveCount(sparing: spared)
        return (count, count == 0 ? [] : taskDump().filter { $0.id != spared })
    }

    private func stopWorkers(
        abandoned: (count: Int, tasks: [TaskSnapshot]), pool: BlockingPoolShutdownReport, gracePeriod: Duration
    ) -> ShutdownReport {
        watch?.stop()  // first: it may be reaping a ring, which must not close under it
        let stopStart = monotonicNanos()
        shared.lifecycle.requestStop()
        for worker in shared.workers { worker.reactor.wake() }
        var stuck = 0
        if isCurrent {
            // We are on a worker: it cannot join itself. The threads exit on their own.
            for thread in threads { pthread_detach(thread.handle) }
        } else {
            // A worker stuck inside a job that does not return is left behind (never hang);
            // the others are joined (Worker+Stopping.swift, for the budgets).
            for (thread, finished) in zip(threads, Worker.awaitStop(of: shared.workers, since: stopStart)) {
                if finished {
                    thread.join()
                } else {
                    stuck += 1
                    pthread_detach(thread.handle)
                }
            }
        }
        let report = ShutdownReport(
            abandonedTasks: abandoned.count, stuckWorkers: stuck, abandonedBlockingJobs: pool.abandonedJobs)
        report.log(
            to: registry.logger, executor: "runtime (\(workerCount) workers)", leftBehind: abandoned.tasks,
            gracePeriod: gracePeriod)
        shutdownReport.withLock { $0 = report }
        shutdownDone.open()
        return report
    }

    private func waitForOtherShutdown() -> ShutdownReport {
        if !isCurrent { shutdownDone.wait() }
        return shutdownReport.withLock { $0 } ?? ShutdownReport(abandonedTasks: 0, stuckWorkers: 0)
    }
}
