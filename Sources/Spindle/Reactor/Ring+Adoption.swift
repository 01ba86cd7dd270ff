// Adoption: the blocked-worker watch (Scheduler/BlockedWorkerWatch.swift) reaping the ring of
// an owner stuck inside one job, so the tasks its completions resume run on other workers.
// Only an adoptable ring (Ring+Setup.swift) allows it, and only while the watch holds the
// token (Ring+Token.swift), which it tries for and never waits for.

import Synchronization

extension Ring {
    /// The watch, when it adopts the ring (`doorbell`, its eventfd) or gives it up (nil): while
    /// set, every `wake()` also writes the doorbell.
    func setAdopterDoorbell(_ doorbell: Int32?) {
        wakeLock.withLock { $0.doorbell = doorbell ?? -1 }
    }

    /// The blocked-worker watch, while the owner is stuck inside one job: if nobody holds the
    /// ring, takes the cancel inbox (submitting the cancels), submits what was prepared, and
    /// reaps what completed. Tasks resumed here are enqueued from this thread, so the
    /// runtime's other workers run them. Returns false, having touched nothing, if the ring is
    /// owner-only or closed, or its token is taken (the owner is back, or parked: it reaps).
    func reapAsAdopter() -> Bool {
        guard isAdoptable, tryAcquireToken() else { return false }
        defer { releaseToken() }
        guard isOpen else { return false }
        drainCancelRequests()
        if unsubmitted > 0 {
            submitNow()
            publishInFlight()
        }
        let reaped = reapAvailable()
        if reaped > 0 { counters.cqesReapedByWatch.bump(by: reaped) }
        return true
    }
}
