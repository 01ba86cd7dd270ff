//
// Who touches the ring. Its user-space state (the SQ and CQ indices and entries, the operation
// table, the counts of what is prepared and in flight, and the counters it bumps) belongs to
// the thread that holds the ring's *token*, one atomic flag:
// - The owner (the thread that created the ring and runs its tasks) takes it around each of its
//   operations: reserve, submit, flush, park, close. It never holds it across a job, only
//   across its own calls (a park included, during which it reaps its completions itself).
//   When it finds the token taken it spins: the other holder keeps it for one reap batch.
// - The blocked-worker watch, while the owner is stuck inside one job, *tries* to take it
//   (`reapAsAdopter`). Holding it, it takes the cancel inbox, submits what is prepared (a stuck
//   job may have been preceded by requests prepared and not yet flushed), and reaps: the tasks
//   it resumes are enqueued from its thread, so the runtime's other workers run them, and their
//   next requests go to those workers' rings. It never waits for the token: failing to get it
//   means the owner is back (or parked), and the owner reaps.
// Taking the token is an acquire and giving it back a release, so each holder sees the table,
// liburing's copies of the indices and the SQEs exactly as the previous holder left them; the
// kernel's side of the shared queues is ordered by liburing's own acquire loads and release
// stores of their heads and tails.

internal import CSpindle
import Glibc
import Synchronization

extension Ring {
    /// Takes the token, waiting for the other holder (the watch, for one reap batch) if needed.
    @inline(__always)
    func acquireToken() {
        // Acquire: pairs with the release in `releaseToken`, so the previous holder's writes to
        // the table, to liburing's indices and to the SQEs happen before everything we do.
        if token.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged { return }
        acquireTokenContended()
    }

    func acquireTokenContended() {
        var spins = 0
        repeat {
            // Plain loads while it is taken; the holder may have been descheduled on a busy
            // machine, so after a while give the CPU away rather than spin.
            while token.load(ordering: .relaxed) {
                spins += 1
                if spins < 100 { spindle_cpu_relax() } else { sched_yield() }
            }
        } while !token.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged
    }

    /// Takes the token only if nobody holds it (acquire, as in `acquireToken`).
    func tryAcquireToken() -> Bool {
        token.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged
    }

    @inline(__always)
    func releaseToken() {
        // Release: everything this holder did happens before the next holder's acquire.
        token.store(false, ordering: .releasing)
    }
}
