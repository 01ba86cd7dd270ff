// An event loop's lifecycle: spawn, run (asyncio.run), runBlocking, shutdown. The states are
// Core/Lifecycle.swift's; this performs its actions.
//
// Shutdown waits for the spawned tasks while the loop keeps turning (TaskRegistry's drain
// suspends its caller; it never blocks the thread, which may be the loop's own), then stops a
// loop on its own thread. A loop that `runBlocking` runs on its caller's thread is stopped by
// `runBlocking` alone, when the operation has returned: a shutdown during the run only
// refuses new work and settles the spawned tasks, so the operation can go on awaiting on its
// loop afterwards (stopping under it left the operation's next job nowhere to run). Every
// wait of a shutdown that has this thread turn the loop meanwhile parks no later than the
// grace period's end.

import Glibc
import Synchronization
@_spi(ExperimentalScheduling) import _Concurrency

extension SpindleEventLoop {
    /// Starts a task on this loop. Shutdown cancels it if it is still running. The task is
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

    /// Starts a throwing task on this loop. Shutdown cancels it if it is still running.
    ///
    /// The task is listed by ``taskDump()`` while it lives. If its operation throws an error
    /// other than `CancellationError` when no handle to it exists any more (the one returned
    /// here and every copy of it were dropped, so nobody can ever await the error), the error
    /// is logged with the task's name through the loop's `logger` (asyncio's "Task exception
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

    /// Starts a loop on a new thread, runs `operation` on it, then shuts the loop down
    /// (cancelling spawned tasks still running, waiting up to `gracePeriod`).
    ///
    /// With `clock: .virtual` the loop's time is virtual (``ClockMode/virtual``): a test of
    /// timeouts and back-offs runs as fast as the loop can turn, and the grace period is
    /// virtual too.
    ///
    /// - Throws: ``SpindleError/nestedRun`` on a thread of a running Spindle runtime or loop.
    public static func run<Success: Sendable>(
        reactor: ReactorChoice = .automatic,
        clock: ClockMode = .real,
        gracePeriod: Duration = .seconds(10),
        _ operation: sending @escaping () async throws -> Success
    ) async throws -> Success {
        if ExecutorContext.isOnSpindleThread { throw SpindleError.nestedRun }
        return try await runThenShutDown(
            on: try SpindleEventLoop(reactor: reactor, clock: clock),
            shutdown: { await $0.shutdown(gracePeriod: gracePeriod) },
            operation)
    }

    /// Runs a loop on the calling thread until `operation` and the shutdown that follows it
    /// are done (asyncio.run exactly: the caller's thread becomes the loop). When `operation`
    /// returns, the spawned tasks still running are cancelled and given up to `gracePeriod` to
    /// finish; those that have not by then are left to finish on Swift's global executor, and
    /// counted in the report a later ``shutdown(gracePeriod:)`` on this loop returns.
    ///
    /// A ``shutdown(gracePeriod:)`` during the run (called by `operation`, by a spawned task
    /// or from another thread) does what it does on any loop, except stop it: new spawns and
    /// blocking jobs are refused, the spawned tasks are cancelled and awaited. The loop keeps
    /// turning on this thread until `operation` returns, as asyncio.run's loop runs until its
    /// main coroutine ends, so `operation` may still await timers, I/O and its own tasks.
    ///
    /// `clock: .virtual` makes the loop's time virtual (``ClockMode/virtual``), as in
    /// ``run(reactor:clock:gracePeriod:_:)``.
    ///
    /// - Throws: ``SpindleError/nestedRun`` on a thread of a running Spindle runtime or loop;
    ///   otherwise what `operation` threw.
    public static func runBlocking<Success: Sendable>(
        reactor: ReactorChoice = .automatic,
        clock: ClockMode = .real,
        gracePeriod: Duration = .seconds(10),
        _ operation: sending @escaping () async throws -> Success
    ) throws -> Success {
        if ExecutorContext.isOnSpindleThread { throw SpindleError.nestedRun }
        let loop = try SpindleEventLoop(
            onCurrentThread: (), stoppedByRunBlocking: true, reactor: reactor, clock: clock)
        let outcome = ResultBox<Success>()
        Task(executorPreference: loop) { await outcome.capture(operation) }
        loop.runLoop { outcome.isSet }
        loop.endRunBlocking(gracePeriod: gracePeriod)
        // Set by now, unless something called `stop()` (MainExecutor) on this loop: then the
        // operation goes on on Swift's global executor, and this waits for it.
        return try outcome.get()
    }

    /// The end of ``runBlocking(reactor:clock:gracePeriod:_:)``, on the loop's thread: shuts the loop down
    /// (or, if a shutdown began during the run, turns until it is done), then stops it, runs
    /// the last turn and closes the ring.
    private func endRunBlocking(gracePeriod: Duration) {
        if beginShutdown() {
            // The same steps as `shutdown`, with this thread turning the loop meanwhile.
            let deadline = timerDeadline(after: gracePeriod)
            runLoop(until: { registry.liveCount == 0 }, deadline: deadline)
            // Running pool jobs do not need the loop; their completions queue up for the last turn.
            let pool = blockingPool.shutdownBlocking(gracePeriod: .nanoseconds(timerRemaining(until: deadline)))
            record(ShutdownReport(
                abandonedTasks: registry.liveCount, stuckWorkers: 0, abandonedBlockingJobs: pool.abandonedJobs),
                leftBehind: registry.liveCount == 0 ? [] : taskDump(), gracePeriod: gracePeriod)
        } else {
            // Its drain may wait for tasks on this loop; `record` wakes the loop when it is done.
            runLoop { shutdownReport.withLock { $0 != nil } }
        }
        requestStop()
        runLoop()
        reactor.close()
        finished.open()
    }

    /// Stops the loop: refuses new spawns, cancels the spawned tasks still running, waits up
    /// to `gracePeriod` for them (and for the blocking pool's running jobs), then stops the
    /// thread and closes the ring. Calling it again, or concurrently, returns the first call's
    /// report once that call is done.
    ///
    /// Safe to call from a task on this loop. Called from a spawned task, or from a task that
    /// one started (a child in its task group, or a `Task {}` it created: they share its
    /// task-local values), it cancels that spawned task with the others but neither waits for
    /// it (it cannot finish before this call returns) nor counts it as abandoned. The wait
    /// suspends the caller, not the loop, so the loop's other tasks keep running meanwhile,
    /// and it ends as soon as the last of them finishes. The thread stops once the caller
    /// suspends or finishes; what it does after that runs on Swift's global executor.
    ///
    /// On a loop that ``runBlocking(reactor:clock:gracePeriod:_:)`` runs, the loop goes on turning until the
    /// run's operation returns.
    @discardableResult
    public func shutdown(gracePeriod: Duration = .seconds(10)) async -> ShutdownReport {
        guard beginShutdown() else {
            if !inEventLoop { shutdownDone.wait() }
            return shutdownReport.withLock { $0 } ?? ShutdownReport(abandonedTasks: 0, stuckWorkers: 0)
        }
        let deadline = timerDeadline(after: gracePeriod)  // virtual on a virtual loop
        let spared = registry.callersTask
        await registry.drain(until: deadline, sparing: spared, on: self)
        let pool = await shutDownBlockingPool(blockingPool, until: deadline, on: self)
        let abandoned = registry.liveCount(sparing: spared)
        let leftBehind = abandoned == 0 ? [] : taskDump().filter { $0.id != spared }
        var stuck = 0
        if !stoppedByRunBlocking {
            requestStop()
            if inEventLoop || thread == nil {
                // It cannot join its own thread, which exits once the caller suspends; a loop
                // on a caller's thread (the main executor's) returns from its `run` instead.
                if let thread { pthread_detach(thread.handle) }
            } else if finished.wait(deadline: monotonicNanos() &+ 1_000_000_000) {
                thread?.join()
            } else {
                stuck = 1
                if let thread { pthread_detach(thread.handle) }
            }
        }
        return record(ShutdownReport(
            abandonedTasks: abandoned, stuckWorkers: stuck, abandonedBlockingJobs: pool.abandonedJobs),
            leftBehind: leftBehind, gracePeriod: gracePeriod)
    }

    /// Logs the shutdown's report (`leftBehind`: the tasks alive when the grace period ended),
    /// stores it and lets waiting callers go. A `runBlocking` loop may be parked waiting for
    /// this (`endRunBlocking`): wake it.
    @discardableResult
    private func record(_ report: ShutdownReport, leftBehind: [TaskSnapshot], gracePeriod: Duration) -> ShutdownReport {
        report.log(to: registry.logger, executor: "event loop", leftBehind: leftBehind, gracePeriod: gracePeriod)
        shutdownReport.withLock { $0 = report }
        shutdownDone.open()
        if stoppedByRunBlocking && !inEventLoop { reactor.wake() }
        return report
    }

    private func beginShutdown() -> Bool {
        guard lifecycle.beginShutdown() == .begin else { return false }
        for task in registry.close() { task.cancel() }
        return true
    }
}
