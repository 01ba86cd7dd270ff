// The tasks started with `spawn`, so that shutdown can cancel what is still running and wait
// for it (asyncio.run's and Tokio's "owned tasks").
//
// A slab of slots behind one lock: `reserve` before the task exists (so a task that finishes
// before `attach` cannot leave a stale entry), `attach` its handle, `finish` from the task's own
// last step. Each slot has a generation, so a late `attach` can never land in a reused slot.
// Closing hands back every live handle for cancellation; later reservations fail.
//
// Shutdown waits for the tracked tasks by event, not by polling: `drain` leaves a waker in the
// slab that the `finish` which leaves no other task live calls, and a timer at the grace
// period's end calls it otherwise. The wait ignores cancellation, because shutdown cancels the
// spawned tasks and its caller may be one of them: a cancelled `Task.sleep` would end at once,
// and the old fallback, `usleep`, blocked the worker or loop thread the other tasks needed.
// Nor does it wait for the caller's own spawned task, which cannot finish before the shutdown
// returns: each spawned task's operation runs with a task-local naming its slot, which the
// tasks it starts inherit, so a child of a spawned task (a connection handler in a server
// task's group) is recognised as well as the task itself.

import Glibc
import Logging
import Synchronization

protocol CancellableTask: Sendable {
    func cancel()
}

extension Task: CancellableTask {}

final class TaskRegistry: Sendable {
    private struct Slot {
        var generation: UInt32 = 0
        var isLive = false
        var handle: (any CancellableTask)? = nil
        /// The task's address (the job Swift enqueues for it), for the blocked-worker watch's
        /// report and the task dump.
        var task: UInt = 0
        /// Its name, age and current wait (Support/TaskActivity.swift), set with the handle.
        var record: SpawnedTaskRecord? = nil
    }

    private struct Slab {
        var slots: [Slot] = []
        var free: [Int] = []
        var live = 0
        var closed = false
        /// The shutdown waiting in `drain` (at most one: one call wins the shutdown).
        var drainer: Drainer? = nil

        func isLive(_ id: UInt64) -> Bool {
            let index = Int(id & 0xFFFF_FFFF)
            return index < slots.count && slots[index].isLive && slots[index].generation == UInt32(id >> 32)
        }

        /// Live tasks other than `spared`.
        func live(sparing spared: UInt64?) -> Int {
            guard let spared, isLive(spared) else { return live }
            return live - 1
        }
    }

    /// How a waiting shutdown is woken: an async caller's wheel entry, or a blocked thread.
    enum Waker {
        case task(SleepWaiter)
        case thread(Gate)

        func wake() {
            switch self {
            case .task(let waiter): waiter.wake()
            case .thread(let gate): gate.open()
            }
        }

        func isSame(as other: Waker) -> Bool {
            switch (self, other) {
            case (.task(let a), .task(let b)): return a === b
            case (.thread(let a), .thread(let b)): return a === b
            default: return false
            }
        }
    }

    /// A waiting shutdown: woken when no task but `spared` (the caller's own) is live.
    struct Drainer {
        let waker: Waker
        let spared: UInt64?
    }

    /// The caller's spawned task (see the file comment), if it is one of this registry's. The
    /// task-local is `SpawnedTaskRecord.current`, bound for the operation of every task `spawn`
    /// starts, and so inherited by the tasks that operation starts.
    var callersTask: UInt64? {
        guard let current = SpawnedTaskRecord.current, current.registry == ObjectIdentifier(self) else {
            return nil
        }
        return current.id
    }

    private let slab = Lock(Slab())
    /// Where failures nobody can observe are reported (TaskRegistry+Failures.swift).
    let logger: Logger

    init(logger: Logger) {
        self.logger = logger
    }

    var liveCount: Int { slab.withLock { $0.live } }

    /// Live tasks other than `spared` (a caller's own task, see `callersTask`).
    func liveCount(sparing spared: UInt64?) -> Int { slab.withLock { $0.live(sparing: spared) } }

    /// Reserves a slot for a task about to be created; fails once the registry is closed.
    func reserve() throws(SpindleError) -> UInt64 {
        let id: UInt64? = slab.withLock { slab in
            if slab.closed { return nil }
            let index: Int
            if let reused = slab.free.popLast() {
                index = reused
            } else {
                index = slab.slots.count
                slab.slots.append(Slot())
            }
            slab.slots[index].isLive = true
            slab.live += 1
            return UInt64(slab.slots[index].generation) << 32 | UInt64(index)
        }
        guard let id else { throw SpindleError.shutDown }
        return id
    }

    /// Stores the handle of the task created for `id`. If the registry closed in between, the
    /// task is cancelled at once, as shutdown did for the others.
    func attach(_ id: UInt64, _ handle: some CancellableTask, task: UInt, record: SpawnedTaskRecord) {
        let cancelNow = slab.withLock { slab -> Bool in
            let index = Int(id & 0xFFFF_FFFF)
            guard slab.slots[index].generation == UInt32(id >> 32), slab.slots[index].isLive else {
                return false  // already finished
            }
            slab.slots[index].handle = handle
            slab.slots[index].task = task
            slab.slots[index].record = record
            return slab.closed
        }
        if cancelNow { handle.cancel() }
    }

    /// Called by the task itself when its operation returns. Wakes a waiting shutdown if this
    /// was the last task it waited for.
    func finish(_ id: UInt64) {
        let drained = slab.withLock { slab -> Drainer? in
            let index = Int(id & 0xFFFF_FFFF)
            guard slab.slots[index].generation == UInt32(id >> 32), slab.slots[index].isLive else { return nil }
            slab.slots[index] = Slot(generation: slab.slots[index].generation &+ 1)
            slab.free.append(index)
            slab.live -= 1
            guard let drainer = slab.drainer, slab.live(sparing: drainer.spared) == 0 else { return nil }
            slab.drainer = nil
            return drainer
        }
        drained?.waker.wake()
    }

    /// The name given to `spawn` for the live task at `address`, if any.
    func name(ofTask address: UInt) -> String? {
        slab.withLock { slab in
            slab.slots.first { $0.isLive && $0.task == address }?.record?.name.map { "task '\($0)'" }
        }
    }

    /// The live tasks' records and addresses, for the task dump (tasks whose `spawn` has not
    /// returned yet are left out).
    func liveTasks() -> [(record: SpawnedTaskRecord, task: UInt)] {
        slab.withLock { slab in
            slab.slots.compactMap { slot in
                guard slot.isLive, let record = slot.record else { return nil }
                return (record, slot.task)
            }
        }
    }

    /// The address of the live task `id`, if its handle is attached; under the lock, so the
    /// handle the slot holds is still counted (TaskRegistry+Failures.swift).
    func withAttachedTask<R>(_ id: UInt64, _ body: (UInt) -> R) -> R? {
        slab.withLock { slab in
            // Fields read in place: a copy of the slot would retain the handle and be counted.
            let index = Int(id & 0xFFFF_FFFF)
            guard slab.slots[index].generation == UInt32(id >> 32), slab.slots[index].isLive else { return nil }
            let task = slab.slots[index].task  // set with the handle by `attach`
            return task == 0 ? nil : body(task)
        }
    }

    /// Refuses new tasks and returns the handles of those still running.
    func close() -> [any CancellableTask] {
        slab.withLock { slab in
            slab.closed = true
            return slab.slots.compactMap { $0.isLive ? $0.handle : nil }
        }
    }
}

// The lifecycle steps Runtime and SpindleEventLoop share: spawning a tracked task, waiting for spawned
// tasks during a grace period, and asyncio.run's "run this, then shut down".
extension TaskRegistry {
    /// Starts a task with `executor` as its preference and tracks it until it returns.
    func spawn<Success: Sendable>(
        on executor: some TaskExecutor, name: String?, priority: TaskPriority?,
        _ operation: sending @escaping () async -> Success
    ) throws(SpindleError) -> Task<Success, Never> {
        let id = try reserve()
        let record = SpawnedTaskRecord(registry: ObjectIdentifier(self), id: id, name: name)
        let task = Task(name: name, executorPreference: executor, priority: priority) { [self] in
            record.owner.store(currentTaskAddress(), ordering: .relaxed)
            defer { finish(id) }
            return await SpawnedTaskRecord.$current.withValue(record) {
                await operation()
            }
        }
        attach(id, task, task: unsafeBitCast(task, to: UInt.self), record: record)
        return task
    }

    /// Starts a throwing task with `executor` as its preference and tracks it until it returns.
    func spawn<Success: Sendable>(
        on executor: some TaskExecutor, name: String?, priority: TaskPriority?,
        _ operation: sending @escaping () async throws -> Success
    ) throws(SpindleError) -> Task<Success, any Error> {
        let id = try reserve()
        let record = SpawnedTaskRecord(registry: ObjectIdentifier(self), id: id, name: name)
        let task = Task(name: name, executorPreference: executor, priority: priority) { [self] in
            record.owner.store(currentTaskAddress(), ordering: .relaxed)
            defer { finish(id) }
            do {
                return try await SpawnedTaskRecord.$current.withValue(record) {
                    try await operation()
                }
            } catch {
                reportIfUnobservable(error, of: id, name: name)
                throw error
            }
        }
        attach(id, task, task: unsafeBitCast(task, to: UInt.self), record: record)
        return task
    }

    /// Suspends until every tracked task other than `spared` has returned or `deadline`
    /// (on `owner`'s timer clock) passes. Ignores the caller's cancellation and blocks no thread: the
    /// caller waits on a wheel entry of `owner` that the deadline fires or the last `finish`
    /// wakes (see the file comment).
    func drain(until deadline: UInt64, sparing spared: UInt64?, on owner: some TimerScheduler) async {
        let waiter = SleepWaiter()
        let waker = Waker.task(waiter)
        guard owner.timerNow < deadline, register(waker, sparing: spared) else { return }
        // Nothing throws: the waiter has no cancellation handler, it is only fired or woken.
        try? await withUnsafeThrowingContinuation { (continuation: UnsafeContinuation<Void, any Error>) in
            if waiter.arm(continuation) {
                owner.scheduleTimer(.wake(Unmanaged.passRetained(waiter)), deadline: deadline)
            } else {
                continuation.resume()  // the last task finished first
            }
        }
        unregister(waker)
    }

    /// ``drain(until:sparing:on:)`` for synchronous callers: blocks the calling thread.
    func drainBlocking(until deadline: UInt64, sparing spared: UInt64?) {
        let gate = Gate()
        let waker = Waker.thread(gate)
        guard monotonicNanos() < deadline, register(waker, sparing: spared) else { return }
        gate.wait(deadline: deadline)
        unregister(waker)
    }

    /// Leaves `waker` for `finish`; false if no task but `spared` is live (nothing to wait for).
    private func register(_ waker: Waker, sparing spared: UInt64?) -> Bool {
        slab.withLock { slab in
            if slab.live(sparing: spared) == 0 { return false }
            slab.drainer = Drainer(waker: waker, spared: spared)
            return true
        }
    }

    /// Takes `waker` back after the deadline woke it (`finish` took it if it did the waking).
    private func unregister(_ waker: Waker) {
        slab.withLock { slab in
            if let drainer = slab.drainer, drainer.waker.isSame(as: waker) { slab.drainer = nil }
        }
    }
}

/// Shuts `pool` down within what is left before `deadline` (on `owner`'s timer clock). Shutdown cancels its caller if
/// that is a spawned task; the pool's shutdown still honours the grace period then, suspending
/// rather than blocking the worker or loop thread (BlockingPool+Shutdown.swift).
func shutDownBlockingPool(
    _ pool: BlockingPool, until deadline: UInt64, on owner: some TimerScheduler
) async -> BlockingPoolShutdownReport {
    await pool.shutdown(gracePeriod: .nanoseconds(owner.timerRemaining(until: deadline)))
}

/// asyncio.run's shape, shared by `Runtime.run` and `SpindleEventLoop.run`: runs `operation` on
/// `executor` (cancelling it if the caller is cancelled), then `shutdown`, then returns the
/// operation's outcome.
func runThenShutDown<Executor: TaskExecutor, Success: Sendable>(
    on executor: Executor,
    shutdown: (Executor) async -> Void,
    _ operation: sending @escaping () async throws -> Success
) async throws -> Success {
    let task = Task(executorPreference: executor) { try await operation() }
    let result = await withTaskCancellationHandler {
        await task.result
    } onCancel: {
        task.cancel()
    }
    await shutdown(executor)
    return try result.get()
}
