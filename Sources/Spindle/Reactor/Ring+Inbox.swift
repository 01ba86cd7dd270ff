// Other threads may `wake()` the ring and `requestCancel(_:)` one of its operations (a Swift
// task is cancelled from whichever thread cancels it): the request waits in a locked inbox
// that the token's next holder drains; the wake makes that prompt, and also rings the watch's
// doorbell while the watch has adopted the ring (Ring+Adoption.swift).

internal import CSpindle
internal import CURing
import Glibc
import Synchronization

extension Ring {
    /// Any thread: ends the owner's current or next park. The eventfd counter is sticky, so a
    /// wake sent just before the owner parks is not lost: the READ completes at once. While the
    /// watch has adopted the ring, the wake also rings the watch's doorbell, so that it takes
    /// the cancel inbox at once.
    func wake() {
        wakeLock.withLock { state in
            if state.isClosed { return }
            var one: UInt64 = 1
            _ = write(wakeFD, &one, 8)
            if state.doorbell >= 0 { _ = write(state.doorbell, &one, 8) }
        }
    }

    /// Any thread: asks the token holder to cancel the operation `userData` (a no-op if it has
    /// completed or its slot was reused meanwhile: the generation will not match; a request
    /// reserved and not yet attached is refused at its attach, see OperationTable.swift).
    /// Always through the inbox, even on the owner's thread: a task cancelled before it
    /// submits runs its cancellation handler there before the SQE exists.
    func requestCancel(_ userData: UInt64) {
        post(userData, release: false)
    }

    /// Any thread: frees a slot that was reserved on this ring but never submitted.
    func requestRelease(_ userData: UInt64) {
        post(userData, release: true)
    }

    func post(_ userData: UInt64, release: Bool) {
        cancelInbox.withLock { requests in
            requests.append((userData, release))
            hasCancelRequests.store(true, ordering: .releasing)
        }
        if spindle_current_ring() != Unmanaged.passUnretained(self).toOpaque() { wake() }
    }

    /// Token holder: submits an ASYNC_CANCEL for `userData` if it is in flight.
    func cancelNow(_ userData: UInt64) {
        guard table.noteCancel(userData) else { return }
        let sqe = nextSQE()
        io_uring_prep_cancel64(sqe, userData, 0)
        io_uring_sqe_set_data64(sqe, Self.ignoredTag)
    }

    /// Token holder.
    func drainCancelRequests() {
        // Acquire: pairs with the release in `post`.
        guard hasCancelRequests.load(ordering: .acquiring) else { return }
        let requests = cancelInbox.withLock { requests -> [(userData: UInt64, release: Bool)] in
            hasCancelRequests.store(false, ordering: .relaxed)  // inside the lock: no request is missed
            defer { requests.removeAll(keepingCapacity: true) }
            return requests
        }
        for request in requests {
            if request.release {
                table.release(request.userData)
            } else {
                cancelNow(request.userData)
            }
        }
    }
}
