// The work-stealing runtime's public face: a `TaskExecutor` over N workers (Worker.swift) and
// the state they share (RuntimeShared.swift: queues, idle set, timers of other threads,
// lifecycle). This file starts the workers; Runtime+Lifecycle.swift is the public lifecycle
// (spawn, run, shutdown, metrics).
//
// Swift concurrency hands the runtime jobs: a task's first run and every resumption after an
// `await`; `enqueue` passes them to `RuntimeShared.schedule`. Lifecycle (Core/Lifecycle.swift):
// shutdown begins (spawn refuses, spawned tasks are cancelled and given a grace period), then
// the workers stop (they finish the job in hand and exit), then the runtime is stopped. Jobs
// that still arrive or remain after the workers exit are handed to Swift's global executor
// (Core/Afterlife.swift), so a late continuation resume can never be lost or leave a task
// hanging.

internal import CSpindle
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
/// default executor with ``installAsDefaultExecutor(workers:)``.
public final class Runtime: TaskExecutor, @unchecked Sendable {
    // @unchecked Sendable: all stored properties are immutable after init, Sendable, or atomic;
    // `threads` and `watch` are written once in init before any other thread can see `self`,
    // and `threads` is read only by the single caller that wins the shutdown.

    /// Number of worker threads.
    public let workerCount: Int
    /// The pool ``toThread(_:)`` uses on this runtime (threads named `<name>-blk-<n>`, started
    /// on demand). Shutdown of the runtime shuts it down after the spawned tasks' grace period.
    public let blockingPool: BlockingPool
    /// What the workers share.
    let shared: RuntimeShared
    /// The tasks started with `spawn`, which shutdown cancels and waits for.
    let registry: TaskRegistry
    private(set) var threads: [OSThread] = []
    /// Set once in init; nil when the watch is off.
    private(set) var watch: BlockedWorkerWatch?
    /// The first shutdown's report, set when it is done (later calls return it).
    let shutdownReport = Lock<ShutdownReport?>(nil)
    let shutdownDone = Gate()

    /// Starts a runtime with `workers` threads (default: the CPUs this process may use,
    /// honouring its affinity mask and cgroup CPU quota).
    ///
    /// - Parameters:
    ///   - workers: the number of worker threads.
    ///   - name: the prefix of the threads' names.
    ///   - blockedWorkerThreshold: how long a worker may stay inside one job before the watch
    ///     reports it and hands its queued work to the other workers; nil turns the watch off.
    ///   - logger: where the watch reports blocked workers, where the choice of reactor is
    ///     explained when io_uring is refused (once per process), and where failures of
    ///     spawned tasks that nobody can await are reported.
    ///   - reactor: io_uring or epoll; `.automatic` (the default) takes io_uring when the kernel
    ///     and the sandbox allow it and epoll otherwise, and honours `SPINDLE_REACTOR`
    ///     (`epoll`, `io_uring`, `auto`). See ``ReactorChoice``.
    ///
    /// - Throws: ``SpindleError/invalidWorkerCount(_:)`` for a count below 1;
    ///   ``SpindleError/ioUringUnavailable(errno:reason:)`` when io_uring was asked for
    ///   (`.ioUring`, or `SPINDLE_REACTOR=io_uring`) and the kernel refuses it;
    ///   ``SpindleError/threadCreationFailed(errno:)`` when threads cannot be started.
    public init(
        workers: Int? = nil,
        name: String = "spindle",
        blockedWorkerThreshold: Duration? = .milliseconds(100),
        logger: Logger = Logger(label: "spindle"),
        reactor: ReactorChoice = .automatic
    ) throws(SpindleError) {
        let count = workers ?? WorkerCount.available()
        guard count >= 1 else { throw SpindleError.invalidWorkerCount(count) }
        let backend = try ReactorSelection.resolve(reactor, logger: logger)
        DispatchWarmUp.ensure()
        workerCount = count
        registry = TaskRegistry(logger: logger)
        blockingPool = BlockingPool(validated: "\(name)-blk")
        shared = RuntimeShared(
            workerCount: count, hasBlockedWorkerWatch: blockedWorkerThreshold != nil, reactorBackend: backend)
        shared.attach(self)
        try start(name: name)
        if let blockedWorkerThreshold {
            let watch = BlockedWorkerWatch(shared: shared, registry: registry, threshold: blockedWorkerThreshold, logger: logger)
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

    private func start(name: String) throws(SpindleError) {
        let failures = Lock<SpindleError?>(nil)
        let ready = Atomic<Int>(0)
        let started = Gate()
        var spawned: [OSThread] = []
        for worker in shared.workers {
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
                    } else if let reactor = worker.reactor {
                        reactor.close()  // a sibling failed to start: this worker never runs
                    }
                    shared.workerExited()
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
            shared.lifecycle.markStopped()
            for thread in spawned { thread.join() }
            throw failure
        }
    }

    /// Whether the runtime has been asked to shut down (spawn now fails).
    public var isShutDown: Bool { shared.lifecycle.isShutDown }

    /// The I/O backend of the workers' rings (also in ``metrics()``).
    public var reactorBackend: ReactorBackend { shared.reactorBackend }

    // MARK: Executor

    /// Schedules a job. Called by Swift concurrency; not meant to be called directly.
    public func enqueue(_ job: consuming ExecutorJob) {
        // Not a task: a runtime-internal job such as the one `Task.yield()` enqueues to resume
        // the yielding task later. It belongs at the back of the queue, not in the LIFO slot.
        let isTask = job.kind == .task
        shared.schedule(UnownedJob(job), isTask: isTask)
    }
}

extension Runtime: TimerScheduler {
    /// Sets a timer: on the calling worker's wheel if it is one of ours, else on the shared one.
    func scheduleTimer(_ action: TimerAction, deadline: UInt64) {
        shared.scheduleTimer(action, deadline: deadline)
    }
}

@_spi(ExperimentalScheduling)
extension Runtime: SchedulingExecutor {
    /// Runs `job` at `instant` on `clock`. Swift calls this for `Task.sleep` in tasks that run
    /// on this runtime. The deadline is never early; it is late by at most the job in progress
    /// on the worker that holds the timer.
    public func enqueue<C: Clock>(
        _ job: consuming ExecutorJob, at instant: C.Instant, tolerance: C.Duration?, clock: C
    ) {
        enqueueDelayed(job, after: clock.now.duration(to: instant))
    }

    /// Runs `job` after `delay` on `clock`.
    public func enqueue<C: Clock>(
        _ job: consuming ExecutorJob, after delay: C.Duration, tolerance: C.Duration?, clock: C
    ) {
        enqueueDelayed(job, after: delay)
    }
}
