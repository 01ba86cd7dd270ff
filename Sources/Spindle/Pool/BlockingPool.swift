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

import CSpindle
import Glibc
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
/// Every ``Runtime`` and ``EventLoop`` has one (``Runtime/blockingPool``), which
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

    private let keepAliveNanos: UInt64
    let control = Atomic<PoolControl>(.initial)
    let queue = JobQueue()
    let idleThreads = Semaphore()
    let threads = Lock(PoolThreads())
    let counters = PoolCounters()
    private let threadSerial = Atomic<Int>(0)
    /// Permits posted by `releaseIdleThreads` whose threads are to exit rather than look for work.
    private let retirements = Atomic<Int>(0)
    /// Whether the growth monitor runs (PoolGrowth.swift).
    let monitorRunning = Atomic<Bool>(false)
    let shutdownReport = Lock<BlockingPoolShutdownReport?>(nil)
    let shutdownDone = Gate()

    /// Makes a pool. No thread starts until the first job arrives.
    ///
    /// - Parameters:
    ///   - name: prefix of the thread names (the kernel keeps 15 bytes of a thread name).
    ///   - maxThreads: the most threads running jobs at once, at least 1 (512 by default, for
    ///     blocking calls; CPU work alone never needs more threads than CPUs).
    ///   - keepAlive: how long an idle thread waits for a job before it exits.
    /// - Throws: ``SpindleError/invalidThreadLimit(_:)`` when `maxThreads` is below 1 or above
    ///   16,777,215.
    public convenience init(
        name: String = "spindle-blk", maxThreads: Int = 512, keepAlive: Duration = .seconds(10)
    ) throws(SpindleError) {
        guard maxThreads >= 1, maxThreads <= PoolControl.maxThreadLimit else {
            throw SpindleError.invalidThreadLimit(maxThreads)
        }
        self.init(validated: name, maxThreads: maxThreads, keepAlive: keepAlive)
    }

    /// For callers whose arguments are known to be valid (runtimes, loops, `shared`).
    init(validated name: String, maxThreads: Int = 512, keepAlive: Duration = .seconds(10)) {
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
    private func submit(_ job: BlockingJob) {
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

    // MARK: Threads

    /// Starts a thread, already counted in `control.live` by the caller (a submitter for its
    /// `job`, or the growth monitor).
    func startThread(for job: BlockingJob?) {
        let number = threadSerial.add(1, ordering: .relaxed).newValue  // relaxed: only names threads
        counters.starting.add(1, ordering: .relaxed)  // relaxed: a hint (PoolGrowth.swift)
        let failure: SpindleError? = threads.withLock { threads in
            // The lock is held across the creation so the thread cannot record its exit first.
            do throws(SpindleError) {
                let thread = try OSThread.spawn(name: "\(name)-\(number)") { [self] in threadMain() }
                threads.started(thread.handle)
                return nil
            } catch {
                counters.starting.subtract(1, ordering: .relaxed)
                updateControl { ($0.exiting(), ()) }
                return error
            }
        }
        guard let failure else { return }
        if let job { withdraw(job, error: failure) }
        // If no thread is left, nothing will ever take the jobs still queued: fail them too.
        // (Sequentially consistent like every access to `control`; a thread started meanwhile
        // only means some of these jobs fail that could have run, never that one is lost.)
        if control.load(ordering: .sequentiallyConsistent).live == 0 {
            while let queued = queue.pop() { withdraw(queued, error: failure) }
        }
    }

    /// A pool thread's life: take jobs while there are any, else sleep until claimed for one,
    /// until the keep-alive passes or the pool closes.
    private func threadMain() {
        // Below the workers: a worker that wakes preempts a pool thread (PoolGrowth.swift).
        let threadID = spindle_gettid()
        setpriority(__priority_which_t(PRIO_PROCESS.rawValue), id_t(threadID), PoolGrowth.threadNiceness)
        threads.withLock { $0.register(pthread_self(), threadID: threadID) }
        var started = false
        while true {
            let job = takeJob()
            if !started {
                started = true
                counters.starting.subtract(1, ordering: .relaxed)  // looked at the queue once
            }
            if let job {
                execute(job)
                continue
            }
            guard updateControl({ $0.enteringIdle().map { ($0, ()) } }) != nil else {
                exitThread(joinable: true)  // closed: the shutdown joins us
                return
            }
            // The idle thread's half of the handshake: look once more after counting as idle.
            if let job = takeJob() {
                stopBeingIdle()
                execute(job)
                continue
            }
            guard sleepWhileIdle() else { return }
        }
    }

    /// The oldest job that has not been cancelled, now owned by the caller; nil when none.
    private func takeJob() -> BlockingJob? {
        while let job = queue.pop() {
            // Once closed, nothing starts: a job still queued is cancelled instead. Sequentially
            // consistent: a close that precedes this load in the single order is seen, so no
            // job starts after a shutdown's drain has begun.
            if control.load(ordering: .sequentiallyConsistent).isClosed {
                withdraw(job, error: CancellationError())
                continue
            }
            if job.claim() {
                counters.jobLeftQueue()
                return job
            }
            // A tombstone (cancelled while queued): released here.
        }
        return nil
    }

    private func execute(_ job: BlockingJob) {
        counters.started.add(1, ordering: .relaxed)
        job.run { counters.completed.add(1, ordering: .relaxed) }
    }

    /// An idle thread that found a job itself un-counts itself as idle, unless a submitter
    /// claimed it first, in which case it takes the permit that submitter posts.
    ///
    /// Permits are interchangeable: a thread that went idle after our look at `idle` may take
    /// the permit posted for our claim, and `idle` then counts us again while no permit is on
    /// its way to anyone. Waiting for one without bound held the job we found until some later
    /// submission posted another: a batch whose last job was ours hung (issue 11's fresh-clone
    /// hang, `idleThreadsRacingForOnePermitStrandNoJob`). So wait for a permit briefly, then
    /// look at `idle` again; each way out takes us out of the idle phase exactly once (one
    /// permit, or one off `idle`), which keeps the invariant in PoolControl.swift.
    private func stopBeingIdle() {
        while updateControl({ $0.leavingIdle().map { ($0, ()) } }) == nil {
            // The permit of a claim normally arrives within microseconds (its submitter is
            // between its compare-and-swap and its sem_post); a millisecond bounds the stolen case.
            if idleThreads.wait(deadline: monotonicNanos() + 1_000_000) { return }
        }
    }

    /// Sleeps until claimed (returns true: look for work) or until the keep-alive passes
    /// unclaimed (the thread has left the pool; returns false).
    ///
    /// A retirement that finds `idle == 0` means every idle thread has been claimed at that
    /// instant and permits are on their way, but permits are interchangeable: the one posted for
    /// that claim may be taken by another thread that went idle after us (the pool then counts
    /// us idle again). So a failed retirement waits for a permit for another keep-alive and then
    /// tries again, never without bound: a thread that waited for one without a deadline here
    /// outlived its keep-alive for as long as the pool saw no job, and survived a test whose
    /// pool was never shut down (issue 11's fresh-clone failure left `spindle-brst-27` so).
    private func sleepWhileIdle() -> Bool {
        while true {
            let now = monotonicNanos()
            let deadline = keepAliveNanos >= UInt64.max - now ? UInt64.max : now + keepAliveNanos
            if idleThreads.wait(deadline: deadline) { return !retireIfAsked() }
            let retired = threads.withLock { threads -> Bool in
                guard updateControl({ $0.retiringIdle().map { ($0, ()) } }) != nil else { return false }
                threads.exiting(pthread_self(), joinable: false)
                return true
            }
            if retired { return false }
            // Claimed just as the keep-alive ran out: a permit is on its way (to us or to
            // another idle thread, which then leaves `idle` counting us).
        }
    }

    /// After a permit: exits if `releaseIdleThreads` asked for a retirement still unserved.
    private func retireIfAsked() -> Bool {
        // Acquire/release: nothing rides on this counter beyond its own value (the permit's
        // sem_post/sem_wait already ordered the increment before this load).
        var pending = retirements.load(ordering: .acquiring)
        while pending > 0 {
            let (exchanged, original) = retirements.compareExchange(
                expected: pending, desired: pending - 1, ordering: .acquiringAndReleasing)
            if exchanged {
                exitThread(joinable: false)
                return true
            }
            pending = original
        }
        return false
    }

    /// Leaves the pool: uncounted and filed (or detached) in one step, so that whoever sees the
    /// live count reach zero (shutdown) finds every joinable handle filed.
    private func exitThread(joinable: Bool) {
        threads.withLock { threads in
            updateControl { ($0.exiting(), ()) }
            threads.exiting(pthread_self(), joinable: joinable)
        }
    }

    /// Idle threads exit now instead of at the end of their keep-alive. Best effort: a thread
    /// claimed for a job at the same moment stays. Tests use it to leave no thread behind in
    /// ``shared``.
    func releaseIdleThreads() {
        guard let (before, _) = updateControl({ $0.idle == 0 ? nil : ($0.claimingAllIdle(), ()) }) else { return }
        // Release: seen by the thread that takes one of the permits below (see retireIfAsked).
        retirements.add(before.idle, ordering: .releasing)
        idleThreads.signal(count: before.idle)
    }
}
