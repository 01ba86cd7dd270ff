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
// Its lifecycle is SpindleEventLoop+Lifecycle.swift; its timers SpindleEventLoop+Timers.swift;
// virtual time (a clock that jumps to the next deadline when the loop is idle)
// SpindleEventLoop+VirtualTime.swift.

internal import CSpindle
import Glibc
import Logging
import Synchronization
@_spi(ExperimentalScheduling) import _Concurrency

/// A single-threaded executor for Swift concurrency that runs everything on one thread.
///
/// ```swift
/// let loop = try SpindleEventLoop()
/// let value = await Task(executorPreference: loop) { await work() }.value
/// await loop.shutdown()
/// ```
public final class SpindleEventLoop: SerialExecutor, TaskExecutor, @unchecked Sendable {
    // @unchecked Sendable: members marked "loop thread only" are used only on the thread that
    // runs the loop; the rest are immutable, Sendable or atomic.

    // Loop thread only.
    var runQueue = JobDeque(capacity: 1024)
    /// The priority lane: tasks resumed by due timers, and jobs from the inbox. They take
    /// turns with the run queue (3 to 1) rather than wait behind it, so a sleep's lateness or a
    /// foreign resumption's delay is not the length of whatever backlog the loop holds (W7
    /// spawns 100,000 tasks in one job, and a wake-up queued behind them waited for all of them).
    var resumed = JobDeque(capacity: 64)
    var firingTimers = false
    var timers: TimerWheel
    /// The clock of a loop made with ``ClockMode/virtual``, nil for real time. Set once.
    let virtualClock: VirtualClock?
    /// Virtual time only: this loop's tasks waiting for a blocking-pool job. Time holds still
    /// while one runs (SpindleEventLoop+VirtualTime.swift).
    let blockingWaits = Atomic<Int>(0)
    /// Created on the loop's thread before anything runs; never changed afterwards.
    var reactor: Reactor!
    /// The backend `reactor` is (ReactorSelection.swift).
    public let reactorBackend: ReactorBackend

    private let inbox = Lock(JobDeque(capacity: 256))
    /// Inbox length, written inside its lock (sequentially consistent; see the file comment).
    let inboxCount = Atomic<Int>(0)
    /// Timers set from other threads (and while stopping), fired by the loop.
    let remoteTimers: SharedTimerWheel
    /// True while the loop is parked or about to park.
    let parked = Atomic<Bool>(false)
    let finished = Gate()
    /// Shutdown begun, stop requested, stopped (Core/Lifecycle.swift). The loop is marked
    /// stopped before it drains the inbox one last time; an enqueuer pushes and then checks
    /// it (both sequentially consistent), so no job is stranded.
    let lifecycle = Lifecycle()
    var thread: OSThread?
    /// The tasks started with `spawn`, which shutdown cancels and waits for.
    let registry: TaskRegistry
    /// The first shutdown's report, set when it is done (later calls return it).
    let shutdownReport = Lock<ShutdownReport?>(nil)
    let shutdownDone = Gate()
    /// A loop that `runBlocking` runs on its caller's thread: it turns until the operation
    /// returns, and `runBlocking` stops it then; `shutdown` does not (see `runBlocking`).
    let stoppedByRunBlocking: Bool
    let counters = WorkerCounters()
    /// The job the loop is running (its address), 0 between jobs, for the task dump. Relaxed,
    /// like a worker's (Scheduler/Worker.swift): a dump only samples it.
    let publishedJob = Atomic<UInt>(0)
    /// The pool ``toThread(_:)`` uses on this loop (threads named `spindle-blk-<n>`, started on
    /// demand). Shutdown of the loop shuts it down after the spawned tasks' grace period.
    public let blockingPool = BlockingPool(validated: "spindle-blk")

    /// Starts a loop on a new thread named `name`.
    ///
    /// - Parameters:
    ///   - name: the thread's name.
    ///   - reactor: io_uring or epoll; `.automatic` (the default) takes io_uring when the kernel
    ///     and the sandbox allow it, and honours `SPINDLE_REACTOR` (see ``ReactorChoice``).
    ///   - logger: where failures of spawned tasks that nobody can await are reported.
    ///   - clock: `.real` (the default), or `.virtual` for tests: time stands still while
    ///     the loop has work and jumps to the next timer when it has none (``ClockMode``).
    /// - Throws: ``SpindleError/ioUringUnavailable(errno:reason:)`` when io_uring was asked for
    ///   and the kernel refuses it; ``SpindleError/threadCreationFailed(errno:)``.
    public init(
        name: String = "spindle-loop", reactor: ReactorChoice = .automatic, logger: Logger = Logger(label: "spindle"),
        clock: ClockMode = .real
    ) throws(SpindleError) {
        DispatchWarmUp.ensure()
        virtualClock = clock == .virtual ? VirtualClock() : nil
        timers = TimerWheel(clock: Self.wheelClock(virtualClock))
        remoteTimers = SharedTimerWheel(clock: Self.wheelClock(virtualClock))
        registry = TaskRegistry(logger: logger)
        stoppedByRunBlocking = false
        let backend = try ReactorSelection.resolve(reactor, logger: logger)
        reactorBackend = backend
        let started = Gate()
        let failure = Lock<SpindleError?>(nil)
        thread = try OSThread.spawn(name: name) { [self] in
            do throws(SpindleError) {
                self.reactor = try Reactor(backend, counters: counters.ring)
            } catch {
                failure.withLock { $0 = error }
            }
            started.open()
            if failure.withLock({ $0 }) == nil {
                runLoop()
                self.reactor.close()
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
    init(
        onCurrentThread: (), stoppedByRunBlocking: Bool = false, reactor: ReactorChoice = .automatic,
        logger: Logger = Logger(label: "spindle"), clock: ClockMode = .real
    ) throws(SpindleError) {
        DispatchWarmUp.ensure()
        virtualClock = clock == .virtual ? VirtualClock() : nil
        timers = TimerWheel(clock: Self.wheelClock(virtualClock))
        remoteTimers = SharedTimerWheel(clock: Self.wheelClock(virtualClock))
        registry = TaskRegistry(logger: logger)
        self.stoppedByRunBlocking = stoppedByRunBlocking
        let backend = try ReactorSelection.resolve(reactor, logger: logger)
        reactorBackend = backend
        self.reactor = try Reactor(backend, counters: counters.ring)
        // Never deallocated, for the reason given in Runtime.init.
        _ = Unmanaged.passRetained(self)
    }

    /// The loop whose thread the caller is on, or nil.
    public static var current: SpindleEventLoop? {
        guard let raw = spindle_current_loop() else { return nil }
        return Unmanaged<SpindleEventLoop>.fromOpaque(raw).takeUnretainedValue()
    }

    /// Whether the caller is on this loop's thread.
    public var inEventLoop: Bool {
        spindle_current_loop() == Unmanaged.passUnretained(self).toOpaque()
    }

    /// Whether shutdown has begun (spawn now fails).
    public var isShutDown: Bool { lifecycle.isShutDown }

    /// A snapshot of the loop's counters (the same shape as one runtime worker's).
    public func metrics() -> WorkerMetrics {
        var metrics = counters.snapshot
        metrics.reactor = reactorBackend
        return metrics
    }

    // MARK: Executor

    /// Schedules a job. Called by Swift concurrency; not meant to be called directly.
    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        if inEventLoop && !lifecycle.isStopping {
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
        if lifecycle.isStopped {
            Afterlife.adopt([job], from: self)
            return
        }
        inbox.withLock { inbox in
            inbox.append(job)
            inboxCount.store(inbox.count, ordering: .sequentiallyConsistent)
        }
        wakeIfParked()
        if lifecycle.isStopped { Afterlife.adopt(takeInbox(), from: self) }
    }

    private func wakeIfParked() {
        // Sequentially consistent: pairs with the loop's store of `parked` before its re-check.
        if parked.load(ordering: .sequentiallyConsistent),
           parked.exchange(false, ordering: .sequentiallyConsistent) {
            reactor.wake()
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
    /// `condition` returns true (checked once per turn), or until `deadline` (on the loop's
    /// clock, `now`) passes: a loop with nothing to do parks no later than that.
    func runLoop(until condition: () -> Bool = { false }, deadline: UInt64 = .max) {
        let previous = spindle_current_loop()
        let previousReactor = Reactor.current
        spindle_set_current_loop(Unmanaged.passUnretained(self).toOpaque())
        Reactor.setCurrent(reactor)
        defer {
            Reactor.setCurrent(previousReactor)
            spindle_set_current_loop(previous)
        }
        // Jobs run with the task-executor context only. Running them `isolatedTo:` the serial
        // executor as well made Swift hop (re-enqueue) on every switch into nonisolated code:
        // 4 jobs per channel round trip instead of 2. Actors pinned to the loop still run
        // correctly: Swift asks `isIsolatingCurrentContext()`, which is true on this thread.
        let taskExecutor = asUnownedTaskExecutor()
        while true {
            if condition() || (deadline != .max && now >= deadline) { break }
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
                publishedJob.store(unsafeBitCast(job, to: UInt.self), ordering: .relaxed)
                job.runSynchronously(on: taskExecutor)
                publishedJob.store(0, ordering: .relaxed)
                counters.jobsRun.bump()
                sinceMaintenance &+= 1
                if sinceMaintenance == Self.maintenanceInterval {
                    sinceMaintenance = 0
                    fireTimers()
                    reactor.flush()
                    moveInbox()
                }
            }
            // Submit what the turn prepared and take what completed (resumed tasks join the
            // run queue), once per turn.
            reactor.flush()
            if lifecycle.state.isStopping && runQueue.isEmpty && resumed.isEmpty { break }
            if runQueue.isEmpty && resumed.isEmpty {
                // The jobs just run may have satisfied the condition: check before sleeping.
                if condition() { break }
                park(deadline: deadline)
            }
        }
        if lifecycle.state.isStopping {
            lifecycle.markStopped()
            var leftovers: [UnownedJob] = []
            while let job = resumed.popFirst() { leftovers.append(job) }
            while let job = runQueue.popFirst() { leftovers.append(job) }
            leftovers.append(contentsOf: takeInbox())
            Afterlife.adopt(
                leftovers, timers: timers.removeAll() + remoteTimers.removeAll(), from: self, now: afterlifeNow)
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

    func takeInbox() -> [UnownedJob] {
        inbox.withLock { inbox in
            var jobs: [UnownedJob] = []
            while let job = inbox.popFirst() { jobs.append(job) }
            inboxCount.store(0, ordering: .sequentiallyConsistent)
            return jobs
        }
    }

    static let maintenanceInterval: UInt32 = 61
    static let maxResumedStreak = 3


    private func park(deadline: UInt64) {
        parked.store(true, ordering: .sequentiallyConsistent)
        if inboxCount.load(ordering: .sequentiallyConsistent) > 0
            || lifecycle.state.isStopping {
            parked.store(false, ordering: .sequentiallyConsistent)
            return
        }
        counters.parks.bump()
        if !timers.isEmpty {
            timers.sweepIfStale(now: monotonicNanos())  // idle: drop cancelled sleeps (TimerWheel.swift)
            counters.timersPending.store(UInt64(timers.count), ordering: .relaxed)
        }
        let wakeAt = min(deadline, timers.nextDeadline, remoteTimers.deadline)
        if let virtualClock {
            parkVirtually(until: wakeAt, clock: virtualClock)  // the one test real time pays
        } else {
            reactor.park(deadline: wakeAt)
        }
        parked.store(false, ordering: .sequentiallyConsistent)
    }

    /// Asks the loop to stop after the jobs it holds; wakes it if parked.
    func requestStop() {
        lifecycle.requestStop()
        if inEventLoop { return }
        reactor.wake()
    }
}
