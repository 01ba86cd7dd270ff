// Where jobs go when the executor that should run them has stopped.
//
// Swift offers no way to drop a job: a task whose job is never run stays suspended forever, and
// so does whoever awaits it. So a stopped runtime or loop hands every job it still holds, and
// every job that still reaches it (a continuation resumed late by some other thread), to Swift's
// global executor. For a runtime that includes what its stopping workers refuse: a worker runs
// jobs for at most its stop drain after the stop (Scheduler/Worker+Stopping.swift), then hands what it
// holds here, and jobs enqueued after that wait in the runtime's queues until the last worker
// has left and hands them here too (or come here directly once the runtime is stopped). A task
// that ignores cancellation and never ends therefore goes on running on Swift's threads, not on
// a Spindle thread that shutdown promised to stop. Their tasks were cancelled by shutdown; this only lets them finish. A delayed
// job (a `Task.sleep` in progress) keeps its deadline: it is re-armed on the global executor
// rather than run early; so does a `Spindle.sleep`, which is then resumed from a task there.
//
// A timer's deadline is on its executor's clock: `now` says where that clock stands (a virtual
// event loop passes `.max`: its timers are all due, as its idle loop would have jumped to them).
//
// If Spindle itself is the process's global executor, there is nowhere else to go: the job runs
// in place on the calling thread, and a `Spindle.sleep` ends with `CancellationError`.

enum Afterlife {
    static func adopt(
        _ jobs: [UnownedJob], timers: [TimedAction] = [], from executor: some TaskExecutor,
        now timerNow: UInt64 = monotonicNanos()
    ) {
        let global = globalConcurrentExecutor
        var live: [TimedAction] = []
        for timer in timers {
            // A cancelled sleep has ended already: give its reference back.
            if timer.action.hasEnded { timer.action.discard() } else { live.append(timer) }
        }
        let timers = live
        if (global as AnyObject) === executor {
            for job in jobs { job.runSynchronously(on: executor.asUnownedTaskExecutor()) }
            for timer in timers {
                switch timer.action {
                case .job(let job): job.runSynchronously(on: executor.asUnownedTaskExecutor())
                case .wake(let waiter):
                    // No timer is left to wait on: end the sleep with CancellationError (its
                    // task was cancelled by the shutdown) rather than return early as if slept.
                    waiter.takeRetainedValue().cancel()
                }
            }
            return
        }
        for job in jobs { global.enqueue(job) }
        let now = timerNow
        for timer in timers.sorted(by: { $0.deadline < $1.deadline }) {
            if timer.deadline <= now {
                fire(timer.action, on: global)
                continue
            }
            let action = timer.action
            let delay = timer.deadline - now
            Task.detached {
                try? await Task.sleep(nanoseconds: delay)
                fire(action, on: globalConcurrentExecutor)
            }
        }
    }

    /// A job goes to `executor`; a sleep waiter is resumed here (its task then goes to its
    /// own executor, which, stopped, sends it on to `executor`).
    private static func fire(_ action: TimerAction, on executor: any TaskExecutor) {
        switch action {
        case .job(let job): executor.enqueue(job)
        case .wake: action.fire()
        }
    }
}
