// Where a job made runnable on a worker goes, as a pure decision (Worker+Placement.swift
// performs it; PlacementTests checks it without threads).
//
// What decides is what the worker is doing when the job is made runnable:
// - *Running a job.* The job that runs made another runnable: a spawn, or a message to a task
//   that waited for it. The new job takes the LIFO slot and runs next, for message-passing
//   locality; the slot's previous occupant goes to the back of the local queue, and a parked
//   worker may be woken to help with it at once.
// - *Reaping completions.* The ring's completions resume their tasks: each takes the slot in
//   turn (the last one reaped runs first), the displaced ones queue as resumed jobs (never
//   spilled), and one wake-up covers the whole batch, sent after it (Worker+Reaping.swift).
// - *Firing timers.* The first task a batch of due timers resumes takes the slot unless the
//   slot is occupied; the others queue behind it, so tasks whose timers fell due together run
//   in deadline order. Nor does the first displace a job already in the slot: that may be the
//   first of an earlier batch (a worker delayed past several deadlines fires them in separate
//   batches), which would then run after this later one; on a loaded machine
//   `TimeTests.timersFireInDeadlineOrderAndNeverEarly` saw the 85 ms sleeper run before the
//   35-80 ms ones so. One wake-up covers the batch.
// A yield is none of these: the running job re-enqueued itself, or (Swift 6.3's `Task.yield()`)
// enqueued a helper job, which is not a task, that will resume it. It goes to the back of the
// local queue, never to the slot, or the worker would hand itself straight back to the
// yielder. While reaping or firing timers no task is yielding: a job that is not a task then
// (an actor's job, for a task isolated to a default actor) is a resumption like the others.

/// What a worker is doing when a job is made runnable on it (see the file comment).
enum WorkerActivity: Equatable {
    case runningJob
    case reapingCompletions
    case firingTimers
}

/// Where the job goes (see the file comment).
enum Placement: Equatable {
    /// Back of the local queue; wake a parked worker now.
    case yield
    /// Back of the local queue as a resumed job; one wake-up after the batch.
    case queueResumed
    /// The LIFO slot. Its previous occupant, if any, goes to the back of the local queue (as a
    /// resumed job, with one wake-up after the batch, unless the worker is running a job: then
    /// as a new job, with a wake-up now).
    case lifo
}

enum PlacementPolicy {
    /// - Parameters:
    ///   - isRunningJob: the job is the one the worker is running (it re-enqueued itself).
    ///   - isTask: the job is a task, not a runtime-internal job (a yield's helper).
    ///   - activity: what the worker is doing.
    ///   - resumedInBatch: while firing timers, the tasks the batch has resumed so far.
    ///   - lifoOccupied: whether the LIFO slot holds a job.
    @inline(__always)
    static func place(
        isRunningJob: Bool, isTask: Bool, activity: WorkerActivity, resumedInBatch: Int, lifoOccupied: Bool
    ) -> Placement {
        if isRunningJob || (!isTask && activity == .runningJob) { return .yield }
        if activity == .firingTimers && (resumedInBatch > 0 || lifoOccupied) { return .queueResumed }
        return .lifo
    }
}
