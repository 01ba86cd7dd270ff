// Submitting and reaping the worker's ring, and the wake-up for the work it resumes (see
// `reapRing`).

import Synchronization

extension Worker {
    /// Submits the I/O requests this worker's jobs prepared and reaps what completed (the
    /// resumed tasks land in the LIFO slot and queue), before looking further afield.
    func reapedJob() -> UnownedJob? {
        reapRing()
        return nextJob()
    }

    /// Owner only: submits and reaps the ring. Tasks resumed by the completions land in the
    /// LIFO slot and local queue. A parked worker is woken at most once for the whole batch
    /// (waking one per completion cost a wake-up and an empty park on the other worker for
    /// most completions of an echo server), and only if the batch is still not done after
    /// `ioWakeDelayNanoseconds`: most batches of a busy server are run by the worker that
    /// reaped them sooner than a woken worker could start, and the tasks then stay with the
    /// ring that holds their next requests. (W9, 64 echo connections on 2 workers: a third
    /// fewer context switches at the same or a few percent higher throughput.) The delay is
    /// checked after every job; if the job in progress is long, the blocked-worker watch sends
    /// the wake-up at its next sample (a quarter of its threshold: 25 ms by default). Without
    /// the watch, wake-ups are not deferred.
    func reapRing(parkingUntil deadline: UInt64? = nil) {
        owner.pointee.activity = .reapingCompletions
        if let deadline {
            reactor.park(deadline: deadline)
        } else {
            reactor.flush()
        }
        owner.pointee.activity = .runningJob
        if owner.pointee.notifyAfterBatch {
            owner.pointee.notifyAfterBatch = false
            if !shared.defersIOWakeups {
                shared.notifyParked(from: self)
            } else if deferredWakeSince.load(ordering: .relaxed) == 0 {
                deferredWakeSince.store(monotonicNanos(), ordering: .relaxed)
            }
        }
    }

    /// Owner only, after each job while a wake-up is deferred: wakes a parked worker once the
    /// backlog has outlived `ioWakeDelayNanoseconds`; forgets it if the backlog went first.
    func checkDeferredWake(since: UInt64) {
        if queue.isEmpty && shared.injector.isEmpty {
            deferredWakeSince.store(0, ordering: .relaxed)
        } else if monotonicNanos() &- since >= Self.ioWakeDelayNanoseconds {
            deferredWakeSince.store(0, ordering: .relaxed)
            shared.notifyParked(from: self)
        }
    }
}
