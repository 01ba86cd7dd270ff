// Parking. A searcher that found nothing spins briefly, still counted as searching, then parks
// in its ring until a completion, the next timer, or a wake-up.
//
// The spin is Go's "spinning M": when one worker produces jobs one at a time and another
// consumes them faster, the consumer would otherwise park and be woken once per job (two system
// calls and a context switch each; measured: 290,000 park/wake pairs for 1,000,000 spawns on
// 2 workers). While it spins it is still a searcher, so producers send no wake-ups.

internal import CSpindle
import Synchronization

extension Worker {
    /// Searchers only, while another worker is awake: watches the queues (plain loads, no stealing, no system call) for up to
    /// `spinNanoseconds`. Returns true when work appeared or a timer fell due.
    func spinForWork() -> Bool {
        // Only while another worker is awake: a parked one produces nothing to wait for, and
        // spinning would take the CPU from blocking-pool threads (W10: +15% job time).
        // Nor while this worker has I/O in flight: its work then comes from its own ring, whose
        // completions end a park directly, and the spin only took CPU from the processes at the
        // other end of the sockets (16% of an echo server's time went to spinning).
        guard owner.pointee.isSearching, shared.idle.unparkedCount > 1, reactor.inFlightCount == 0 else {
            return false
        }
        let deadline = monotonicNanos() &+ Self.spinNanoseconds
        repeat {
            for _ in 0..<32 { spindle_cpu_relax() }
            if shared.hasPendingWork || shared.lifecycle.isStopping { return true }
            let now = monotonicNanos()
            if timerDeadline.load(ordering: .relaxed) <= now || shared.remoteTimerDeadline <= now {
                return true
            }
            if now >= deadline { return false }
        } while true
    }

    func park() {
        let wasLastSearcher = shared.idle.workerWillPark(index, isSearching: owner.pointee.isSearching)
        owner.pointee.isSearching = false
        if wasLastSearcher && shared.hasPendingWork {
            // Work arrived while we searched and its pusher saw a searcher (us) and did not
            // wake anyone. Take it ourselves rather than park: undo the announcement (if a
            // pusher picked us meanwhile, we count as woken on purpose, and its eventfd write
            // only makes the next park return at once). Waking ourselves through the eventfd
            // instead cost a write and an empty park per occurrence: 18,000 in 2 s of W9 on
            // one worker.
            if shared.idle.workerDidUnpark(index) { owner.pointee.isSearching = true }
            return
        }
        counters.parks.bump()
        if counters.timersPending.load(ordering: .relaxed) >= UInt64(TimerWheel.sweepThreshold) {
            // Idle, with a wheel big enough to sweep: a moment to drop the entries of cancelled
            // sleeps (TimerWheel.swift). (`timersPending` is this wheel's size, stored under
            // its lock; a stale value only moves the sweep to a later park.)
            let now = monotonicNanos()
            timers.withLock { heap in
                heap.sweepIfStale(now: now)
                counters.timersPending.store(UInt64(heap.count), ordering: .relaxed)
            }
        }
        let deadline = min(timerDeadline.load(ordering: .relaxed), shared.remoteTimerDeadline)
        reapRing(parkingUntil: deadline)
        if shared.idle.workerDidUnpark(index) {
            owner.pointee.isSearching = true  // woken on purpose: the waker counted us as searching
        }
        if timerDeadline.load(ordering: .relaxed) != .max { fireDueTimers(now: monotonicNanos()) }
        shared.fireRemoteTimers(on: self)
    }
}
