// What a timer does when its deadline comes.
//
// Two kinds of timers share every wheel: a job that Swift handed us with a deadline
// (`Task.sleep`'s helper task, through `SchedulingExecutor`), which runs in place
// (DueTimerJob.swift), and a `Spindle.sleep` waiter, which resumes its task's continuation
// directly (SleepWaiter.swift) and costs no task of its own.

enum TimerAction {
    case job(UnownedJob)
    case wake(SleepWaiter)

    /// Runs the job or resumes the waiter on the calling thread. Either way the task it
    /// resumes is enqueued on its executor from here, so a worker or loop firing its own timers
    /// sees the resumption as its own.
    @inline(__always)
    func fire() {
        switch self {
        case .job(let job): DueTimerJob.run(job)
        case .wake(let waiter): waiter.fire()
        }
    }

    /// True for a sleep that was cancelled: its entry does nothing when it fires and may be
    /// dropped early (TimerWheel's sweep).
    var isCancelled: Bool {
        if case .wake(let waiter) = self { return waiter.isFinished }
        return false
    }
}
