// The worker's timers. Due timers are checked between jobs whenever some are pending; they
// fire in place (a job runs, DueTimerJob.swift, or a `Spindle.sleep` waiter resumes its task,
// SleepWaiter.swift) and the task the first one wakes goes to the LIFO slot (Placement.swift),
// so only the job in progress can delay a timer.

import Synchronization

extension Worker {
    /// Owner only: a timer to fire at `deadline` (CLOCK_MONOTONIC nanoseconds).
    func scheduleTimer(_ action: TimerAction, deadline: UInt64) {
        timers.withLock { heap in
            heap.insert(action, deadline: deadline)
            timerDeadline.store(heap.nextDeadline, ordering: .relaxed)
            counters.timersPending.store(UInt64(heap.count), ordering: .relaxed)
        }
    }

    func fireDueTimers(now: UInt64) {
        if timerDeadline.load(ordering: .relaxed) > now { return }
        var due = owner.pointee.dueTimers
        owner.pointee.dueTimers = []
        timers.withLock { heap in
            while let action = heap.popDue(now: now) { due.append(action) }
            timerDeadline.store(heap.nextDeadline, ordering: .relaxed)
            counters.timersPending.store(UInt64(heap.count), ordering: .relaxed)
        }
        if !due.isEmpty {
            runDueTimers(due)
            counters.timersFired.bump(by: UInt64(due.count))
        }
        due.removeAll(keepingCapacity: true)
        owner.pointee.dueTimers = due
    }

    /// Receives due timers from the runtime's shared wheel, in deadline order (owner only).
    func acceptDueTimers(_ actions: [TimerAction]) {
        runDueTimers(actions)
        counters.timersFired.bump(by: UInt64(actions.count))
    }

    /// Owner only, between jobs: fires due timers in place (a job, normally `Task.sleep`'s
    /// helper, runs and resumes its task, DueTimerJob.swift; a `Spindle.sleep` waiter resumes
    /// its task directly, SleepWaiter.swift). The first task resumed goes to
    /// the LIFO slot and runs next; the others queue behind it in deadline order, as resumed
    /// jobs (never spilled); one wake-up covers the batch.
    func runDueTimers(_ actions: some Collection<TimerAction>) {
        owner.pointee.activity = .firingTimers
        owner.pointee.resumedInBatch = 0
        for action in actions {
            owner.pointee.pushesThisJob = 0
            switch action {
            case .job(let job):
                owner.pointee.runningJob = Self.identity(job)
                publishedJob.store(Self.bits(job), ordering: .relaxed)
                DueTimerJob.run(job)
                publishedJob.store(0, ordering: .relaxed)
            case .wake:
                owner.pointee.runningJob = nil
                action.fire()
            }
            counters.jobsRun.bump()  // progress, for the watch, in a long batch
            if owner.pointee.spillCount > 0 { flushSpill() }
        }
        owner.pointee.runningJob = nil
        owner.pointee.activity = .runningJob
        owner.pointee.lifoStreak = 0
        if owner.pointee.notifyAfterBatch {
            owner.pointee.notifyAfterBatch = false
            shared.notifyParked(from: self)
        }
    }

    func takeAllTimers() -> [TimedAction] {
        timers.withLock { heap in
            defer {
                timerDeadline.store(.max, ordering: .relaxed)
                counters.timersPending.store(0, ordering: .relaxed)
            }
            return heap.removeAll()
        }
    }
}
