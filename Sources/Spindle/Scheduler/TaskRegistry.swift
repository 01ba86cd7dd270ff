// The tasks started with `spawn`, so that shutdown can cancel what is still running and wait
// for it (asyncio.run's and Tokio's "owned tasks").
//
// A slab of slots behind one lock: `reserve` before the task exists (so a task that finishes
// before `attach` cannot leave a stale entry), `attach` its handle, `finish` from the task's own
// last step. Each slot has a generation, so a late `attach` can never land in a reused slot.
// Closing hands back every live handle for cancellation; later reservations fail.

import Glibc
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
        /// The task's address (the job Swift enqueues for it) and name, for the blocked-worker
        /// watch's report.
        var task: UInt = 0
        var name: String? = nil
    }

    private struct Slab {
        var slots: [Slot] = []
        var free: [Int] = []
        var live = 0
        var closed = false
    }

    private let slab = Lock(Slab())

    var liveCount: Int { slab.withLock { $0.live } }

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
    func attach(_ id: UInt64, _ handle: some CancellableTask, task: UInt, name: String?) {
        let cancelNow = slab.withLock { slab -> Bool in
            let index = Int(id & 0xFFFF_FFFF)
            guard slab.slots[index].generation == UInt32(id >> 32), slab.slots[index].isLive else {
                return false  // already finished
            }
            slab.slots[index].handle = handle
            slab.slots[index].task = task
            slab.slots[index].name = name
            return slab.closed
        }
        if cancelNow { handle.cancel() }
    }

    /// Called by the task itself when its operation returns.
    func finish(_ id: UInt64) {
        slab.withLock { slab in
            let index = Int(id & 0xFFFF_FFFF)
            guard slab.slots[index].generation == UInt32(id >> 32), slab.slots[index].isLive else { return }
            slab.slots[index] = Slot(generation: slab.slots[index].generation &+ 1)
            slab.free.append(index)
            slab.live -= 1
        }
    }

    /// The name given to `spawn` for the live task at `address`, if any.
    func name(ofTask address: UInt) -> String? {
        slab.withLock { slab in
            slab.slots.first { $0.isLive && $0.task == address }?.name.map { "task '\($0)'" }
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

// The lifecycle steps Runtime and EventLoop share: spawning a tracked task, waiting for spawned
// tasks during a grace period, and asyncio.run's "run this, then shut down".
extension TaskRegistry {
    /// Starts a task with `executor` as its preference and tracks it until it returns.
    func spawn<Success: Sendable>(
        on executor: some TaskExecutor, name: String?, priority: TaskPriority?,
        _ operation: sending @escaping () async -> Success
    ) throws(SpindleError) -> Task<Success, Never> {
        let id = try reserve()
        let task = Task(name: name, executorPreference: executor, priority: priority) { [self] in
            defer { finish(id) }
            return await operation()
        }
        attach(id, task, task: unsafeBitCast(task, to: UInt.self), name: name)
        return task
    }

    /// Starts a throwing task with `executor` as its preference and tracks it until it returns.
    func spawn<Success: Sendable>(
        on executor: some TaskExecutor, name: String?, priority: TaskPriority?,
        _ operation: sending @escaping () async throws -> Success
    ) throws(SpindleError) -> Task<Success, any Error> {
        let id = try reserve()
        let task = Task(name: name, executorPreference: executor, priority: priority) { [self] in
            defer { finish(id) }
            return try await operation()
        }
        attach(id, task, task: unsafeBitCast(task, to: UInt.self), name: name)
        return task
    }

    /// Suspends until every tracked task has returned or `deadline` (CLOCK_MONOTONIC ns) passes.
    /// Keeps honouring the deadline if the caller is cancelled (it sleeps the thread instead).
    func drain(until deadline: UInt64) async {
        while liveCount > 0 && monotonicNanos() < deadline {
            do {
                try await Task.sleep(for: .milliseconds(1))
            } catch {
                usleep(1_000)
            }
        }
    }

    /// ``drain(until:)`` for synchronous callers.
    func drainBlocking(until deadline: UInt64) {
        while liveCount > 0 && monotonicNanos() < deadline { usleep(1_000) }
    }
}

/// asyncio.run's shape, shared by `Runtime.run` and `EventLoop.run`: runs `operation` on
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
