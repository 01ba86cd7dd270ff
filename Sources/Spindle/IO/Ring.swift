// One io_uring per thread that runs jobs (each worker, each event loop). A thread with nothing
// to run parks *in its ring*: `io_uring_submit_and_wait_timeout` returns on any completion, on
// the next timer deadline, or when another thread writes the ring's wake eventfd (a READ on the
// eventfd is kept armed while parked). So I/O completions, timers and cross-thread wake-ups all
// end a park through one system call.
//
// Set-up asks for SINGLE_ISSUER | DEFER_TASKRUN (completions are processed only when this thread
// enters the kernel, which is exactly when it parks or reaps) and falls back flag by flag on
// EINVAL for older kernels. The completion queue is four times the submission queue, and a CQ
// overflow loses nothing: the kernel keeps overflowed completions in a backlog (FEAT_NODROP)
// and liburing's peek flushes it when the ring flags it. EPERM/ENOSYS (io_uring disabled by
// sysctl or a seccomp profile) and ENOMEM (locked-memory limit on old kernels) become
// `SpindleError.ioUringUnavailable` with a diagnosis.
//
// Operations. Every request's user_data is a slot of the ring's `OperationTable` (index plus
// generation), never a pointer: a completion for a slot that has since been reused (a stale
// cancel) finds a different generation and is ignored. A one-shot slot holds the suspended
// task's continuation, resumed on this thread when the completion is reaped; a multishot slot
// holds a sink that takes every completion until one arrives without IORING_CQE_F_MORE.
// SQEs are only prepared here and submitted in batches: by `flush()` (the owner calls it once
// per loop turn and before it searches for work), or by the park. A full SQ is submitted and
// the preparation retried, so it never becomes the user's error.
//
// A ring must be created and used on the thread that owns it (SINGLE_ISSUER). Other threads may
// only `wake()` it and `requestCancel(_:)` one of its operations (a Swift task is cancelled from
// whichever thread cancels it); the request waits in a locked inbox that the owner drains on
// its next flush, and the wake makes that prompt. The owner closes the ring when its thread
// stops, after cancelling what is in flight and waiting for those completions (the kernel owns
// each operation's buffer until then); a `wake()` racing with that is serialised by `wakeLock`,
// so it can never write to a descriptor number the process has since reused.

import CSpindle
import CURing
import Glibc
import Synchronization

final class Ring: @unchecked Sendable {
    // @unchecked Sendable: every member except `wakeFD`/`wakeLock` and the cancel inbox is
    // touched only by the owning thread; `wake()` writes the eventfd under `wakeLock`, and the
    // inbox is a Lock plus an atomic hint.

    static let entries: UInt32 = 1024
    /// user_data of the eventfd READ that ends a park when another thread wakes us.
    static let wakeTag: UInt64 = .max
    /// user_data of requests whose completion nobody waits for (cancels).
    static let ignoredTag: UInt64 = .max - 1

    private let ring: UnsafeMutablePointer<io_uring>
    private let wakeFD: Int32
    /// Guards `isClosed` and the use of `wakeFD` by other threads.
    private let wakeLock = Lock(false)
    /// The 8-byte target of the eventfd READ. The kernel owns it while the READ is in flight,
    /// so it lives as long as the ring and is freed only after the ring is torn down.
    private let wakeBuffer: UnsafeMutablePointer<UInt64>
    private var wakeArmed = false
    private let timeout: UnsafeMutablePointer<__kernel_timespec>
    /// The set-up flags the kernel accepted (for diagnostics and tests).
    let setupFlags: UInt32
    /// Owner only: the operations in flight.
    var table = OperationTable()
    /// Owner only: SQEs prepared since the last submission.
    private var unsubmitted = 0
    /// Cancel requests from other threads (user_data values), drained by the owner.
    private let cancelInbox = Lock<[(userData: UInt64, release: Bool)]>([])
    /// Whether `cancelInbox` may hold requests. Release on set (after the append, inside the
    /// lock) and acquire on the owner's check: a seen flag implies the owner's lock acquisition
    /// sees the request; a missed flag is seen on the next flush (the requester also wakes us).
    private let hasCancelRequests = Atomic<Bool>(false)
    /// The owner's counters (SQEs submitted, CQEs reaped): single-writer, see Metrics.swift.
    private let counters: WorkerCounters
    private var isOpen = true

    /// Creates a ring on the calling thread, which becomes its only issuer; it counts its
    /// submissions and completions in `counters`.
    init(counters: WorkerCounters) throws(SpindleError) {
        let ring = UnsafeMutablePointer<io_uring>.allocate(capacity: 1)
        ring.initialize(to: io_uring())
        // TASKRUN_FLAG makes the kernel raise IORING_SQ_TASKRUN while completions wait as
        // deferred work. Without it nothing tells a busy thread that they exist, and they were
        // processed only when it parked: a CPU-bound event loop served some connections 100+ ms
        // late (W8 p99 176 ms against 1 ms).
        let attempts: [UInt32] = [
            IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_TASKRUN_FLAG,
            IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
            IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG,
            IORING_SETUP_COOP_TASKRUN,
            0,
        ]
        var lastError: Int32 = 0
        var accepted: UInt32? = nil
        for flags in attempts {
            var params = io_uring_params()
            params.flags = flags | IORING_SETUP_CQSIZE
            params.cq_entries = Self.entries * 4
            let result = io_uring_queue_init_params(Self.entries, ring, &params)
            if result == 0 {
                accepted = flags
                break
            }
            lastError = -result
            if lastError != EINVAL { break }
        }
        guard let flags = accepted else {
            ring.deallocate()
            throw Self.diagnose(errno: lastError)
        }
        if let missing = Self.missingOperation(ring) {
            io_uring_queue_exit(ring)
            ring.deallocate()
            throw SpindleError.ioUringUnavailable(
                errno: EOPNOTSUPP,
                reason: "the kernel's io_uring lacks \(missing) (Spindle needs Linux 5.19 or later)")
        }
        let fd = eventfd(0, Int32(EFD_CLOEXEC | EFD_NONBLOCK))
        if fd < 0 {
            let code = errno
            io_uring_queue_exit(ring)
            ring.deallocate()
            throw SpindleError.systemCallFailed(call: "eventfd", errno: code)
        }
        self.ring = ring
        self.counters = counters
        self.setupFlags = flags
        self.wakeFD = fd
        wakeBuffer = .allocate(capacity: 1)
        wakeBuffer.initialize(to: 0)
        timeout = .allocate(capacity: 1)
        timeout.initialize(to: __kernel_timespec())
    }

    /// The ring of the thread that is running the caller (a worker or an event loop), or nil.
    static var current: Ring? {
        guard let raw = spindle_current_ring() else { return nil }
        return Unmanaged<Ring>.fromOpaque(raw).takeUnretainedValue()
    }

    /// Owner only: makes this ring the calling thread's (`nil` clears it).
    static func setCurrent(_ ring: Ring?) {
        spindle_set_current_ring(ring.map { Unmanaged.passUnretained($0).toOpaque() })
    }

    /// Owner only, once, when the owning thread stops: cancels what is in flight, waits (up to
    /// `drainTimeout`) for those completions so no buffer is still the kernel's, then closes the
    /// ring and the eventfd. An operation that will not complete in time (a file read stuck in
    /// the kernel) keeps its task suspended for good: resuming it would free memory the kernel
    /// may still write.
    func close(drainTimeout: UInt64 = 2_000_000_000) {
        guard isOpen else { return }
        isOpen = false
        drainInFlight(timeout: drainTimeout)
        let wasOpen = wakeLock.withLock { isClosed -> Bool in
            if isClosed { return false }
            isClosed = true
            Glibc.close(wakeFD)
            return true
        }
        guard wasOpen else { return }
        io_uring_queue_exit(ring)
    }

    deinit {
        if isOpen { close() }
        ring.deallocate()
        wakeBuffer.deallocate()
        timeout.deallocate()
    }

    /// The operations Spindle submits, by name.
    private static let requiredOperations: [(io_uring_op, String)] = [
        (IORING_OP_READ, "READ"), (IORING_OP_WRITE, "WRITE"), (IORING_OP_RECV, "RECV"),
        (IORING_OP_SEND, "SEND"), (IORING_OP_SENDMSG, "SENDMSG"), (IORING_OP_RECVMSG, "RECVMSG"),
        (IORING_OP_ACCEPT, "ACCEPT"), (IORING_OP_CONNECT, "CONNECT"), (IORING_OP_OPENAT, "OPENAT"),
        (IORING_OP_FSYNC, "FSYNC"), (IORING_OP_ASYNC_CANCEL, "ASYNC_CANCEL"),
    ]

    /// Asks the kernel which operations it supports (once per ring, at set-up) and returns
    /// the first one Spindle needs that it lacks. A kernel that cannot be probed is trusted.
    private static func missingOperation(_ ring: UnsafeMutablePointer<io_uring>) -> String? {
        guard let probe = io_uring_get_probe_ring(ring) else { return nil }
        defer { io_uring_free_probe(probe) }
        for (operation, name) in requiredOperations
        where io_uring_opcode_supported(probe, Int32(operation.rawValue)) == 0 {
            return name
        }
        return nil
    }

    static func diagnose(errno code: Int32) -> SpindleError {
        switch code {
        case EPERM:
            return .ioUringUnavailable(errno: code, reason: "the kernel or a seccomp profile forbids io_uring; check `sysctl kernel.io_uring_disabled` (must be 0, or 1 with CAP_SYS_ADMIN) and the container's seccomp policy")
        case ENOSYS:
            return .ioUringUnavailable(errno: code, reason: "this kernel has no io_uring (needs Linux 5.19 or later), or a seccomp filter hides the system call")
        case ENOMEM:
            return .ioUringUnavailable(errno: code, reason: "not enough locked memory for the ring; raise `ulimit -l` (kernels before 5.12 account rings against RLIMIT_MEMLOCK)")
        default:
            return .ioUringUnavailable(errno: code, reason: "io_uring_setup failed")
        }
    }

    // MARK: Waking and cancelling from other threads

    /// Any thread: ends the owner's current or next park. The eventfd counter is sticky, so a
    /// wake sent just before the owner parks is not lost: the READ completes at once.
    func wake() {
        wakeLock.withLock { isClosed in
            if isClosed { return }
            var one: UInt64 = 1
            _ = write(wakeFD, &one, 8)
        }
    }

    /// Any thread: asks the owner to cancel the operation `userData` (a no-op if it has
    /// completed or its slot was reused meanwhile: the generation will not match).
    /// Always through the inbox, even on the owner's thread: a task cancelled before it
    /// submits runs its cancellation handler there before the SQE exists, and the inbox is
    /// drained only between jobs, after the submitting job has attached the request.
    func requestCancel(_ userData: UInt64) {
        post(userData, release: false)
    }

    /// Any thread: frees a slot that was reserved on this ring but never submitted.
    func requestRelease(_ userData: UInt64) {
        post(userData, release: true)
    }

    private func post(_ userData: UInt64, release: Bool) {
        cancelInbox.withLock { requests in
            requests.append((userData, release))
            hasCancelRequests.store(true, ordering: .releasing)
        }
        if spindle_current_ring() != Unmanaged.passUnretained(self).toOpaque() { wake() }
    }

    /// Owner only: submits an ASYNC_CANCEL for `userData` if it is still in flight.
    private func cancelNow(_ userData: UInt64) {
        guard table.isInFlight(userData) else { return }
        let sqe = nextSQE()
        io_uring_prep_cancel64(sqe, userData, 0)
        io_uring_sqe_set_data64(sqe, Self.ignoredTag)
    }

    private func drainCancelRequests() {
        // Acquire: pairs with the release in `requestCancel`.
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

    // MARK: Submitting (owner only)

    /// A submission queue entry to fill. A full SQ is submitted first, so this never fails
    /// while the ring is open.
    func nextSQE() -> UnsafeMutablePointer<io_uring_sqe> {
        while true {
            if let sqe = io_uring_get_sqe(ring) {
                unsubmitted += 1
                return sqe
            }
            // The SQ is full: hand it to the kernel. EBUSY means the CQ backlog is full; reap
            // (which flushes the backlog) and try again.
            if submitNow() < 0 { reapAvailable() }
        }
    }

    @discardableResult
    private func submitNow() -> Int32 {
        let result = io_uring_submit(ring)
        if result > 0 {
            counters.sqesSubmitted.bump(by: UInt64(result))
            unsubmitted = max(0, unsubmitted - Int(result))
        }
        return result
    }

    /// Owner only: takes the cancel inbox, submits what was prepared, and reaps what completed,
    /// without waiting. Cheap when nothing is pending: no system call unless there are SQEs to
    /// submit or the ring flags deferred work.
    func flush() {
        drainCancelRequests()
        if unsubmitted > 0 { submitNow() }
        reapAvailable()
        // Deferred completions run only when this thread enters the kernel to get events;
        // a busy thread that never parks must ask (a few rounds at most per flush).
        var rounds = 0
        while hasDeferredWork && rounds < 4 {
            _ = io_uring_get_events(ring)
            reapAvailable()
            rounds += 1
        }
    }

    /// Owner only. Sleeps until a completion, a wake, or `deadline` (CLOCK_MONOTONIC
    /// nanoseconds; `.max` for none), submitting what was prepared, then reaps what completed.
    func park(deadline: UInt64) {
        drainCancelRequests()
        if !wakeArmed {
            let sqe = nextSQE()
            io_uring_prep_read(sqe, wakeFD, wakeBuffer, 8, 0)
            io_uring_sqe_set_data64(sqe, Self.wakeTag)
            wakeArmed = true
        }
        var cqe: UnsafeMutablePointer<io_uring_cqe>? = nil
        let pending = UInt64(unsubmitted)
        publishInFlight()  // the wait below submits them
        let result: Int32
        if deadline == .max {
            result = io_uring_submit_and_wait_timeout(ring, &cqe, 1, nil, nil)
        } else {
            let now = monotonicNanos()
            let wait = deadline > now ? deadline - now : 0
            timeout.pointee = __kernel_timespec(
                tv_sec: Int64(wait / 1_000_000_000), tv_nsec: Int64(wait % 1_000_000_000))
            result = io_uring_submit_and_wait_timeout(ring, &cqe, 1, timeout, nil)
        }
        // liburing submits everything prepared before it waits (its result is the wait's).
        if result >= 0 || result == -ETIME || result == -EINTR {
            counters.sqesSubmitted.bump(by: pending)
            unsubmitted = 0
        }
        reapAvailable()
    }

    /// Dispatches every available completion. liburing's peek enters the kernel only when the
    /// ring says deferred task work or a CQ overflow is pending, so this costs no system call
    /// when nothing completed.
    private func reapAvailable() {
        var cqe: UnsafeMutablePointer<io_uring_cqe>? = nil
        var count: UInt64 = 0
        while io_uring_peek_cqe(ring, &cqe) == 0, let entry = cqe {
            let userData = entry.pointee.user_data
            let result = entry.pointee.res
            let flags = entry.pointee.flags
            io_uring_cqe_seen(ring, entry)
            count += 1
            switch userData {
            case Self.wakeTag: wakeArmed = false
            case Self.ignoredTag: break
            default: table.complete(userData, result: result, flags: flags)
            }
        }
        if count > 0 { counters.cqesReaped.bump(by: count) }
        publishInFlight()
    }

    /// Owner only: stores the number of operations in flight in the counters (a gauge other
    /// threads read, e.g. a test waiting until a request has really been handed to the kernel).
    /// Called after every submission and reap, so what it counts has been submitted.
    @inline(__always)
    private func publishInFlight() {
        counters.operationsInFlight.store(UInt64(table.inFlightCount), ordering: .relaxed)
    }

    /// Owner only: whether the kernel flags completions waiting as deferred work.
    private var hasDeferredWork: Bool { spindle_ring_has_deferred_work(ring) != 0 }

    /// Owner only: cancels every operation in flight and reaps until they have all completed
    /// or `timeout` nanoseconds have passed.
    private func drainInFlight(timeout nanos: UInt64) {
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
