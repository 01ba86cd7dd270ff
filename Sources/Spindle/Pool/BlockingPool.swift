// The blocking pool: elastic OS threads for closures that block or burn CPU, so that they never
// hold up a worker or an event loop (asyncio's `to_thread` / `run_in_executor`, Tokio's
// `spawn_blocking`).
//
// Parts:
// - JobQueue: the FIFO of jobs waiting for a thread. Submitting is one atomic exchange (no
//   lock); pool threads take jobs under a lock only they use.
// - PoolControl: live threads, idle threads and "closed" in one atomic word. After queueing its
//   job a submitter makes one compare-and-swap decision: claim an idle thread (and post it a
//   semaphore permit), else count a new thread and start it (up to the CPU count), else leave
//   the job queued for the first busy thread that finishes.
// - PoolGrowth: past the CPU count, a monitor that runs only while jobs wait starts more
//   threads (up to `maxThreads`) when the busy ones are blocked rather than computing: 200
//   simultaneous CPU jobs must not become 200 runnable threads that starve the workers.
// - Semaphore: idle threads sleep on it, up to `keepAlive`; a thread that times out and is
//   still unclaimed retires.
// - PoolThreads: thread handles (retiring threads detach themselves; shutdown joins the rest),
//   behind a lock taken only when a thread starts or exits and at shutdown.
//
// So the path of a submission is: allocate the job, two counters, one exchange, one
// compare-and-swap, and a `sem_post` when a thread was idle. No lock is shared by submitters.
// Measured against a single mutex (BlockingSubmissionMeasurement.swift, 2 CPUs, release): a
// push costs 45-50 ns with 1-8 producers against 270-440 ns for a mutex-guarded array, and an
// empty job's round trip from 4-16 tasks on 2 workers 4.4-4.8 us against 10.3-11.2 us for a
// pool of Tokio's shape (one mutex around queue and counts, one condition variable). From a
// single task it is 22 us against 19: a pool thread at nice +10 waits for a worker that spins
// after waking (12 us at nice 0; see PoolGrowth.threadNiceness for why +10).
//
// The handshake that keeps a job from being stranded: a submitter queues, then reads the
// control word; a thread going idle counts itself idle, then looks at the queue once more. All
// four operations are sequentially consistent, so at least one of them sees the other: the
// submitter claims the thread, or the thread finds the job.
//
// Cancellation and shutdown go through each job's own state machine (BlockingJob), so a job
// is run or answered with an error exactly once, whoever races.
//
// What is deliberately missing: interrupting a running job (threads cannot be), and priority
// between jobs (FIFO only).

internal import CSpindle
import Glibc
import Logging
import Synchronization

/// Elastic OS threads that run blocking or CPU-heavy closures for async code.
///
/// A job that arrives when no pool thread is idle starts a new thread at once while fewer
/// threads run than the process has CPUs. Past that, it waits in FIFO order for the first
/// thread to finish, and the pool starts more threads (up to `maxThreads`, within about a
/// millisecond) only while the busy ones are blocked rather than computing: a burst of blocking
/// calls gets a thread each, a burst of CPU work runs on about as many threads as CPUs and does
/// not crowd out the runtime's workers. A thread that has been idle for `keepAlive` exits.
/// Pool threads run at a lower priority than workers (nice +10). Threads are named
/// `<name>-<n>`; while jobs wait past the CPU count, a monitor thread `<name>-mon` runs too.
///
/// ```swift
/// let pool = try BlockingPool(name: "db", maxThreads: 1)  // a library that is not thread-safe
/// let rows = try await runInExecutor(pool) { try database.query("select 1") }
/// await pool.shutdown()
/// ```
///
/// Every ``Runtime`` and ``SpindleEventLoop`` has one (``Runtime/blockingPool``), which
/// ``toThread(_:)`` uses; ``shared`` serves code that runs on neither.
///
/// **Cancellation.** A job that has not started when its task is cancelled is removed and
/// ``run(_:)`` throws `CancellationError`. A job that has started cannot be interrupted: it runs
/// to completion, and if the awaiting task has been cancelled by the time it returns, its value
/// or error is dropped and `run` throws `CancellationError`. `run` therefore never returns
/// while its closure is still running.
public final class BlockingPool: Sendable {
    /// The prefix of the pool's thread names.
    public let name: String
    /// The most threads the pool runs at once.
    public let maxThreads: Int
    /// How long a thread waits for a job before it exits.
    public let keepAlive: Duration
    /// How many threads submitters start at once: the CPUs this process may use (at most
    /// `maxThreads`). Past it the growth monitor decides (PoolGrowth.swift).
    let cpuBudget: Int

    let keepAliveNanos: UInt64
    let control = Atomic<PoolControl>(.initial)
    let queue = JobQueue()
    let idleThreads = Semaphore()
    let threads = Lock(PoolThreads())
    let counters = PoolCounters()
    let threadSerial = Atomic<Int>(0)
    /// Permits posted by `releaseIdleThreads` whose threads are to exit rather than look for work.
    let retirements = Atomic<Int>(0)
    /// Whether the growth monitor runs (PoolGrowth.swift).
    let monitorRunning = Atomic<Bool>(false)
    let shutdownReport = Lock<BlockingPoolShutdownReport?>(nil)
    let shutdownDone = Gate()
    /// Where the shutdown's report is logged; nil for the pools of runtimes and loops, whose
    /// own shutdown reports include the pool's.
    let logger: Logger?

    /// Makes a pool. No thread starts until the first job arrives.
    ///
    /// - Parameters:
    ///   - name: prefix of the thread names (the kernel keeps 15 bytes of a thread name).
    ///   - maxThreads: the most threads running jobs at once, at least 1 (512 by default, for
    ///     blocking calls; CPU work alone never needs more threads than CPUs).
    ///   - keepAlive: how long an idle thread waits for a job before it exits.
    ///   - logger: where ``shutdown(gracePeriod:)`` reports what it cancelled and left running.
    /// - Throws: ``SpindleError/invalidThreadLimit(_:)`` when `maxThreads` is below 1 or above
    ///   16,777,215.
    public convenience init(
        name: String = "spindle-blk", maxThreads: Int = 512, keepAlive: Duration = .seconds(10),
        logger: Logger = Logger(label: "spindle")
    ) throws(SpindleError) {
        guard maxThreads >= 1, maxThreads <= PoolControl.maxThreadLimit else {
            throw SpindleError.invalidThreadLimit(maxThreads)
        }
        self.init(validated: name, maxThreads: maxThreads, keepAlive: keepAlive, logger: logger)
    }

    /// For callers whose arguments are known to be valid (runtimes, loops, `shared`).
    init(validated name: String, maxThreads: Int = 512, keepAlive: Duration = .seconds(10), logger: Logger? = nil) {
        self.logger = logger
        self.name = name
        self.maxThreads = maxThreads
        self.keepAlive = keepAlive
        keepAliveNanos = keepAlive.clampedNanoseconds
        cpuBudget = min(maxThreads, WorkerCount.available())
    }

    deinit {
        // Every thread holds a reference to the pool, so all of them have exited. Any not yet
        // joined is detached (this may be running on the last of them, which cannot join itself).
        for handle in threads.withLock({ $0.takeExited() }) { pthread_detach(handle) }
    }

    /// The pool Spindle uses for code that runs on no Spindle runtime or event loop.
    public static let shared = BlockingPool(validated: "spindle-blk")

    /// A snapshot of the pool's counters.
    public func metrics() -> BlockingPoolMetrics {
        // Relaxed throughout: a snapshot orders nothing (see BlockingPoolMetrics.swift).
        let control = control.load(ordering: .relaxed)
        return BlockingPoolMetrics(
            threadsAlive: control.live,
            threadsIdle: control.idle,
            threadsHighWater: counters.threadsHighWater.load(ordering: .relaxed),
            jobsQueued: max(0, counters.queued.load(ordering: .relaxed)),
            queueDepthHighWater: counters.queueHighWater.load(ordering: .relaxed),
            jobsStarted: counters.started.load(ordering: .relaxed),
            jobsCompleted: counters.completed.load(ordering: .relaxed),
            jobsCancelled: counters.cancelled.load(ordering: .relaxed),
            jobsAbandoned: counters.abandoned.load(ordering: .relaxed))
    }

    // MARK: Submitting

    /// Runs `body` on one of the pool's threads and returns its value or rethrows its error.
    /// The awaiting task resumes on its own executor.
    ///
    /// - Throws: `body`'s error; `CancellationError` when the task is cancelled before the job
    ///   starts, or while it runs (the job finishes first; its outcome is dropped);
    ///   ``SpindleError/shutDown`` after ``shutdown(gracePeriod:)`` has begun (a job still
    ///   queued when shutdown begins throws `CancellationError`);
    ///   ``SpindleError/threadCreationFailed(errno:)`` when the pool has no thread and cannot
    ///   start one.
    public nonisolated(nonsending) func run<Success: Sendable>(
        _ body: @escaping @Sendable () throws -> Success
    ) async throws -> Success {
        let job = TypedBlockingJob(body)
        let value = try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Success, any Error>) in
                job.continuation = continuation
                submit(job)
            }
        } onCancel: {
            withdraw(job, error: CancellationError())
        }
        // A job that had started ran to completion; a task cancelled meanwhile drops its outcome.
        try Task.checkCancellation()
        return value
    }

    /// Queues `job` and makes sure a thread will take it. Runs inside the continuation closure:
    /// every path ends with the job queued or its task answered.
    func submit(_ job: BlockingJob) {
        // Sequentially consistent: with shutdown's close, see `dispatch` below.
        if control.load(ordering: .sequentiallyConsistent).isClosed {
            job.resume(throwing: SpindleError.shutDown)
            return
        }
        counters.jobQueued()
        guard job.markQueued() else {
            // Cancelled before it was queued: its task is ours to answer.
            counters.jobLeftQueue()
            counters.cancelled.add(1, ordering: .relaxed)
            job.resume(throwing: CancellationError())
            return
        }
        queue.push(job)
        guard let (before, dispatch) = updateControl({ $0.dispatching(maxThreads: maxThreads, cpuBudget: cpuBudget) })
        else { return }
        switch dispatch {
        case .wakeIdleThread:
            idleThreads.signal()
        case .startThread:
            counters.threadsHighWater.raiseShared(to: before.live + 1)
            startThread(for: job)
        case .deferToMonitor:
            ensureMonitor()
        case .leaveQueued:
            break
        case .closed:
            // Shutdown's drain may already have passed this job: withdraw it unless someone
            // (the drain, or a thread) has it.
            withdraw(job, error: SpindleError.shutDown)
        }
    }

    /// Cancels `job` if it has not started, answering its task with `error`. Returns whether it
    /// did.
    @discardableResult
    func withdraw(_ job: BlockingJob, error: any Error) -> Bool {
        guard job.cancel() == BlockingJob.queued else { return false }
        counters.jobLeftQueue()
        counters.cancelled.add(1, ordering: .relaxed)
        job.resume(throwing: error)
        return true
    }

    /// Moves `control` by `transition` (nil: leave it) and returns the value it moved from.
    ///
    /// Sequentially consistent, loads and exchanges alike: the queue/idle handshake in the file
    /// comment needs a single order over these and the queue's ends.
    @discardableResult
    func updateControl<Outcome>(
        _ transition: (PoolControl) -> (PoolControl, Outcome)?
    ) -> (before: PoolControl, outcome: Outcome)? {
        var current = control.load(ordering: .sequentiallyConsistent)
        while true {
            guard let (next, outcome) = transition(current) else { return nil }
            let (exchanged, original) = control.compareExchange(
                expected: current, desired: next, ordering: .sequentiallyConsistent)
            if exchanged { return (current, outcome) }
            current = original
        }
    }
}
