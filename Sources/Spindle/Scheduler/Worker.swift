// One worker: an OS thread that runs jobs from its LIFO slot and local queue, takes from the
// global queues, steals from other workers, and parks in its own io_uring when there is nothing
// to do. This file holds the worker's state and its loop; the rest is split by concern:
// - Worker+Placement.swift: where a job made runnable here goes (LIFO slot, local queue,
//   overflow and spill to the injector), after the pure decision in Placement.swift;
// - Worker+Reaping.swift: submitting and reaping the ring, and the deferred wake-up;
// - Worker+Timers.swift: the worker's timer wheel and firing due timers in place;
// - Worker+Stealing.swift: the global queues and stealing from other workers;
// - Worker+Parking.swift: the spin before parking, and the park itself;
// - Worker+HandOff.swift: what the blocked-worker watch takes off a stuck worker;
// - Worker+Stopping.swift: the stop drain and shutdown's wait for the workers.
//
// A tick is one job. The order in which a tick looks for work (docs/architecture.md, "A
// worker's loop"):
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
// Only the worker's own thread touches the members marked "owner only"; other threads reach a
// worker through its queue (steal), its ring (wake), its counters (relaxed reads), and, for the
// blocked-worker watch only, its LIFO slot, timers, ring (as its adopter, Ring+Adoption.swift)
// and published running job (Worker+HandOff.swift).

internal import CSpindle
import Synchronization

final class Worker: @unchecked Sendable {
    // @unchecked Sendable: members marked "owner only" are used only on the worker's thread (the
    // thread that set itself as `spindle_current_worker`); the others are Sendable or atomic.

    let index: Int
    unowned(unsafe) let shared: RuntimeShared
    let queue = LocalQueue()
    let counters = WorkerCounters()
    /// Created on the worker's thread; set before the start gate opens and never changed
    /// afterwards, so other threads may call `reactor.wake()` once start-up is done. On
    /// io_uring, a ring that is adoptable (Ring+Adoption.swift) when the runtime has a
    /// blocked-worker watch and more than one worker; on epoll, an EpollReactor.
    private(set) var reactor: Reactor!

    /// The LIFO slot, as a job pointer (0 when empty). The owner fills and empties it; the
    /// blocked-worker watch may empty it while the owner is stuck in a job. Exchanges are
    /// acquire-release: whoever takes a job sees the writes of whoever put it there.
    let lifo = Atomic<UInt>(0)
    /// Timers (TimerAction.swift). Locked because the watch moves them off a stuck worker;
    /// only sleeps pay for it (uncontended, on the owner's thread). `timerDeadline` mirrors
    /// the earliest deadline (written under the lock, read relaxed as a hint: a stale value
    /// delays a check by one tick).
    let timers = Lock(TimerWheel())
    let timerDeadline = Atomic<UInt64>(.max)
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
    let owner: UnsafeMutablePointer<OwnerState>
    /// Owner only: jobs spilled since the last flush (`owner.pointee.spillCount` of them).
    let spill: UnsafeMutablePointer<UnownedJob>

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
        /// What the worker is doing, for placement (Placement.swift).
        var activity = WorkerActivity.runningJob
        /// While firing timers: the tasks the batch has resumed so far.
        var resumedInBatch = 0
        /// A batch (of completions or timers) resumed work: wake a parked worker after it.
        var notifyAfterBatch = false
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

    init(index: Int, shared: RuntimeShared) {
        self.index = index
        self.shared = shared
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
        reactor = try Reactor(
            shared.reactorBackend, counters: counters.ring,
            adoptable: shared.hasBlockedWorkerWatch && shared.workerCount > 1)
    }

    // MARK: The loop

    func run() {
        spindle_set_current_worker(Unmanaged.passUnretained(self).toOpaque())
        Reactor.setCurrent(reactor)
        defer {
            Reactor.setCurrent(nil)
            spindle_set_current_worker(nil)
        }
        let executor = shared.runtime!.asUnownedTaskExecutor()
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
                if shared.lifecycle.isStopping && stopDrainIsOver() { break }
                continue
            }
            if shared.lifecycle.isStopping { break }
            if spinForWork() { continue }
            park()
            if shared.lifecycle.isStopping && (!hasLocalWork || stopDrainIsOver()) { break }
        }
        leftLoop.open()
        drainForShutdown()
        reactor.close()
        finished.open()
    }

    func nextJob() -> UnownedJob? {
        owner.pointee.tick &+= 1
        if timerDeadline.load(ordering: .relaxed) != .max { fireDueTimers(now: monotonicNanos()) }
        if shared.remotePending.load(ordering: .relaxed), let job = takeRemoteJob() {
            return job
        }
        if owner.pointee.tick % Self.maintenanceInterval == 0 {
            reapRing()
            shared.fireRemoteTimers(on: self)
            if let job = shared.remoteQueue.pop() ?? shared.injector.pop() {
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

    // MARK: Searching

    // MARK: Parking

    // MARK: Blocked-worker hand-off

}
