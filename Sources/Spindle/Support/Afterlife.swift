// Where jobs go when the executor that should run them has stopped.
//
// Swift offers no way to drop a job: a task whose job is never run stays suspended forever, and
// so does whoever awaits it. So a stopped runtime or loop hands every job it still holds, and
// every job that still reaches it (a continuation resumed late by some other thread), to Swift's
// global executor. Their tasks were cancelled by shutdown; this only lets them finish. A delayed
// job (a `Task.sleep` in progress) keeps its deadline: it is re-armed on the global executor
// rather than run early.
//
// If Spindle itself is the process's global executor, there is nowhere else to go, and the job
// runs in place on the calling thread.

enum Afterlife {
    /// A job and its deadline (CLOCK_MONOTONIC nanoseconds).
    typealias Timed = (job: UnownedJob, deadline: UInt64)

    static func adopt(_ jobs: [UnownedJob], timers: [Timed] = [], from executor: some TaskExecutor) {
        let global = globalConcurrentExecutor
        if (global as AnyObject) === executor {
            for job in jobs { job.runSynchronously(on: executor.asUnownedTaskExecutor()) }
            for timer in timers { timer.job.runSynchronously(on: executor.asUnownedTaskExecutor()) }
            return
        }
        for job in jobs { global.enqueue(job) }
        let now = monotonicNanos()
        for timer in timers {
            if timer.deadline <= now {
                global.enqueue(timer.job)
                continue
            }
            let job = timer.job
            let delay = timer.deadline - now
            Task.detached {
                try? await Task.sleep(nanoseconds: delay)
                globalConcurrentExecutor.enqueue(job)
            }
        }
    }
}
