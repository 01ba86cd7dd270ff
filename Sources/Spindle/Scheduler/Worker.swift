// One worker: an OS thread that runs jobs from its LIFO slot and local queue, takes from the
// injector, steals from other workers, and parks in its own io_uring when there is nothing to do.
//
// A tick is one job. The order in which a tick looks for work (design.md, "A worker's loop"):
// 1. every 61 ticks, the injector first (global work is never starved) and the ring without
//    waiting (completions are never starved by a busy queue); and on any tick, the injector
//    first when another thread has enqueued a job since (so it waits at most for the job in
//    progress, however long the jobs are);
// 2. the LIFO slot: the job this worker most recently made runnable runs next, for message-
//    passing locality, but at most 3 times in a row; then the slot's job goes to the back of the
//    local queue, so two tasks that wake each other cannot starve the rest;
// 3. the local queue, oldest first;
// 4. a batch from the injector;
// 5. search: steal half of a random victim's queue (at most half the workers search at once);
// 6. spin briefly while still counted as searching, then park in the ring until a completion,
//    the next timer, or a wake-up.
//
// The spin is Go's "spinning M": when one worker produces jobs one at a time and another
// consumes them faster, the consumer would otherwise park and be woken once per job (two system
// calls and a context switch each; measured: 290,000 park/wake pairs for 1,000,000 spawns on
// 2 workers). While it spins it is still a searcher, so producers send no wake-ups.
// Due timers are checked between jobs whenever some are pending; they fire in place (a job runs,
// DueTimerJob.swift, or a `Spindle.sleep` waiter resumes its task, SleepWaiter.swift) and the
// task the first one wakes goes to the LIFO slot, so only the job in progress can delay a timer.
//
// A yield goes to the back of the local queue, never to the LIFO slot, or `Task.yield()` would
// hand the worker straight back to the yielder. Swift 6.3 implements a yield by enqueuing a
// helper job (not a task) that resumes the yielder when it runs; a job that re-enqueues itself
// while running is treated the same way.
//
// A full local queue is handled in one of two ways, chosen by who filled it:
// - By many jobs, each making a few more (a recursive tree like skynet): move the oldest half
//   to the injector (Tokio's overflow). The newest jobs stay local and run first, which keeps
//   the expansion close to depth-first and the number of live tasks small. (Strict FIFO here
//   turned skynet into a breadth-first expansion: 2.8 s instead of 2.0 s on one worker.)
// - By one job that keeps making more (a task spawning a million children): spill. New jobs go
//   to the injector's tail, 128 per lock, until the injector has drained, so everything local
//   stays older than everything spilled and jobs run in creation order. (With Tokio's overflow
//   here the newest children finished first, and Swift's task group, which searches its child
//   list from the oldest child for each result, spent half its time searching: 7.1 µs per task
//   on one worker instead of 3.1.)
// The switch is the number of jobs the running job has made: a full queue's worth (256).

// Stopping. Once the runtime says stop, a worker finishes the job in hand and keeps running
// what it finds for at most `stopDrainNanoseconds` (tasks unwinding from the shutdown's
// cancellation), then leaves its loop even if jobs remain or keep coming (a task that ignores
// cancellation and yields forever would otherwise keep the thread alive after shutdown
// returned). Everything it still holds, and every job that reaches the runtime afterwards, goes
// to the executor core's after-stop path (Support/Afterlife.swift: Swift's global executor,
// timers keeping their deadlines), where cancelled tasks can finish. Then it closes its ring
// (which waits up to `Ring.closeDrainNanoseconds` for cancelled I/O). Shutdown waits for both
// phases with matching budgets (`awaitStop`): a worker still inside a job
// `stuckAfterNanoseconds` after the stop is reported stuck, one that left its loop is given its
// ring's whole drain, so no worker is reported stuck while it is only draining its ring, and
// no thread of a worker that is not stuck outlives the shutdown.
//
// Only the worker's own thread touches the members marked "owner only"; other threads reach a
// worker through its queue (steal), its ring (wake), its counters (relaxed reads), and, for the
// blocked-worker watch only, its LIFO slot, timers, ring (as its adopter, Ring.swift) and
// published running job (`handOff`).

import CSpindle
import Synchronization

final class Worker: @unchecked Sendable {
    // @unchecked Sendable: members marked "owner only" are used only on the worker's thread (the
    // thread that set itself as `spindle_current_worker`); the others are Sendable or atomic.

    let index: Int
    unowned(unsafe) let runtime: Runtime
    let queue = LocalQueue()
    let counters = WorkerCounters()
    /// Created on the worker's thread; set before the start gate opens and never changed
    /// afterwards, so other threads may call `ring.wake()` once start-up is done. Adoptable
    /// (Ring.swift) when the runtime has a blocked-worker watch and more than one worker.
    private(set) var ring: Ring!

    /// The LIFO slot, as a job pointer (0 when empty). The owner fills and empties it; the
    /// blocked-worker watch may empty it while the owner is stuck in a job. Exchanges are
    /// acquire-release: whoever takes a job sees the writes of whoever put it there.
    private let lifo = Atomic<UInt>(0)
    /// Timers (TimerAction.swift). Locked because the watch moves them off a stuck worker;
    /// only sleeps pay for it (uncontended, on the owner's thread). `timerDeadline` mirrors
    /// the earliest deadline (written under the lock, read relaxed as a hint: a stale value
    /// delays a check by one tick).
    private let timers = Lock(TimerWheel())
    private let timerDeadline = Atomic<UInt64>(.max)
    /// The job this worker is running (0 between jobs), for the watch. Relaxed: the watch only
    /// needs to see a value that was current at some recent moment.
    let publishedJob = Atomic<UInt>(0)
    /// When a wake-up for reaped work was deferred (CLOCK_MONOTONIC ns; 0: none pending).
    /// Written by the owner; read by the owner and by the watch, which sends the wake-up itself
    /// when the owner is stuck in a long job. Relaxed: a stale value costs at most one spurious
    /// or one late (by a watch interval) wake-up; the jobs themselves are ordered by the queue.
    let deferredWakeSince = Atomic<UInt64>(0)
    /// Opened when the worker has left its loop for good (it runs no more jobs) and when it
    /// has closed its ring (nothing of it remains but its thread's return), for `awaitStop`.
    let leftLoop = Gate()
    let finished = Gate()

    /// Owner only: the worker's private state. Kept behind a pointer rather than in `var`
    /// properties because Swift checks exclusive access to class properties at run time on
    /// every access (`swift_beginAccess`, 2% of a yield-heavy profile); a pointer's pointee is
    /// not checked, and only the owner thread ever touches it.
    private let owner: UnsafeMutablePointer<OwnerState>
    /// Owner only: jobs spilled since the last flush (`owner.pointee.spillCount` of them).
    private let spill: UnsafeMutablePointer<UnownedJob>

    struct OwnerState {
        var lifoStreak = 0
        var tick: UInt32 = 0
        var isSearching = false
        var runningJob: UnsafeRawPointer? = nil
        var dueTimers: [TimerAction] = []
        var random: UInt64
        var spilling = false
        var spillCount = 0
        /// Jobs made runnable by the job in progress (reset before each job).
        var pushesThisJob = 0
        /// Inside `reapRing`: wake-ups for resumed tasks are deferred to the end of the batch.
        var reaping = false
        var notifyAfterReap = false
        /// Inside `runDueTimers`, and how many tasks its jobs have resumed so far.
        var firingTimers = false
        var timerResumes = 0
        /// When the stop drain ends (CLOCK_MONOTONIC ns; 0 until the worker sees the stop).
        var stopDeadline: UInt64 = 0
    }

    /// How long tasks resumed by this worker's own completions may wait in its queue before a
    /// parked worker is woken to help (see `reapRing`).
    static let ioWakeDelayNanoseconds: UInt64 = 50_000
    static let maxLifoStreak = 3
    static let maintenanceInterval: UInt32 = 61
    static let spillBatch = 128
    /// How long a searcher that found nothing keeps looking before it parks.
    static let spinNanoseconds: UInt64 = 100_000
    /// How long a stopping worker keeps running jobs after it first sees the stop.
    static let stopDrainNanoseconds: UInt64 = 100_000_000
    /// How long after the stop a worker may still be inside a job before shutdown reports it
    /// stuck: the drain plus time for the job in hand.
    static let stuckAfterNanoseconds: UInt64 = 1_000_000_000

    init(index: Int, runtime: Runtime) {
        self.index = index
        self.runtime = runtime
        owner = .allocate(capacity: 1)
        owner.initialize(to: OwnerState(random: 0x9E37_79B9_7F4A_7C15 &* UInt64(index + 1)))
        spill = .allocate(capacity: Self.spillBatch)
        owner.pointee.dueTimers.reserveCapacity(16)
    }

    deinit {
        owner.deinitialize(count: 1)
        owner.deallocate()
        spill.deallocate()
    }

    /// Owner only: creates the ring. Called on the worker's thread before it runs anything.
    func prepare() throws(SpindleError) {
        // Adoptable only where the watch can adopt it: with a watch and other workers to run
        // what it reaps.
        ring = try Ring(counters: counters.ring, adoptable: runtime.hasBlockedWorkerWatch && runtime.workerCount > 1)
    }

    // MARK: Scheduling (owner only)

    @inline(__always)
    private static func identity(_ job: UnownedJob) -> UnsafeRawPointer {
        unsafeBitCast(job, to: UnsafeRawPointer.self)
    }

    @inline(__always)
    private static func bits(_ job: UnownedJob) -> UInt { unsafeBitCast(job, to: UInt.self) }

    @inline(__always)
    private static func job(_ bits: UInt) -> UnownedJob? {
        bits == 0 ? nil : unsafeBitCast(bits, to: UnownedJob.self)
    }

    /// Puts `job` in the LIFO slot and returns the previous occupant.
    @inline(__always)
    private func swapLifo(_ job: UnownedJob) -> UnownedJob? {
        Self.job(lifo.exchange(Self.bits(job), ordering: .acquiringAndReleasing))
    }

    /// Empties the LIFO slot (a plain load first, so an empty slot costs no atomic exchange).
    @inline(__always)
    private func takeLifo() -> UnownedJob? {
        if lifo.load(ordering: .relaxed) == 0 { return nil }
        return Self.job(lifo.exchange(0, ordering: .acquiringAndReleasing))
    }

    /// Owner only: a job made runnable by code running on this worker.
    @inline(__always)
    func schedule(_ job: UnownedJob, isTask: Bool = true) {
        // While reaping completions or firing timers no task is yielding: a job that is not a
        // task (an actor's job, for a task isolated to a default actor) is a resumption too.
        if Self.identity(job) == owner.pointee.runningJob || (!isTask && !owner.pointee.reaping) {
            // A yield: the running job re-enqueued itself, or (Swift 6.3's `Task.yield()`)
            // enqueued a helper job that will resume it. Back of the queue, and let another
            // worker help if this one has a backlog.
            pushLocal(job)
            runtime.notifyParked(from: self)
            return
        }
        if owner.pointee.firingTimers {
            // A timer's helper resumed its task: the first goes to the LIFO slot, later ones
            // queue behind it, so tasks whose timers fell due together run in deadline order.
            // Nor does the first displace a job already in the slot: that may be the first of
            // an earlier batch (a worker delayed past several deadlines fires them in separate
            // batches), which would then run after this later one; on a loaded machine
            // `TimeTests.timersFireInDeadlineOrderAndNeverEarly` saw the 85 ms sleeper run before
            // the 35-80 ms ones so.
            owner.pointee.timerResumes += 1
            if owner.pointee.timerResumes > 1 || lifo.load(ordering: .relaxed) != 0 {
                pushLocal(job, resumed: true)
                owner.pointee.notifyAfterReap = true
                return
            }
        }
        guard let previous = swapLifo(job) else { return }
        pushLocal(previous, resumed: owner.pointee.reaping)
        if owner.pointee.reaping {
            owner.pointee.notifyAfterReap = true  // once per batch, not once per completion
        } else {
            runtime.notifyParked(from: self)
        }
    }

    /// Owner only: submits and reaps the ring. Tasks resumed by the completions land in the
    /// LIFO slot and local queue. A parked worker is woken at most once for the whole batch
    /// (waking one per completion cost a wake-up and an empty park on the other worker for
    /// most completions of an echo server), and only if the batch is still not done after
    /// `ioWakeDelayNanoseconds`: most batches of a busy server are run by the worker that
    /// reaped them sooner than a woken worker could start, and the tasks then stay with the
    /// ring that holds their next requests. (W9, 64 echo connections on 2 workers: a third
    /// fewer context switches at the same or a few percent higher throughput.) The delay is
    /// checked after every job; if the job in progress is long, the blocked-worker watch sends
    /// the wake-up at its next sample (a quarter of its threshold: 25 ms by default). Without
    /// the watch, wake-ups are not deferred.
    private func reapRing(parkingUntil deadline: UInt64? = nil) {
        owner.pointee.reaping = true
        if let deadline {
            ring.park(deadline: deadline)
        } else {
            ring.flush()
        }
        owner.pointee.reaping = false
        if owner.pointee.notifyAfterReap {
            owner.pointee.notifyAfterReap = false
            if !runtime.defersIOWakeups {
                runtime.notifyParked(from: self)
            } else if deferredWakeSince.load(ordering: .relaxed) == 0 {
                deferredWakeSince.store(monotonicNanos(), ordering: .relaxed)
            }
        }
    }

    /// Owner only, after each job while a wake-up is deferred: wakes a parked worker once the
    /// backlog has outlived `ioWakeDelayNanoseconds`; forgets it if the backlog went first.
    private func checkDeferredWake(since: UInt64) {
        if queue.isEmpty && runtime.injector.isEmpty {
            deferredWakeSince.store(0, ordering: .relaxed)
        } else if monotonicNanos() &- since >= Self.ioWakeDelayNanoseconds {
            deferredWakeSince.store(0, ordering: .relaxed)
            runtime.notifyParked(from: self)
        }
    }

    /// `resumed`: a job resumed by a completion or a timer, not one the running job created.
    /// It never joins a spill (spilling keeps a spawning job's children in creation order, and
    /// a resumption queued behind 100,000 spilled spawns waited for all of them: W7's lateness
    /// was flat at the backlog's drain time); if the local queue is full it goes to the
    /// injector's front.
    @inline(__always)
    private func pushLocal(_ job: UnownedJob, resumed: Bool = false) {
        if resumed {
            if queue.tryPush(job) {
                counters.queueDepthHighWater.raise(to: UInt64(queue.count))
            } else {
                counters.overflows.bump()
                runtime.injector.pushFront([job])
            }
            return
        }
        if owner.pointee.spilling {
            if owner.pointee.spillCount == 0 && runtime.injector.isEmpty {
                owner.pointee.spilling = false  // everything spilled has been taken: local order is global again
            } else {
                spill[owner.pointee.spillCount] = job
                owner.pointee.spillCount += 1
                if owner.pointee.spillCount == Self.spillBatch { flushSpill() }
                return
            }
        }
        owner.pointee.pushesThisJob &+= 1
        if queue.tryPush(job) {
            counters.queueDepthHighWater.raise(to: UInt64(queue.count))
            return
        }
        counters.overflows.bump()
        if owner.pointee.pushesThisJob < Int(LocalQueue.capacity) {
            if queue.pushOverflow(job, to: runtime.injector) { return }
            if queue.tryPush(job) { return }  // a thief made room meanwhile
        }
        owner.pointee.spilling = true
        spill[0] = job
        owner.pointee.spillCount = 1
    }

    /// Owner only: publishes spilled jobs to the injector, oldest first, and lets a parked
    /// worker help with them.
    private func flushSpill() {
        let count = owner.pointee.spillCount
        if count == 0 { return }
        let spill = self.spill
        runtime.injector.push(count: count) { spill[$0] }
        owner.pointee.spillCount = 0
        runtime.notifyParked(from: self)
    }

    /// Owner only: a timer to fire at `deadline` (CLOCK_MONOTONIC nanoseconds).
    func scheduleTimer(_ action: TimerAction, deadline: UInt64) {
        timers.withLock { heap in
            heap.insert(action, deadline: deadline)
            timerDeadline.store(heap.nextDeadline, ordering: .relaxed)
            counters.timersPending.store(UInt64(heap.count), ordering: .relaxed)
        }
    }

    // MARK: The loop

    func run() {
        spindle_set_current_worker(Unmanaged.passUnretained(self).toOpaque())
        Ring.setCurrent(ring)
        defer {
            Ring.setCurrent(nil)
            spindle_set_current_worker(nil)
        }
        let executor = runtime.asUnownedTaskExecutor()
        while true {
            if let job = nextJob() ?? reapedJob() ?? search() {
                if owner.pointee.isSearching { stopSearching() }
                owner.pointee.runningJob = Self.identity(job)
                owner.pointee.pushesThisJob = 0
                publishedJob.store(Self.bits(job), ordering: .relaxed)
                job.runSynchronously(on: executor)
                publishedJob.store(0, ordering: .relaxed)
                owner.pointee.runningJob = nil
                counters.jobsRun.bump()
                if owner.pointee.spillCount > 0 { flushSpill() }
                let deferredSince = deferredWakeSince.load(ordering: .relaxed)
                if deferredSince != 0 { checkDeferredWake(since: deferredSince) }
                if runtime.isStopping && stopDrainIsOver() { break }
                continue
            }
            if runtime.isStopping { break }
            if spinForWork() { continue }
            park()
            if runtime.isStopping && (!hasLocalWork || stopDrainIsOver()) { break }
        }
        leftLoop.open()
        drainForShutdown()
        ring.close()
        finished.open()
    }

    /// Owner only, once the runtime is stopping: whether this worker's stop drain is over. The
    /// first call starts it.
    private func stopDrainIsOver() -> Bool {
        let now = monotonicNanos()
        if owner.pointee.stopDeadline == 0 {
            owner.pointee.stopDeadline = now &+ Self.stopDrainNanoseconds
            return false
        }
        return now >= owner.pointee.stopDeadline
    }

    /// Submits the I/O requests this worker's jobs prepared and reaps what completed (the
    /// resumed tasks land in the LIFO slot and queue), before looking further afield.
    private func reapedJob() -> UnownedJob? {
        reapRing()
        return nextJob()
    }

    private var hasLocalWork: Bool { lifo.load(ordering: .relaxed) != 0 || !queue.isEmpty }

    /// Jobs waiting in the LIFO slot and local queue (any thread; a snapshot, for reports).
    var queuedJobCount: Int { queue.count + (lifo.load(ordering: .relaxed) != 0 ? 1 : 0) }

    private func nextJob() -> UnownedJob? {
        owner.pointee.tick &+= 1
        if timerDeadline.load(ordering: .relaxed) != .max { fireDueTimers(now: monotonicNanos()) }
        if runtime.remotePending.load(ordering: .relaxed), let job = takeRemoteJob() {
            return job
        }
        if owner.pointee.tick % Self.maintenanceInterval == 0 {
            reapRing()
            runtime.fireRemoteTimers(on: self)
            if let job = runtime.remoteQueue.pop() ?? runtime.injector.pop() {
                counters.injectorPulls.bump()
                return job
            }
        }
        if let job = takeLifo() {
            if owner.pointee.lifoStreak < Self.maxLifoStreak {
                owner.pointee.lifoStreak += 1
                counters.lifoHits.bump()
                return job
            }
            pushLocal(job)  // the slot has won 3 times in a row: take turns with the queue
        }
        owner.pointee.lifoStreak = 0
        if let job = queue.pop() { return job }
        return pullFromInjector()
    }

    /// A job from the remote queue because another thread enqueued one (see
    /// `Runtime.remotePending`). Clears the flag once that queue is empty, then looks again, so a push racing with the
    /// clear raises it anew rather than waiting for the 61-tick check.
    private func takeRemoteJob() -> UnownedJob? {
        if let job = runtime.remoteQueue.pop() {
            counters.injectorPulls.bump()
            return job
        }
        runtime.remotePending.store(false, ordering: .relaxed)
        if !runtime.remoteQueue.isEmpty { runtime.remotePending.store(true, ordering: .relaxed) }
        return nil
    }

    /// A batch from the injector: enough to share the backlog fairly between workers.
    private func pullFromInjector() -> UnownedJob? {
        if let job = runtime.remoteQueue.pop() {
            counters.injectorPulls.bump()
            return job
        }
        let waiting = runtime.injector.count
        if waiting == 0 { return nil }
        let share = min(waiting / runtime.workerCount + 1, Int(LocalQueue.capacity) / 2)
        let job = runtime.injector.popBatch(max: share) { next in
            _ = queue.pushBatch(max: share - 1, next)
        }
        if job != nil { counters.injectorPulls.bump() }
        return job
    }

    private func fireDueTimers(now: UInt64) {
        if timerDeadline.load(ordering: .relaxed) > now { return }
        var due = owner.pointee.dueTimers
        owner.pointee.dueTimers = []
        timers.withLock { heap in
            while let action = heap.popDue(now: now) { due.append(action) }
            timerDeadline.store(heap.nextDeadline, ordering: .relaxed)
            counters.timersPending.store(UInt64(heap.count), ordering: .relaxed)
        }
        if !due.isEmpty {
            runDueTimers(due)
            counters.timersFired.bump(by: UInt64(due.count))
        }
        due.removeAll(keepingCapacity: true)
        owner.pointee.dueTimers = due
    }

    /// Receives due timers from the runtime's shared wheel, in deadline order (owner only).
    func acceptDueTimers(_ actions: [TimerAction]) {
        runDueTimers(actions)
        counters.timersFired.bump(by: UInt64(actions.count))
    }

    /// Owner only, between jobs: fires due timers in place (a job, normally `Task.sleep`'s
    /// helper, runs and resumes its task, DueTimerJob.swift; a `Spindle.sleep` waiter resumes
    /// its task directly, SleepWaiter.swift). The first task resumed goes to
    /// the LIFO slot and runs next; the others queue behind it in deadline order, as resumed
    /// jobs (never spilled); one wake-up covers the batch.
    private func runDueTimers(_ actions: some Collection<TimerAction>) {
        owner.pointee.firingTimers = true
        owner.pointee.timerResumes = 0
        owner.pointee.reaping = true
        for action in actions {
            owner.pointee.pushesThisJob = 0
            switch action {
            case .job(let job):
                owner.pointee.runningJob = Self.identity(job)
                publishedJob.store(Self.bits(job), ordering: .relaxed)
                DueTimerJob.run(job)
                publishedJob.store(0, ordering: .relaxed)
            case .wake:
                owner.pointee.runningJob = nil
                action.fire()
            }
            counters.jobsRun.bump()  // progress, for the watch, in a long batch
            if owner.pointee.spillCount > 0 { flushSpill() }
        }
        owner.pointee.runningJob = nil
        owner.pointee.firingTimers = false
        owner.pointee.reaping = false
        owner.pointee.lifoStreak = 0
        if owner.pointee.notifyAfterReap {
            owner.pointee.notifyAfterReap = false
            runtime.notifyParked(from: self)
        }
    }

    // MARK: Searching

    private func search() -> UnownedJob? {
        if !owner.pointee.isSearching {
            guard runtime.idle.tryStartSearching() else { return nil }
            owner.pointee.isSearching = true
        }
        let workers = runtime.workerRefs
        let count = workers.count
        if count > 1 {
            // xorshift: a cheap random first victim so thieves don't all hit worker 0.
            owner.pointee.random ^= owner.pointee.random << 13
            owner.pointee.random ^= owner.pointee.random >> 7
            owner.pointee.random ^= owner.pointee.random << 17
            let start = Int(owner.pointee.random % UInt64(count))
            for offset in 0..<count {
                let victimIndex = (start + offset) % count
                if victimIndex == index { continue }
                var stolen = 0
                let job = workers[victimIndex]._withUnsafeGuaranteedRef {
                    $0.queue.steal(into: queue, stolen: &stolen)
                }
                if let job {
                    counters.steals.bump()
                    counters.jobsStolen.bump(by: UInt64(stolen))
                    return job
                }
            }
        }
        return pullFromInjector()
    }

    private func stopSearching() {
        owner.pointee.isSearching = false
        if runtime.idle.stopSearching() {
            // The last searcher found work: there may be more, so wake one more worker to look.
            runtime.notifyParked(from: self)
        }
    }

    // MARK: Parking

    /// Searchers only, while another worker is awake: watches the queues (plain loads, no stealing, no system call) for up to
    /// `spinNanoseconds`. Returns true when work appeared or a timer fell due.
    private func spinForWork() -> Bool {
        // Only while another worker is awake: a parked one produces nothing to wait for, and
        // spinning would take the CPU from blocking-pool threads (W10: +15% job time).
        // Nor while this worker has I/O in flight: its work then comes from its own ring, whose
        // completions end a park directly, and the spin only took CPU from the processes at the
        // other end of the sockets (16% of an echo server's time went to spinning).
        guard owner.pointee.isSearching, runtime.idle.unparkedCount > 1, ring.inFlightCount == 0 else {
            return false
        }
        let deadline = monotonicNanos() &+ Self.spinNanoseconds
        repeat {
            for _ in 0..<32 { spindle_cpu_relax() }
            if runtime.hasPendingWork || runtime.isStopping { return true }
            let now = monotonicNanos()
            if timerDeadline.load(ordering: .relaxed) <= now || runtime.remoteTimerDeadline <= now {
                return true
            }
            if now >= deadline { return false }
        } while true
    }

    private func park() {
        let wasLastSearcher = runtime.idle.workerWillPark(index, isSearching: owner.pointee.isSearching)
        owner.pointee.isSearching = false
        if wasLastSearcher && runtime.hasPendingWork {
            // Work arrived while we searched and its pusher saw a searcher (us) and did not
            // wake anyone. Take it ourselves rather than park: undo the announcement (if a
            // pusher picked us meanwhile, we count as woken on purpose, and its eventfd write
            // only makes the next park return at once). Waking ourselves through the eventfd
            // instead cost a write and an empty park per occurrence: 18,000 in 2 s of W9 on
            // one worker.
            if runtime.idle.workerDidUnpark(index) { owner.pointee.isSearching = true }
            return
        }
        counters.parks.bump()
        if counters.timersPending.load(ordering: .relaxed) >= UInt64(TimerWheel.sweepThreshold) {
            // Idle, with a wheel big enough to sweep: a moment to drop the entries of cancelled
            // sleeps (TimerWheel.swift). (`timersPending` is this wheel's size, stored under
            // its lock; a stale value only moves the sweep to a later park.)
            let now = monotonicNanos()
            timers.withLock { heap in
                heap.sweepIfStale(now: now)
                counters.timersPending.store(UInt64(heap.count), ordering: .relaxed)
            }
        }
        let deadline = min(timerDeadline.load(ordering: .relaxed), runtime.remoteTimerDeadline)
        reapRing(parkingUntil: deadline)
        if runtime.idle.workerDidUnpark(index) {
            owner.pointee.isSearching = true  // woken on purpose: the waker counted us as searching
        }
        if timerDeadline.load(ordering: .relaxed) != .max { fireDueTimers(now: monotonicNanos()) }
        runtime.fireRemoteTimers(on: self)
    }

    /// Owner only, on the way out: hands every job this worker still holds to the after-stop
    /// path (Runtime's `orphan`, Afterlife.swift).
    private func drainForShutdown() {
        if owner.pointee.isSearching { stopSearching() }
        var leftovers = (0..<owner.pointee.spillCount).map { spill[$0] }
        owner.pointee.spillCount = 0
        if let job = takeLifo() { leftovers.append(job) }
        while let job = queue.pop() { leftovers.append(job) }
        runtime.orphan(leftovers, timers: takeAllTimers())
    }

    private func takeAllTimers() -> [TimedAction] {
        timers.withLock { heap in
            defer {
                timerDeadline.store(.max, ordering: .relaxed)
                counters.timersPending.store(0, ordering: .relaxed)
            }
            return heap.removeAll()
        }
    }

    // MARK: Blocked-worker hand-off

    /// Watch thread only, while this worker is stuck inside one job: moves its LIFO slot and
    /// queued jobs to the injector (oldest first) and its timers to the runtime's shared heap,
    /// so other workers run them. (Its ring's completions are reaped separately, by the watch
    /// as the ring's adopter: Ring.swift, BlockedWorkerWatch.swift.) `scratch` is a queue owned
    /// by the watch thread. Returns the number of jobs moved. Safe against the owner waking up
    /// meanwhile: every step is a steal or an exchange the owner's own operations are built to
    /// race with.
    func handOff(using scratch: LocalQueue) -> Int {
        // Everything queued here is older than what this worker spilled to the injector, so it
        // goes to the injector's front, oldest first: global FIFO order (and with it Swift's
        // task groups) survives the hand-off.
        var jobs: [UnownedJob] = []
        while true {
            var stolen = 0
            guard let first = queue.steal(into: scratch, stolen: &stolen) else { break }
            while let job = scratch.pop() { jobs.append(job) }
            jobs.append(first)  // `steal` returns the newest of the batch it took
        }
        if let job = takeLifo() { jobs.append(job) }
        runtime.injector.pushFront(jobs)
        let moved = jobs.count
        let timerJobs = takeAllTimers()
        for timer in timerJobs { runtime.scheduleSharedTimer(timer.action, deadline: timer.deadline) }
        return moved + timerJobs.count
    }
}

// MARK: Stopping

extension Worker {
    /// Shutdown, once it has told the workers to stop (at `start`, CLOCK_MONOTONIC ns) and woken
    /// them: waits until each has left its loop, for at most `stuckAfterNanoseconds` after
    /// `start`, and then until those that did have closed their rings, for at most the ring's
    /// close drain (and a margin) more. Returns, per worker, whether it finished; one that did
    /// not is stuck inside a job that does not return, and its thread exits when it does.
    static func awaitStop(of workers: [Worker], since start: UInt64) -> [Bool] {
        let loopDeadline = start &+ stuckAfterNanoseconds
        let left = workers.map { $0.leftLoop.wait(deadline: loopDeadline) }
        let finishDeadline = monotonicNanos() &+ Ring.closeDrainNanoseconds &+ 250_000_000
        return zip(workers, left).map { worker, left in left && worker.finished.wait(deadline: finishDeadline) }
    }
}
