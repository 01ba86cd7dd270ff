// The pool's threads: how one starts, takes jobs, idles for its keep-alive, and retires. The
// counts they keep are PoolControl.swift's state machine; the handshake between an idle thread
// and a submitter that claims it is described there and at `stopBeingIdle`.

internal import CSpindle
import Glibc
import Synchronization

extension BlockingPool {

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
    func threadMain() {
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
    func takeJob() -> BlockingJob? {
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

    func execute(_ job: BlockingJob) {
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
    func stopBeingIdle() {
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
    func sleepWhileIdle() -> Bool {
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
    func retireIfAsked() -> Bool {
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
    func exitThread(joinable: Bool) {
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
