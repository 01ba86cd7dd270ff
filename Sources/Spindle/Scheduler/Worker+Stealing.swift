// Work from elsewhere: the remote queue (jobs from other threads), the injector, and the
// other workers' queues (steal half of a random victim's; at most half the workers search at
// once, Idle.swift).

import Synchronization

extension Worker {
    /// A job from the remote queue because another thread enqueued one (see
    /// `Runtime.remotePending`). Clears the flag once that queue is empty, then looks again, so a push racing with the
    /// clear raises it anew rather than waiting for the 61-tick check.
    func takeRemoteJob() -> UnownedJob? {
        if let job = shared.remoteQueue.pop() {
            counters.injectorPulls.bump()
            return job
        }
        shared.remotePending.store(false, ordering: .relaxed)
        if !shared.remoteQueue.isEmpty { shared.remotePending.store(true, ordering: .relaxed) }
        return nil
    }

    /// A batch from the injector: enough to share the backlog fairly between workers.
    func pullFromInjector() -> UnownedJob? {
        if let job = shared.remoteQueue.pop() {
            counters.injectorPulls.bump()
            return job
        }
        let waiting = shared.injector.count
        if waiting == 0 { return nil }
        let share = min(waiting / shared.workerCount + 1, Int(LocalQueue.capacity) / 2)
        let job = shared.injector.popBatch(max: share) { next in
            _ = queue.pushBatch(max: share - 1, next)
        }
        if job != nil { counters.injectorPulls.bump() }
        return job
    }

    func search() -> UnownedJob? {
        if !owner.pointee.isSearching {
            guard shared.idle.tryStartSearching() else { return nil }
            owner.pointee.isSearching = true
        }
        let workers = shared.workerRefs
        let count = workers.count
        if count > 1 {
            // xorshift: a cheap random first victim so thieves don't all hit worker 0.
            owner.pointee.random ^= owner.pointee.random << 13
            owner.pointee.random ^= owner.pointee.random >> 7
            owner.pointee.random ^= owner.pointee.random << 17
            let start = Int(owner.pointee.random % UInt64(count))
            for offset in 0..<count {
                let victimIndex = (start + offset) % count
                if victimIndex == index { continue }
                var stolen = 0
                let job = workers[victimIndex]._withUnsafeGuaranteedRef {
                    $0.queue.steal(into: queue, stolen: &stolen)
                }
                if let job {
                    counters.steals.bump()
                    counters.jobsStolen.bump(by: UInt64(stolen))
                    return job
                }
            }
        }
        return pullFromInjector()
    }

    func stopSearching() {
        owner.pointee.isSearching = false
        if shared.idle.stopSearching() {
            // The last searcher found work: there may be more, so wake one more worker to look.
            shared.notifyParked(from: self)
        }
    }
}
