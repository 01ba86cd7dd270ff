// Stopping. Once the runtime says stop, a worker finishes the job in hand and keeps running
// what it finds for at most `stopDrainNanoseconds` (tasks unwinding from the shutdown's
// cancellation), then leaves its loop even if jobs remain or keep coming (a task that ignores
// cancellation and yields forever would otherwise keep the thread alive after shutdown
// returned). Everything it still holds, and every job that reaches the runtime afterwards, goes
// to the executor core's after-stop path (Core/Afterlife.swift: Swift's global executor,
// timers keeping their deadlines), where cancelled tasks can finish. Then it closes its ring
// (which waits up to `Ring.closeDrainNanoseconds` for cancelled I/O). Shutdown waits for both
// phases with matching budgets (`awaitStop`): a worker still inside a job
// `stuckAfterNanoseconds` after the stop is reported stuck, one that left its loop is given its
// ring's whole drain, so no worker is reported stuck while it is only draining its ring, and
// no thread of a worker that is not stuck outlives the shutdown.

import Synchronization

extension Worker {
    /// Owner only, once the runtime is stopping: whether this worker's stop drain is over. The
    /// first call starts it.
    func stopDrainIsOver() -> Bool {
        let now = monotonicNanos()
        if owner.pointee.stopDeadline == 0 {
            owner.pointee.stopDeadline = now &+ Self.stopDrainNanoseconds
            return false
        }
        return now >= owner.pointee.stopDeadline
    }

    /// Owner only, on the way out: hands every job this worker still holds to the after-stop
    /// path (Runtime's `orphan`, Afterlife.swift).
    func drainForShutdown() {
        if owner.pointee.isSearching { stopSearching() }
        var leftovers = (0..<owner.pointee.spillCount).map { spill[$0] }
        owner.pointee.spillCount = 0
        if let job = takeLifo() { leftovers.append(job) }
        while let job = queue.pop() { leftovers.append(job) }
        shared.orphan(leftovers, timers: takeAllTimers())
    }
}

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
