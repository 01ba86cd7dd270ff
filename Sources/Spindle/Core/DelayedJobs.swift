// Delayed jobs: what Swift's `SchedulingExecutor` hook asks of an executor when a task on it
// calls `Task.sleep`. Runtime and SpindleEventLoop both answer it with a timer on their wheels.

@_spi(ExperimentalScheduling) import _Concurrency

extension TimerScheduler where Self: TaskExecutor {
    /// Runs `job` after `delay`: a timer whose action runs the job in place (DueTimerJob.swift).
    func enqueueDelayed<D>(_ job: consuming ExecutorJob, after delay: D) {
        let job = UnownedJob(job)
        guard let duration = delay as? Duration else {
            // A clock whose durations are not `Duration` cannot be mapped to our deadlines;
            // run the job now rather than never (no such clock ships with Swift).
            enqueue(ExecutorJob(job))
            return
        }
        scheduleTimer(.job(job), deadline: timerDeadline(after: duration))
    }
}
