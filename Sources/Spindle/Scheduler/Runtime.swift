// The work-stealing runtime: N workers, a global injection queue, the idle set, and the
// plumbing that makes it a Swift `TaskExecutor`.
//
// Swift concurrency hands the runtime jobs: a task's first run and every resumption after an
// `await`. `enqueue` puts a job in the best queue: the current worker's LIFO slot when called on
// one of our workers (a wake-up or spawn from running code), otherwise the injector plus at most
// one wake-up of a parked worker. Workers run, steal and park as Worker.swift describes.
//
// Lifecycle: running -> shuttingDown (spawn refuses, spawned tasks are cancelled and given a
// grace period) -> stopping (workers finish the job in hand and exit) -> stopped. Jobs that still
// arrive or remain after the workers exit are handed to Swift's global executor, so a late
// continuation resume can never be lost or leave a task hanging.

import CSpindle
import Glibc
import Logging
import Synchronization
@_spi(ExperimentalScheduling) @_spi(ExperimentalCustomExecutors) import _Concurrency

/// A multi-threaded, work-stealing executor for Swift concurrency.
///
/// ```swift
/// let sum = try await Runtime.run(workers: 2) {
///     try await withThrowingTaskGroup(of: Int.self) { group in
///         for i in 0..<1_000 { group.addTask { i } }
///         return try await group.reduce(0, +)
///     }
/// }
/// ```
///
/// Work reaches the runtime through task executor preference: `Task(executorPreference:)`,
/// `withTaskExecutorPreference(_:)`, `runtime.spawn(_:)`, and everything structured inside them
/// (`async let`, task-group children, nonisolated async functions, default actors). A plain
/// `Task {}` does not inherit a preference; use `spawn`, or install Spindle as the process-wide
/// default executor with ``Spindle/installAsDefaultExecutor(workers:)``.
public final class Runtime: TaskExecutor, @unchecked Sendable {
    // @unchecked Sendable: all stored properties are immutable after init, Sendable, or atomic;
    // `threads` is written once in init before any other thread can see `self`'s workers run
    // user code, and read only by the single caller that wins the transition to `stopping`.

    /// Number of worker threads.
    public let workerCount: Int
    /// The pool ``toThread(_:)`` uses on this runtime (threads named `<name>-blk-<n>`, started
    /// on demand). Shutdown of the runtime shuts it down after the spawned tasks' grace period.
    public let blockingPool: BlockingPool
    /// Set once in init, before any worker thread starts (thread creation orders that write
    /// before every read on the workers), and never changed.
    private(set) var workers: [Worker] = []
    /// The same workers as unretained references, for the steal and wake paths, which then do
    /// no reference counting. Valid while `workers` holds them (the runtime's lifetime).
    private(set) var workerRefs: UnsafeMutableBufferPointer<Unmanaged<Worker>> = .init(start: nil, count: 0)
    let injector = Injector()
    /// Jobs enqueued by threads that are not workers: resumptions (I/O from the process's I/O
    /// loop, blocking-pool results, continuations resumed by other executors). Kept apart from
    /// `injector`, which also holds the
    /// overflow and spill of busy workers, so that a resumption never waits behind a backlog of
    /// tasks that have not started yet.
    let remoteQueue = Injector()
    let idle: Idle
    let registry = TaskRegistry()
    private(set) var threads: [OSThread] = []
    private let exitedCount = Atomic<Int>(0)
    var exitedWorkers: Int { exitedCount.load(ordering: .acquiring) }
    let shutdownReport = Lock<ShutdownReport?>(nil)
    let shutdownDone = Gate()
    let allExited = Gate()
    /// Counters for `metrics()`, relaxed: statistics, ordering nothing.
    let foreignWakeups = Atomic<UInt64>(0)
    let remoteEnqueues = Atomic<UInt64>(0)
    let orphanedJobs = Atomic<UInt64>(0)

    /// Set when a thread that is not one of our workers enqueues a job; workers check it every
    /// tick (one relaxed load) and then take from the injector at once instead of waiting for
    /// the 61-tick check, so such a job waits at most for the job in progress. These are the
    /// latency-sensitive jobs: continuations resumed by other threads (blocking-pool results,
    /// I/O done on the process's I/O loop). Relaxed: the remote queue's own lock orders the job itself;
    /// a missed flag only delays a job to the 61-tick check, never loses it.
    let remotePending = Atomic<Bool>(false)

    /// Timers from other threads and from blocked workers; every worker fires what is due
    /// (at its maintenance tick and when it parks; a new earliest deadline wakes a parked one).
    private let remoteTimers = SharedTimerWheel()

    static let running = 0, shuttingDown = 1, stopping = 2, stopped = 3
    /// Lifecycle state. Sequentially consistent: enqueue's "push, then check stopped" and the
    /// last worker's "set stopped, then drain" must not both miss each other.
    let state = Atomic<Int>(0)

    /// Starts a runtime with `workers` threads (default: the CPUs this process may use,
    /// honouring its affinity mask and cgroup CPU quota).
    ///
    /// - Parameters:
    ///   - workers: the number of worker threads.
    ///   - name: the prefix of the threads' names.
    ///   - blockedWorkerThreshold: how long a worker may stay inside one job before the watch
    ///     reports it and hands its queued work to the other workers; nil turns the watch off.
    ///   - logger: where the watch reports blocked workers.
    ///
    /// - Throws: ``SpindleError/invalidWorkerCount(_:)`` for a count below 1;
    ///   ``SpindleError/ioUringUnavailable(errno:reason:)`` when the kernel refuses io_uring;
    ///   ``SpindleError/threadCreationFailed(errno:)`` when threads cannot be started.
    public init(
        workers: Int? = nil,
        name: String = "spindle",
        blockedWorkerThreshold: Duration? = .milliseconds(100),
        logger: Logger = Logger(label: "spindle")
    ) throws(SpindleError) {
        let count = workers ?? WorkerCount.available()
        guard count >= 1 else { throw SpindleError.invalidWorkerCount(count) }
        DispatchWarmUp.ensure()
        workerCount = count
        defersIOWakeups = blockedWorkerThreshold != nil
        hasBlockedWorkerWatch = blockedWorkerThreshold != nil
        blockingPool = BlockingPool(validated: "\(name)-blk")
        idle = Idle(workerCount: count)
        // Workers need `self`, so they are created after the stored properties are set.
        self.workers = (0..<count).map { Worker(index: $0, runtime: self) }
        workerRefs = .allocate(capacity: count)
        _ = workerRefs.initialize(from: self.workers.map { Unmanaged.passUnretained($0) })
        try start(name: name)
        if let blockedWorkerThreshold {
            let watch = BlockedWorkerWatch(runtime: self, threshold: blockedWorkerThreshold, logger: logger)
            do throws(SpindleError) {
                try watch.start(name: name)
            } catch {
                shutdownBlocking(gracePeriod: .zero)
                throw error
            }
            self.watch = watch
        }
        // Never deallocated: tasks hold unowned references to their executor, and a job can
        // reach a stopped runtime long after shutdown (a continuation resumed late). A stopped
        // runtime costs a few kilobytes; a freed one would be a use-after-free.
        _ = Unmanaged.passRetained(self)
    }

    /// Set once in init; nil when the watch is off.
    private(set) var watch: BlockedWorkerWatch?
    /// Whether workers defer the wake-up for work their own completions resumed (Worker's
    /// `reapRing`). Only with the watch, which bounds the deferral when a job runs long. Set in
    /// init before any worker starts, never changed.
    let defersIOWakeups: Bool
    /// Whether the runtime has a blocked-worker watch, which its workers' rings must then let
    /// reap them (Ring.swift, "adoptable"). Set in init before any worker starts, never changed.
    let hasBlockedWorkerWatch: Bool

    private func start(name: String) throws(SpindleError) {
        let failures = Lock<SpindleError?>(nil)
        let ready = Atomic<Int>(0)
        let started = Gate()
        var spawned: [OSThread] = []
        for worker in workers {
            do throws(SpindleError) {
                let thread = try OSThread.spawn(name: "\(name)-\(worker.index)") { [self] in
                    do throws(SpindleError) {
                        try worker.prepare()
                    } catch {
                        failures.withLock { $0 = $0 ?? error }
                    }
                    // Acquire-release: the last thread to arrive opens the gate after every
                    // other thread's `prepare` (and failure record) is visible.
                    if ready.add(1, ordering: .acquiringAndReleasing).newValue == workerCount {
                        started.open()
                    }
                    // Wait until every worker has its ring (or someone failed), so that no
                    // worker tries to wake a sibling whose ring does not exist yet.
                    started.wait()
                    if failures.withLock({ $0 }) == nil {
                        worker.run()  // closes the ring when it returns
                    } else if let ring = worker.ring {
                        ring.close()  // a sibling failed to start: this worker never runs
                    }
                    workerExited()
                }
                spawned.append(thread)
            } catch {
                failures.withLock { $0 = $0 ?? error }
                // Threads already started will wait forever for the missing ones: count the
                // missing ones as arrived so the gate opens and they exit.
                let missing = workerCount - spawned.count
                if ready.add(missing, ordering: .acquiringAndReleasing).newValue == workerCount {
                    started.open()
                }
                break
            }
        }
        threads = spawned
        started.wait()
        if let failure = failures.withLock({ $0 }) {
            state.store(Self.stopped, ordering: .sequentiallyConsistent)
            for thread in spawned { thread.join() }
            throw failure
        }
    }

    deinit {
        workerRefs.deallocate()
    }

    private func workerExited() {
        // Acquire-release: the last worker out sees every other worker's drain.
        if exitedCount.add(1, ordering: .acquiringAndReleasing).newValue == workerCount {
            state.store(Self.stopped, ordering: .sequentiallyConsistent)
            drainInjectorAfterStop()
            allExited.open()
        }
    }

    var isStopping: Bool { state.load(ordering: .relaxed) >= Self.stopping }

    /// Whether the runtime has been asked to shut down (spawn now fails).
    public var isShutDown: Bool { state.load(ordering: .sequentiallyConsistent) != Self.running }

    // MARK: Executor

    /// Schedules a job. Called by Swift concurrency; not meant to be called directly.
    public func enqueue(_ job: consuming ExecutorJob) {
        // Not a task: a runtime-internal job such as the one `Task.yield()` enqueues to resume
        // the yielding task later. It belongs at the back of the queue, not in the LIFO slot.
        let isTask = job.kind == .task
        let job = UnownedJob(job)
        if let raw = spindle_current_worker() {
            let scheduled = Unmanaged<Worker>.fromOpaque(raw)._withUnsafeGuaranteedRef { worker -> Bool in
                guard worker.runtime === self, !isStopping else { return false }
                worker.schedule(job, isTask: isTask)
                return true
            }
            if scheduled { return }
        }
        scheduleRemote(job)
    }

    private func scheduleRemote(_ job: UnownedJob) {
        if state.load(ordering: .sequentiallyConsistent) == Self.stopped {
            orphan([job])
            return
        }
        remoteQueue.push(job)
        remoteEnqueues.add(1, ordering: .relaxed)
        remotePending.store(true, ordering: .relaxed)
        if state.load(ordering: .sequentiallyConsistent) == Self.stopped {
            drainInjectorAfterStop()
            return
        }
        notifyParked(from: nil)
    }

    /// Wakes one parked worker if the wake-up rule says work is waiting and nobody looks for it.
    func notifyParked(from sender: Worker?) {
        guard let index = idle.workerToNotify() else { return }
        workerRefs[index]._withUnsafeGuaranteedRef { $0.ring.wake() }
        if let sender {
            sender.counters.wakeupsSent.bump()
        } else {
            foreignWakeups.add(1, ordering: .relaxed)
        }
    }

    /// Whether any queue holds a job (the last searcher's re-check before it sleeps).
    var hasPendingWork: Bool {
        if !injector.isEmpty || !remoteQueue.isEmpty { return true }
        for worker in workerRefs where worker._withUnsafeGuaranteedRef({ !$0.queue.isEmpty }) {
            return true
        }
        return false
    }

    // MARK: Timers

    /// Schedules a timer to fire at `deadline` (CLOCK_MONOTONIC nanoseconds): on the calling
    /// worker's wheel if it is one of ours, else on the shared one.
    func scheduleTimer(_ action: TimerAction, deadline: UInt64) {
        if let raw = spindle_current_worker() {
            let scheduled = Unmanaged<Worker>.fromOpaque(raw)._withUnsafeGuaranteedRef { worker -> Bool in
                guard worker.runtime === self, !isStopping else { return false }
                worker.scheduleTimer(action, deadline: deadline)
                return true
            }
            if scheduled { return }
        }
        if isStopping {
            orphan([], timers: [(action, deadline)])
            return
        }
        scheduleSharedTimer(action, deadline: deadline)
        // As in `scheduleRemote`: if the last worker stopped meanwhile, its drain may have
        // missed this timer; drain again (both sides sequentially consistent).
        if state.load(ordering: .sequentiallyConsistent) == Self.stopped { drainInjectorAfterStop() }
    }

    /// Puts a timer in the heap every worker watches (timers from other threads, and those
    /// moved off a blocked worker).
    func scheduleSharedTimer(_ action: TimerAction, deadline: UInt64) {
        if remoteTimers.insert(action, deadline: deadline), let index = idle.anySleeper() {
            // A parked worker must recompute its park timeout to include the new deadline.
            workers[index].ring.wake()
            foreignWakeups.add(1, ordering: .relaxed)
        }
    }

    var remoteTimerDeadline: UInt64 { remoteTimers.deadline }

    /// Moves due timers from the shared heap to `worker`. Called by the worker itself.
    func fireRemoteTimers(on worker: Worker) {
        if remoteTimers.deadline == .max { return }
        let due = remoteTimers.popDue(now: monotonicNanos())
        if !due.isEmpty { worker.acceptDueTimers(due) }
    }

    // MARK: Shutdown plumbing

    /// Hands jobs that can no longer run here to Swift's global executor (see Afterlife.swift).
    func orphan(_ jobs: [UnownedJob], timers: [TimedAction] = []) {
        if jobs.isEmpty && timers.isEmpty { return }
        orphanedJobs.add(UInt64(jobs.count + timers.count), ordering: .relaxed)
        Afterlife.adopt(jobs, timers: timers, from: self)
    }

    private func drainInjectorAfterStop() {
        var leftovers: [UnownedJob] = []
        while let job = remoteQueue.pop() { leftovers.append(job) }
        while let job = injector.pop() { leftovers.append(job) }
        orphan(leftovers, timers: remoteTimers.removeAll())
    }
}

extension Runtime: TimerScheduler {}
