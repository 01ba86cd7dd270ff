// The single-threaded runtime (asyncio's loop, Tokio's `current_thread`): one thread, a FIFO
// run queue and a FIFO priority lane, one ring, one timer wheel, no stealing and no
// cross-worker wake-ups.
//
// Jobs enqueued on the loop's own thread go straight to its run queue (no lock). Jobs from other
// threads go to an inbox behind a lock, and wake the loop only if it is parked: the loop sets
// `parked` before its final check of the inbox, an enqueuer sets the inbox length before reading
// `parked` (both sequentially consistent), so one of them always sees the other.
//
// Each turn the loop fires due timers and moves the whole inbox (the tasks they resume, the jobs
// of other threads) to the priority lane, then runs the jobs that were queued at the start of
// the turn, taking up to 3 from the lane for each one from the run queue: work made runnable
// during the turn waits for the next one, so a task that keeps yielding cannot keep timers or
// the inbox waiting. A long turn also fires timers, flushes its ring and takes its inbox every
// 61 jobs, so timer wake-ups and foreign resumptions wait a few dozen jobs, not the rest of the
// turn (Tokio's `current_thread` checks its injection queue every 31 tasks for the same
// reason). Completions reaped by a flush join the run queue.
//
// The loop is a `SerialExecutor` (it can back actors and be the main executor) and a
// `TaskExecutor` (task executor preference), with the same surface as `Runtime`.
//
// Shutdown waits for the spawned tasks while the loop keeps turning (TaskRegistry's drain
// suspends its caller; it never blocks the thread, which may be the loop's own), then stops a
// loop on its own thread. A loop that `runBlocking` runs on its caller's thread is stopped by
// `runBlocking` alone, when the operation has returned: a shutdown during the run only
// refuses new work and settles the spawned tasks, so the operation can go on awaiting on its
// loop afterwards (stopping under it left the operation's next job nowhere to run). Every
// wait of a shutdown that has this thread turn the loop meanwhile parks no later than the
// grace period's end.

import CSpindle
import Glibc
import Synchronization
@_spi(ExperimentalScheduling) import _Concurrency

/// A single-threaded executor for Swift concurrency that runs everything on one thread.
///
/// ```swift
/// let loop = try EventLoop()
/// let value = await Task(executorPreference: loop) { await work() }.value
/// await loop.shutdown()
/// ```
public final class EventLoop: SerialExecutor, TaskExecutor, @unchecked Sendable {
    // @unchecked Sendable: members marked "loop thread only" are used only on the thread that
    // runs the loop; the rest are immutable, Sendable or atomic.

    // Loop thread only.
    private var runQueue = JobDeque(capacity: 1024)
    /// The priority lane: tasks resumed by due timers, and jobs from the inbox. They take
    /// turns with the run queue (3 to 1) rather than wait behind it, so a sleep's lateness or a
    /// foreign resumption's delay is not the length of whatever backlog the loop holds (W7
    /// spawns 100,000 tasks in one job, and a wake-up queued behind them waited for all of them).
    private var resumed = JobDeque(capacity: 64)
    private var firingTimers = false
    private var timers = TimerWheel()
    private var ring: Ring!

    private let inbox = Lock(JobDeque(capacity: 256))
    /// Inbox length, written inside its lock (sequentially consistent; see the file comment).
    private let inboxCount = Atomic<Int>(0)
    /// Timers set from other threads (and while stopping), fired by the loop.
    private let remoteTimers = SharedTimerWheel()
    /// True while the loop is parked or about to park.
    private let parked = Atomic<Bool>(false)
    private let stopRequested = Atomic<Bool>(false)
    private let finished = Gate()
    /// Set (sequentially consistent) when the loop has stopped for good, before it drains the
    /// inbox one last time; an enqueuer pushes and then checks it, so no job is stranded.
    private let exited = Atomic<Bool>(false)
    private var thread: OSThread?
    let registry = TaskRegistry()
    private let shuttingDown = Atomic<Bool>(false)
    /// The first shutdown's report, set when it is done (later calls return it).
    private let shutdownReport = Lock<ShutdownReport?>(nil)
    private let shutdownDone = Gate()
    /// A loop that `runBlocking` runs on its caller's thread: it turns until the operation
    /// returns, and `runBlocking` stops it then; `shutdown` does not (see `runBlocking`).
    private let stoppedByRunBlocking: Bool
    private let counters = WorkerCounters()
    /// The pool ``toThread(_:)`` uses on this loop (threads named `spindle-blk-<n>`, started on
    /// demand). Shutdown of the loop shuts it down after the spawned tasks' grace period.
    public let blockingPool = BlockingPool(validated: "spindle-blk")

    /// Starts a loop on a new thread named `name`.
    ///
    /// - Throws: ``SpindleError/ioUringUnavailable(errno:reason:)`` when the kernel refuses
    ///   io_uring; ``SpindleError/threadCreationFailed(errno:)``.
    public init(name: String = "spindle-loop") throws(SpindleError) {
        DispatchWarmUp.ensure()
        stoppedByRunBlocking = false
        let started = Gate()
        let failure = Lock<SpindleError?>(nil)
        thread = try OSThread.spawn(name: name) { [self] in
            do throws(SpindleError) {
                ring = try Ring(counters: counters.ring)
            } catch {
                failure.withLock { $0 = error }
            }
            started.open()
            if failure.withLock({ $0 }) == nil {
                runLoop()
                ring.close()
            }
            finished.open()
        }
        started.wait()
        if let error = failure.withLock({ $0 }) {
            thread?.join()
            throw error
        }
        // Never deallocated, for the reason given in Runtime.init.
        _ = Unmanaged.passRetained(self)
    }

    /// A loop that runs on the calling thread when that thread calls `runLoop` (used by
    /// `runBlocking` and the main executor). The ring is created here, on that thread.
    init(onCurrentThread: (), stoppedByRunBlocking: Bool = false) throws(SpindleError) {
        DispatchWarmUp.ensure()
        self.stoppedByRunBlocking = stoppedByRunBlocking
        ring = try Ring(counters: counters.ring)
        // Never deallocated, for the reason given in Runtime.init.
        _ = Unmanaged.passRetained(self)
    }

    /// The loop whose thread the caller is on, or nil.
    public static var current: EventLoop? {
        guard let raw = spindle_current_loop() else { return nil }
        return Unmanaged<EventLoop>.fromOpaque(raw).takeUnretainedValue()
    }

    /// Whether the caller is on this loop's thread.
    public var inEventLoop: Bool {
        spindle_current_loop() == Unmanaged.passUnretained(self).toOpaque()
    }

    /// Whether shutdown has begun (spawn now fails).
    public var isShutDown: Bool { shuttingDown.load(ordering: .sequentiallyConsistent) }

    /// A snapshot of the loop's counters (the same shape as one runtime worker's).
    public func metrics() -> WorkerMetrics { counters.snapshot }

    // MARK: Executor

    /// Schedules a job. Called by Swift concurrency; not meant to be called directly.
    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        if inEventLoop && !stopRequested.load(ordering: .relaxed) {
            if firingTimers {
                resumed.append(job)
                return
            }
            runQueue.append(job)
            counters.queueDepthHighWater.raise(to: UInt64(runQueue.count))
            return
        }
        enqueueRemote(job)
    }

    private func enqueueRemote(_ job: UnownedJob) {
        if exited.load(ordering: .sequentiallyConsistent) {
            Afterlife.adopt([job], from: self)
            return
        }
        inbox.withLock { inbox in
            inbox.append(job)
            inboxCount.store(inbox.count, ordering: .sequentiallyConsistent)
        }
        wakeIfParked()
        if exited.load(ordering: .sequentiallyConsistent) { Afterlife.adopt(takeInbox(), from: self) }
    }

    private func wakeIfParked() {
        // Sequentially consistent: pairs with the loop's store of `parked` before its re-check.
        if parked.load(ordering: .sequentiallyConsistent),
           parked.exchange(false, ordering: .sequentiallyConsistent) {
            ring.wake()
        }
    }

    /// Whether this executor is the one running the current code (used by actor isolation checks).
    public func isIsolatingCurrentContext() -> Bool? { inEventLoop }

    /// Traps unless called on the loop's thread.
    public func checkIsolated() {
        precondition(inEventLoop, "not on the event loop's thread")
    }

    // MARK: The loop

    /// Loop thread only: runs until a stop is requested and the queues are empty, or until
    /// `condition` returns true (checked once per turn), or until `deadline` (CLOCK_MONOTONIC
    /// ns) passes: a loop with nothing to do parks no later than that.
    func runLoop(until condition: () -> Bool = { false }, deadline: UInt64 = .max) {
        let previous = spindle_current_loop()
        let previousRing = Ring.current
        spindle_set_current_loop(Unmanaged.passUnretained(self).toOpaque())
        Ring.setCurrent(ring)
        defer {
            Ring.setCurrent(previousRing)
            spindle_set_current_loop(previous)
        }
        // Jobs run with the task-executor context only. Running them `isolatedTo:` the serial
        // executor as well made Swift hop (re-enqueue) on every switch into nonisolated code:
        // 4 jobs per channel round trip instead of 2. Actors pinned to the loop still run
        // correctly: Swift asks `isIsolatingCurrentContext()`, which is true on this thread.
        let taskExecutor = asUnownedTaskExecutor()
        while true {
            if condition() || (deadline != .max && monotonicNanos() >= deadline) { break }
            fireTimers()
            moveInbox()
            // A turn runs as many jobs as were queued when it began, so it always ends (and the
            // stop request and `condition` are looked at again). Every 61 jobs it also fires
            // due timers, submits/reaps the ring and takes the inbox, so none of them waits for
            // a long turn to end. The priority lane goes first, but at most 3 in a row before
            // one job of the run queue, so a flood of timers or foreign jobs cannot starve the
            // rest (nor the rest them).
            var budget = runQueue.count + resumed.count
            var sinceMaintenance: UInt32 = 0
            var resumedStreak = 0
            while budget > 0 {
                let job: UnownedJob
                if resumedStreak < Self.maxResumedStreak, let next = resumed.popFirst() {
                    resumedStreak += 1
                    job = next
                } else if let next = runQueue.popFirst() {
                    resumedStreak = 0
                    job = next
                } else if let next = resumed.popFirst() {
                    job = next
                } else {
                    break
                }
                budget -= 1
                job.runSynchronously(on: taskExecutor)
                counters.jobsRun.bump()
                sinceMaintenance &+= 1
                if sinceMaintenance == Self.maintenanceInterval {
                    sinceMaintenance = 0
                    fireTimers()
                    ring.flush()
                    moveInbox()
                }
            }
            // Submit what the turn prepared and take what completed (resumed tasks join the
            // run queue), once per turn.
            ring.flush()
            if stopRequested.load(ordering: .sequentiallyConsistent) && runQueue.isEmpty && resumed.isEmpty { break }
            if runQueue.isEmpty && resumed.isEmpty {
                // The jobs just run may have satisfied the condition: check before sleeping.
                if condition() { break }
                park(deadline: deadline)
            }
        }
        if stopRequested.load(ordering: .sequentiallyConsistent) {
            exited.store(true, ordering: .sequentiallyConsistent)
            var leftovers: [UnownedJob] = []
            while let job = resumed.popFirst() { leftovers.append(job) }
            while let job = runQueue.popFirst() { leftovers.append(job) }
            leftovers.append(contentsOf: takeInbox())
            Afterlife.adopt(leftovers, timers: timers.removeAll() + remoteTimers.removeAll(), from: self)
        }
    }

    /// Moves the inbox to `resumed`, at the start of a turn and every 61 jobs within one:
    /// always the same lane, so jobs from other threads keep their order among themselves.
    private func moveInbox() {
        if inboxCount.load(ordering: .sequentiallyConsistent) == 0 { return }
        inbox.withLock { inbox in
            while let job = inbox.popFirst() { resumed.append(job) }
            inboxCount.store(0, ordering: .sequentiallyConsistent)
        }
        counters.injectorPulls.bump()
    }

    private func takeInbox() -> [UnownedJob] {
        inbox.withLock { inbox in
            var jobs: [UnownedJob] = []
            while let job = inbox.popFirst() { jobs.append(job) }
            inboxCount.store(0, ordering: .sequentiallyConsistent)
            return jobs
        }
    }

    static let maintenanceInterval: UInt32 = 61
    static let maxResumedStreak = 3

    /// Fires due timers in place (TimerAction.swift); the tasks they resume join `resumed`.
    private func fireTimers() {
        firingTimers = true
        defer { firingTimers = false }
        var now: UInt64 = 0
        if !timers.isEmpty {
            now = monotonicNanos()
            while let action = timers.popDue(now: now) {
                action.fire()  // resumes its task into `resumed`
                counters.timersFired.bump()
                counters.jobsRun.bump()
            }
            counters.timersPending.store(UInt64(timers.count), ordering: .relaxed)
        }
        if remoteTimers.deadline != .max {
            let due = remoteTimers.popDue(now: now == 0 ? monotonicNanos() : now)
            for action in due { action.fire() }
            counters.timersFired.bump(by: UInt64(due.count))
            counters.jobsRun.bump(by: UInt64(due.count))
        }
    }

    private func park(deadline: UInt64) {
        parked.store(true, ordering: .sequentiallyConsistent)
        if inboxCount.load(ordering: .sequentiallyConsistent) > 0
            || stopRequested.load(ordering: .sequentiallyConsistent) {
            parked.store(false, ordering: .sequentiallyConsistent)
            return
        }
        counters.parks.bump()
        if !timers.isEmpty {
            timers.sweepIfStale(now: monotonicNanos())  // idle: drop cancelled sleeps (TimerWheel.swift)
            counters.timersPending.store(UInt64(timers.count), ordering: .relaxed)
        }
        ring.park(deadline: min(deadline, timers.nextDeadline, remoteTimers.deadline))
        parked.store(false, ordering: .sequentiallyConsistent)
    }

    /// Asks the loop to stop after the jobs it holds; wakes it if parked.
    func requestStop() {
        stopRequested.store(true, ordering: .sequentiallyConsistent)
        if inEventLoop { return }
        ring.wake()
    }

    // MARK: Timers

    /// Sets a timer: on the loop's own wheel from its thread, else on the shared one.
    func scheduleTimer(_ action: TimerAction, deadline: UInt64) {
        if inEventLoop && !stopRequested.load(ordering: .relaxed) {
            timers.insert(action, deadline: deadline)
            counters.timersPending.store(UInt64(timers.count), ordering: .relaxed)
            return
        }
        if exited.load(ordering: .sequentiallyConsistent) {
            Afterlife.adopt([], timers: [(action, deadline)], from: self)
            return
        }
        remoteTimers.insert(action, deadline: deadline)
        if exited.load(ordering: .sequentiallyConsistent) {
            // The loop exited meanwhile and its last drain may have missed this timer.
            Afterlife.adopt([], timers: remoteTimers.removeAll(), from: self)
            return
        }
        // The loop must recompute its park timeout.
        parked.store(false, ordering: .sequentiallyConsistent)
        ring.wake()
    }

}

extension EventLoop {
    // MARK: Spawning, run, shutdown

    /// Starts a task on this loop. Shutdown cancels it if it is still running.
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
    /// - Throws: ``SpindleError/nestedRun`` on a thread of a running Spindle runtime or loop.
    public static func run<Success: Sendable>(
        gracePeriod: Duration = .seconds(10),
        _ operation: sending @escaping () async throws -> Success
    ) async throws -> Success {
        if ExecutorContext.isOnSpindleThread { throw SpindleError.nestedRun }
        return try await runThenShutDown(
            on: try EventLoop(),
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
    /// - Throws: ``SpindleError/nestedRun`` on a thread of a running Spindle runtime or loop;
    ///   otherwise what `operation` threw.
    public static func runBlocking<Success: Sendable>(
        gracePeriod: Duration = .seconds(10),
        _ operation: sending @escaping () async throws -> Success
    ) throws -> Success {
        if ExecutorContext.isOnSpindleThread { throw SpindleError.nestedRun }
        let loop = try EventLoop(onCurrentThread: (), stoppedByRunBlocking: true)
        let outcome = ResultBox<Success>()
        Task(executorPreference: loop) { await outcome.capture(operation) }
        loop.runLoop { outcome.isSet }
        loop.endRunBlocking(gracePeriod: gracePeriod)
        // Set by now, unless something called `stop()` (MainExecutor) on this loop: then the
        // operation goes on on Swift's global executor, and this waits for it.
        return try outcome.get()
    }

    /// The end of ``runBlocking(gracePeriod:_:)``, on the loop's thread: shuts the loop down
    /// (or, if a shutdown began during the run, turns until it is done), then stops it, runs
    /// the last turn and closes the ring.
    private func endRunBlocking(gracePeriod: Duration) {
        if beginShutdown() {
            // The same steps as `shutdown`, with this thread turning the loop meanwhile.
            let deadline = monotonicDeadline(after: gracePeriod)
            runLoop(until: { registry.liveCount == 0 }, deadline: deadline)
            // Running pool jobs do not need the loop; their completions queue up for the last turn.
            let pool = blockingPool.shutdownBlocking(gracePeriod: .nanoseconds(remaining(until: deadline)))
            record(ShutdownReport(
                abandonedTasks: registry.liveCount, stuckWorkers: 0, abandonedBlockingJobs: pool.abandonedJobs))
        } else {
            // Its drain may wait for tasks on this loop; `record` wakes the loop when it is done.
            runLoop { shutdownReport.withLock { $0 != nil } }
        }
        requestStop()
        runLoop()
        ring.close()
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
    /// On a loop that ``runBlocking(gracePeriod:_:)`` runs, the loop goes on turning until the
    /// run's operation returns.
    @discardableResult
    public func shutdown(gracePeriod: Duration = .seconds(10)) async -> ShutdownReport {
        guard beginShutdown() else {
            if !inEventLoop { shutdownDone.wait() }
            return shutdownReport.withLock { $0 } ?? ShutdownReport(abandonedTasks: 0, stuckWorkers: 0)
        }
        let deadline = monotonicDeadline(after: gracePeriod)
        let spared = registry.callersTask
        await registry.drain(until: deadline, sparing: spared, on: self)
        let pool = await shutDownBlockingPool(blockingPool, until: deadline)
        let abandoned = registry.liveCount(sparing: spared)
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
            abandonedTasks: abandoned, stuckWorkers: stuck, abandonedBlockingJobs: pool.abandonedJobs))
    }

    /// Stores the shutdown's report and lets waiting callers go. A `runBlocking` loop may be
    /// parked waiting for this (`endRunBlocking`): wake it.
    @discardableResult
    private func record(_ report: ShutdownReport) -> ShutdownReport {
        shutdownReport.withLock { $0 = report }
        shutdownDone.open()
        if stoppedByRunBlocking && !inEventLoop { ring.wake() }
        return report
    }

    private func beginShutdown() -> Bool {
        guard !shuttingDown.exchange(true, ordering: .sequentiallyConsistent) else { return false }
        for task in registry.close() { task.cancel() }
        return true
    }
}

// MARK: Delayed jobs

@_spi(ExperimentalScheduling)
extension EventLoop: SchedulingExecutor {
    /// Runs `job` at `instant` on `clock` (Swift calls this for `Task.sleep` on this loop).
    public func enqueue<C: Clock>(
        _ job: consuming ExecutorJob, at instant: C.Instant, tolerance: C.Duration?, clock: C
    ) {
        enqueue(job, after: clock.now.duration(to: instant), tolerance: tolerance, clock: clock)
    }

    /// Runs `job` after `delay` on `clock`.
    public func enqueue<C: Clock>(
        _ job: consuming ExecutorJob, after delay: C.Duration, tolerance: C.Duration?, clock: C
    ) {
        let job = UnownedJob(job)
        guard let duration = delay as? Duration else {
            enqueue(ExecutorJob(job))
            return
        }
        scheduleTimer(.job(job), deadline: monotonicDeadline(after: duration))
    }
}

extension EventLoop: TimerScheduler {}
