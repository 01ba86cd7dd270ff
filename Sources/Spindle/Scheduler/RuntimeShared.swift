// What a runtime's workers share (Tokio's `Shared` behind its `Handle`): the workers themselves,
// the global queues, the idle set, the timers of other threads, the lifecycle, and the
// runtime-wide counters. `Runtime` is the public facade over it; workers and the blocked-worker
// watch reach the runtime only through this.
//
// Where a job goes. `schedule` puts it in the best queue: the current worker's LIFO slot when
// called on one of this runtime's workers (a wake-up or spawn from running code, see
// Worker+Placement.swift), otherwise the remote queue plus at most one wake-up of a parked
// worker. Two global queues, both `Injector`s: `injector` holds what busy workers overflow and
// spill (Worker+Placement.swift) and what the watch hands off; `remoteQueue` holds jobs from
// threads that are not workers (I/O resumed on the process's I/O loop, blocking-pool results,
// continuations resumed by other executors), so that a resumption never waits behind a backlog
// of tasks that have not started yet.
//
// After the stop. Once the last worker has left (`workerExited`), every job still queued and
// every job that arrives goes to the after-stop path (Afterlife.swift), so a late continuation
// resume can never be lost or leave a task hanging. An enqueuer pushes and then checks for the
// stop; the last worker marks the stop and then drains: both sequentially consistent
// (Lifecycle.swift), so one of them always sees the other.

internal import CSpindle
import Synchronization
@_spi(ExperimentalCustomExecutors) import _Concurrency

final class RuntimeShared: TimerScheduler, @unchecked Sendable {
    // @unchecked Sendable: `workers`, `workerRefs` and `runtime` are written once, in init and
    // by `Runtime.init` before any worker thread starts (thread creation orders those writes
    // before every read on the workers), and never changed; everything else is Sendable or
    // atomic.

    let workerCount: Int
    /// The workers; set once in init.
    private(set) var workers: [Worker] = []
    /// The same workers as unretained references, for the steal and wake paths, which then do
    /// no reference counting. Valid while `workers` holds them (the runtime's lifetime).
    private(set) var workerRefs: UnsafeMutableBufferPointer<Unmanaged<Worker>> = .init(start: nil, count: 0)
    /// The facade, for the executor reference jobs run with and for `Runtime.current`. Set once
    /// by `Runtime.init`, before any worker starts; the runtime is never deallocated.
    private(set) unowned(unsafe) var runtime: Runtime? = nil
    let injector = Injector()
    /// Jobs enqueued by threads that are not workers (see the file comment).
    let remoteQueue = Injector()
    let idle: Idle
    let lifecycle = Lifecycle()

    /// Set when a thread that is not one of our workers enqueues a job; workers check it every
    /// tick (one relaxed load) and then take from the remote queue at once instead of waiting
    /// for the 61-tick check, so such a job waits at most for the job in progress. These are
    /// the latency-sensitive jobs (see the file comment). Relaxed: the remote queue's own lock
    /// orders the job itself; a missed flag only delays a job to the 61-tick check, never
    /// loses it.
    let remotePending = Atomic<Bool>(false)

    /// Timers from other threads and from blocked workers; every worker fires what is due
    /// (at its maintenance tick and when it parks; a new earliest deadline wakes a parked one).
    private let remoteTimers = SharedTimerWheel()

    /// Whether workers defer the wake-up for work their own completions resumed
    /// (Worker+Reaping.swift). Only with the watch, which bounds the deferral when a job runs
    /// long. Never changed.
    let defersIOWakeups: Bool
    /// Whether the runtime has a blocked-worker watch, which its workers' rings must then let
    /// reap them (Ring+Adoption.swift). Never changed.
    let hasBlockedWorkerWatch: Bool
    /// The reactor every worker creates (Reactor/ReactorSelection.swift). Never changed.
    let reactorBackend: ReactorBackend

    /// Counters for `metrics()`, relaxed: statistics, ordering nothing.
    let foreignWakeups = Atomic<UInt64>(0)
    let remoteEnqueues = Atomic<UInt64>(0)
    let orphanedJobs = Atomic<UInt64>(0)
    private let exitedCount = Atomic<Int>(0)

    init(workerCount: Int, hasBlockedWorkerWatch: Bool, reactorBackend: ReactorBackend = .ioUring) {
        self.workerCount = workerCount
        self.reactorBackend = reactorBackend
        self.hasBlockedWorkerWatch = hasBlockedWorkerWatch
        defersIOWakeups = hasBlockedWorkerWatch
        idle = Idle(workerCount: workerCount)
        // Workers need `self`, so they are created after the stored properties are set.
        workers = (0..<workerCount).map { Worker(index: $0, shared: self) }
        workerRefs = .allocate(capacity: workerCount)
        _ = workerRefs.initialize(from: workers.map { Unmanaged.passUnretained($0) })
    }

    deinit {
        workerRefs.deallocate()
    }

    /// Called once by `Runtime.init`, before any worker starts.
    func attach(_ runtime: Runtime) {
        self.runtime = runtime
    }

    /// The worker whose thread the caller is on, if it is one of this runtime's.
    @inline(__always)
    func currentWorker<R>(_ body: (Worker) -> R) -> R? {
        guard let raw = spindle_current_worker() else { return nil }
        return Unmanaged<Worker>.fromOpaque(raw)._withUnsafeGuaranteedRef { worker -> R? in
            worker.shared === self ? body(worker) : nil
        }
    }

    // MARK: Jobs

    /// Schedules a job (see the file comment). `isTask`: false for a runtime-internal job such
    /// as the one `Task.yield()` enqueues to resume the yielding task later.
    @inline(__always)
    func schedule(_ job: UnownedJob, isTask: Bool) {
        let scheduled = currentWorker { worker -> Bool in
            guard !lifecycle.isStopping else { return false }
            worker.schedule(job, isTask: isTask)
            return true
        }
        if scheduled != true { scheduleRemote(job) }
    }

    private func scheduleRemote(_ job: UnownedJob) {
        if lifecycle.isStopped {
            orphan([job])
            return
        }
        remoteQueue.push(job)
        remoteEnqueues.add(1, ordering: .relaxed)
        remotePending.store(true, ordering: .relaxed)
        if lifecycle.isStopped {
            drainAfterStop()
            return
        }
        notifyParked(from: nil)
    }

    /// Wakes one parked worker if the wake-up rule says work is waiting and nobody looks for it.
    func notifyParked(from sender: Worker?) {
        guard let index = idle.workerToNotify() else { return }
        workerRefs[index]._withUnsafeGuaranteedRef { $0.reactor.wake() }
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
        let scheduled = currentWorker { worker -> Bool in
            guard !lifecycle.isStopping else { return false }
            worker.scheduleTimer(action, deadline: deadline)
            return true
        }
        if scheduled == true { return }
        if lifecycle.isStopping {
            orphan([], timers: [(action, deadline)])
            return
        }
        scheduleSharedTimer(action, deadline: deadline)
        // As in `scheduleRemote`: if the last worker stopped meanwhile, its drain may have
        // missed this timer; drain again (both sides sequentially consistent).
        if lifecycle.isStopped { drainAfterStop() }
    }

    /// Puts a timer in the heap every worker watches (timers from other threads, and those
    /// moved off a blocked worker).
    func scheduleSharedTimer(_ action: TimerAction, deadline: UInt64) {
        if remoteTimers.insert(action, deadline: deadline), let index = idle.anySleeper() {
            // A parked worker must recompute its park timeout to include the new deadline.
            workers[index].reactor.wake()
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

    // MARK: After the stop

    /// Hands jobs that can no longer run here to Swift's global executor (Afterlife.swift).
    func orphan(_ jobs: [UnownedJob], timers: [TimedAction] = []) {
        if jobs.isEmpty && timers.isEmpty { return }
        orphanedJobs.add(UInt64(jobs.count + timers.count), ordering: .relaxed)
        Afterlife.adopt(jobs, timers: timers, from: runtime!)
    }

    /// Called by each worker thread as it exits; the last one marks the runtime stopped and
    /// drains the global queues.
    func workerExited() {
        // Acquire-release: the last worker out sees every other worker's drain.
        if exitedCount.add(1, ordering: .acquiringAndReleasing).newValue == workerCount {
            lifecycle.markStopped()
            drainAfterStop()
        }
    }

    private func drainAfterStop() {
        var leftovers: [UnownedJob] = []
        while let job = remoteQueue.pop() { leftovers.append(job) }
        while let job = injector.pop() { leftovers.append(job) }
        orphan(leftovers, timers: remoteTimers.removeAll())
    }
}
