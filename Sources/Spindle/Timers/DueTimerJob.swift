// How a due timer's job runs.
//
// Swift 6.3 implements `Task.sleep` on a `SchedulingExecutor` by creating a small helper task
// with no executor preference and handing it to `enqueue(_:at:tolerance:clock:)`; at the
// deadline the helper resumes the sleeping task's continuation. The helper's body is
// nonisolated, so when it starts it checks that it runs on the generic executor with no task
// executor. Run like any other job (with our task executor as the context), it fails that
// check and hops to Swift's global executor, Dispatch: every sleep's wake-up then cost a trip
// through a Dispatch thread and back through our remote queue, and on 2 cores those threads
// competed with both workers (W7 on 2 workers: p99 lateness 170-310 ms, against 4 ms on one).
//
// So due timer jobs run in the generic context, in place, on the worker that fired them: the
// helper resumes its task right there, which puts the task in this worker's queue. A job that
// is not such a helper (a task somebody enqueued with a deadline through the public
// `enqueue(_:at:)`) also runs correctly: Swift takes the task executor from the task's own
// preference, so such a task runs its slice in place, on this thread, inside the timer batch;
// what it schedules counts as resumed work (never spilled). Only `Task.sleep` uses the path
// in Swift 6.3.

@_spi(ExperimentalScheduling) @_spi(ExperimentalCustomExecutors) import _Concurrency

enum DueTimerJob {
    /// The generic executor: no actor isolation and no task executor. Swift represents it as
    /// an executor reference whose two words are zero (`SerialExecutorRef::generic()` in the
    /// runtime); there is no public spelling of it in 6.3.
    /// Built in place on each use: two zero words cost nothing, where a `static let` would pay
    /// a lazy-initialisation check on every timer job.
    @inline(__always)
    static var generic: UnownedSerialExecutor {
        unsafeBitCast((UInt(0), UInt(0)), to: UnownedSerialExecutor.self)  // sizes checked by unsafeBitCast
    }

    /// Runs a due timer's job on the calling thread in the generic context.
    @inline(__always)
    static func run(_ job: UnownedJob) {
        job.runSynchronously(on: generic)
    }
}
