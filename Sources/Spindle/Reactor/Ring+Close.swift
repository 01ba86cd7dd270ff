// Closing. The owner closes the ring when its thread stops, after the watch has stopped
// (Runtime stops the watch before the workers, and an adopter finds a closed ring refuses it
// anyway), cancelling what is in flight and waiting for those completions (the kernel owns
// each operation's buffer until then); a `wake()` racing with that is serialised by
// `wakeLock`, so it never writes to a descriptor number the process has since reused.

internal import CSpindle
internal import CURing
import Glibc

extension Ring {
    /// Owner only, once, when the owning thread stops: cancels what is in flight, waits (up to
    /// `drainTimeout`) for those completions so no buffer is still the kernel's, then closes the
    /// ring and the eventfd. An operation that will not complete in time (a file read stuck in
    /// the kernel) keeps its task suspended for good: resuming it would free memory the kernel
    /// may still write.
    func close(drainTimeout: UInt64 = Ring.closeDrainNanoseconds) {
        acquireToken()
        defer { releaseToken() }
        guard isOpen else { return }
        isOpen = false
        drainInFlight(timeout: drainTimeout)
        let wasOpen = wakeLock.withLock { state -> Bool in
            if state.isClosed { return false }
            state.isClosed = true
            Glibc.close(wakeFD)
            return true
        }
        guard wasOpen else { return }
        io_uring_queue_exit(ring)
    }

    /// Token holder (the owner, closing): cancels every operation in flight and reaps until
    /// they have all completed or `timeout` nanoseconds have passed.
    func drainInFlight(timeout nanos: UInt64) {
        drainCancelRequests()
        if table.inFlightCount == 0 { return }
        let sqe = nextSQE()
        io_uring_prep_cancel64(sqe, 0, Int32(bitPattern: spindle_cancel_flag_any()))
        io_uring_sqe_set_data64(sqe, Self.ignoredTag)
        let deadline = monotonicNanos() &+ nanos
        while table.inFlightCount > 0 {
            let now = monotonicNanos()
            if now >= deadline { break }
            var cqe: UnsafeMutablePointer<io_uring_cqe>? = nil
            let wait = min(deadline - now, 10_000_000)
            timeout.pointee = __kernel_timespec(tv_sec: 0, tv_nsec: Int64(wait))
            _ = io_uring_submit_and_wait_timeout(ring, &cqe, 1, timeout, nil)
            unsubmitted = 0
            reapAvailable()
        }
    }
}
