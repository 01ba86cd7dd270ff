// What a timer does when its deadline comes.
//
// Two kinds of timers share every wheel: a job that Swift handed us with a deadline
// (`Task.sleep`'s helper task, through `SchedulingExecutor`), which runs in place
// (DueTimerJob.swift), and a `Spindle.sleep` waiter, which resumes its task's continuation
// directly (SleepWaiter.swift) and costs no task of its own.

enum TimerAction {
    case job(UnownedJob)
    /// Holds one reference to the waiter, taken when the sleep sets its timer and given up by
    /// `fire` or `discard`: an action is consumed exactly once. (Unmanaged, so that moving
    /// actions through the wheel's arrays costs no reference counting.)
    case wake(Unmanaged<SleepWaiter>)

    /// Runs the job or resumes the waiter on the calling thread, consuming the action. Either
    /// way the task it resumes is enqueued on its executor from here, so a worker or loop
    /// firing its own timers sees the resumption as its own.
    @inline(__always)
    func fire() {
        switch self {
        case .job(let job): DueTimerJob.run(job)
        case .wake(let waiter): waiter.takeRetainedValue().fire()
        }
    }

    /// Consumes an ended wait's action without firing it.
    func discard() {
        if case .wake(let waiter) = self { waiter.release() }
    }

    /// True for a wait that ended without its timer (a cancelled `Spindle.sleep`, or a
    /// `withTimeout` whose operation finished first): the action does nothing when it fires and
    /// may be discarded early (TimerWheel's sweep).
    var hasEnded: Bool {
        if case .wake(let waiter) = self { return waiter._withUnsafeGuaranteedRef(\.isFinished) }
        return false
    }
}

/// A timer and its deadline (CLOCK_MONOTONIC nanoseconds), as wheels hand them over.
typealias TimedAction = (action: TimerAction, deadline: UInt64)
