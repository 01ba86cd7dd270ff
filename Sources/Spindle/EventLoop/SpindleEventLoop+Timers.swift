// An event loop's timers: its own wheel, used from its thread, and a shared wheel for timers
// set from other threads (and while it stops). Both fire on the loop's thread, at the start of
// each turn and every 61 jobs within one (SpindleEventLoop.swift); the tasks they resume join the
// priority lane.

import Synchronization
@_spi(ExperimentalScheduling) import _Concurrency

extension SpindleEventLoop: TimerScheduler {
    /// The loop's clock: real, or virtual (SpindleEventLoop+VirtualTime.swift).
    var timerNow: UInt64 { now }

    /// Sets a timer: on the loop's own wheel from its thread, else on the shared one.
    func scheduleTimer(_ action: TimerAction, deadline: UInt64) {
        if inEventLoop && !lifecycle.isStopping {
            timers.insert(action, deadline: deadline)
            counters.timersPending.store(UInt64(timers.count), ordering: .relaxed)
            return
        }
        if lifecycle.isStopped {
            Afterlife.adopt([], timers: [(action, deadline)], from: self, now: afterlifeNow)
            return
        }
        remoteTimers.insert(action, deadline: deadline)
        if lifecycle.isStopped {
            // The loop exited meanwhile and its last drain may have missed this timer.
            Afterlife.adopt([], timers: remoteTimers.removeAll(), from: self, now: afterlifeNow)
            return
        }
        // The loop must recompute its park timeout.
        parked.store(false, ordering: .sequentiallyConsistent)
        reactor.wake()
    }

    /// Fires due timers in place (TimerAction.swift); the tasks they resume join `resumed`.
    func fireTimers() {
        firingTimers = true
        defer { firingTimers = false }
        var now: UInt64 = 0
        if !timers.isEmpty {
            now = self.now
            while let action = timers.popDue(now: now) {
                action.fire()  // resumes its task into `resumed`
                counters.timersFired.bump()
                counters.jobsRun.bump()
            }
            counters.timersPending.store(UInt64(timers.count), ordering: .relaxed)
        }
        if remoteTimers.deadline != .max {
            let due = remoteTimers.popDue(now: now == 0 ? self.now : now)
            for action in due { action.fire() }
            counters.timersFired.bump(by: UInt64(due.count))
            counters.jobsRun.bump(by: UInt64(due.count))
        }
    }
}

@_spi(ExperimentalScheduling)
extension SpindleEventLoop: SchedulingExecutor {
    /// Runs `job` at `instant` on `clock` (Swift calls this for `Task.sleep` on this loop).
    public func enqueue<C: Clock>(
        _ job: consuming ExecutorJob, at instant: C.Instant, tolerance: C.Duration?, clock: C
    ) {
        enqueueDelayed(job, after: clock.now.duration(to: instant))
    }

    /// Runs `job` after `delay` on `clock`.
    public func enqueue<C: Clock>(
        _ job: consuming ExecutorJob, after delay: C.Duration, tolerance: C.Duration?, clock: C
    ) {
        enqueueDelayed(job, after: delay)
    }
}
