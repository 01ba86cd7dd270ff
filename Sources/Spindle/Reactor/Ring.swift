// One io_uring per thread that runs jobs (each worker, each event loop). A thread with nothing
// to run parks *in its ring*: `io_uring_submit_and_wait_timeout` returns on any completion, on
// the next timer deadline, or when another thread writes the ring's wake eventfd (a READ on the
// eventfd is kept armed while parked). So I/O completions, timers and cross-thread wake-ups all
// end a park through one system call.
//
// The ring is split by concern: Ring+Setup.swift (the set-up flags and the kernel probe),
// Ring+Token.swift (who may touch the ring's user-space state), Ring+Inbox.swift (waking and
// cancelling from other threads), Ring+Adoption.swift (the blocked-worker watch reaping a
// stuck owner's ring), Ring+Close.swift (closing with operations in flight).
//
//
// Operations. Every request's user_data is a slot of the ring's `OperationTable` (index plus
// generation), never a pointer: a completion for a slot that has since been reused (a stale
// cancel) finds a different generation and is ignored. A one-shot slot holds the suspended
// task's continuation, resumed when the completion is reaped; a multishot slot holds a sink
// that takes every completion until one arrives without IORING_CQE_F_MORE. SQEs are only
// prepared here and submitted in batches: by `flush()` (the owner calls it once per loop turn
// and before it searches for work), or by the park. A full SQ is submitted and the preparation
// retried, so it never becomes the user's error.

internal import CSpindle
internal import CURing
import Glibc
import Synchronization

final class Ring: @unchecked Sendable {
    // @unchecked Sendable: the members marked "token holder" are touched only by the thread that
    // holds `token` (acquire on taking, release on giving back); `wakeFD` is used by other
    // threads only under `wakeLock`; the inbox is a Lock plus an atomic hint; the rest is
    // immutable after init.

    static let entries: UInt32 = 1024
    /// user_data of the eventfd READ that ends a park when another thread wakes us.
    static let wakeTag: UInt64 = .max
    /// user_data of requests whose completion nobody waits for (cancels).
    static let ignoredTag: UInt64 = .max - 1
    /// How long `close` waits for the completions of what it cancelled.
    static let closeDrainNanoseconds: UInt64 = 2_000_000_000

    let ring: UnsafeMutablePointer<io_uring>
    /// The ring's own descriptor (polls readable while completions wait in the CQ).
    let descriptor: Int32
    let wakeFD: Int32
    /// Guards the use of `wakeFD` and of the watch's doorbell by other threads.
    let wakeLock = Lock(WakeState())
    struct WakeState {
        var isClosed = false
        /// The blocked-worker watch's eventfd while it has adopted this ring, else -1.
        var doorbell: Int32 = -1
    }
    /// The 8-byte target of the eventfd READ. The kernel owns it while the READ is in flight,
    /// so it lives as long as the ring and is freed only after the ring is torn down.
    let wakeBuffer: UnsafeMutablePointer<UInt64>
    let timeout: UnsafeMutablePointer<__kernel_timespec>
    /// The set-up flags the kernel accepted (for diagnostics and tests).
    let setupFlags: UInt32
    /// Whether other threads may reap this ring (see the file comment): set-up without
    /// SINGLE_ISSUER or DEFER_TASKRUN.
    let isAdoptable: Bool

    /// The ring's token (see the file comment): true while some thread holds the ring.
    let token = Atomic<Bool>(false)
    /// Token holder: the operations in flight.
    var table = OperationTable()
    /// Token holder: SQEs prepared since the last submission.
    var unsubmitted = 0
    /// Token holder: whether the eventfd READ is in flight.
    var wakeArmed = false
    /// Token holder: false once `close` has begun.
    var isOpen = true
    /// Cancel requests from other threads (user_data values), drained by the token holder.
    let cancelInbox = Lock<[(userData: UInt64, release: Bool)]>([])
    /// Whether `cancelInbox` may hold requests. Release on set (after the append, inside the
    /// lock) and acquire on the drainer's check: a seen flag implies the drainer's lock
    /// acquisition sees the request; a missed flag is seen on the next drain (the requester
    /// also wakes the ring, and with it the watch when it has adopted the ring).
    let hasCancelRequests = Atomic<Bool>(false)
    /// SQEs submitted, CQEs reaped, operations in flight: written by the token holder only
    /// (so by one thread at a time, in token order), see RingCounters.swift.
    let counters: RingCounters

    /// Creates a ring on the calling thread, its owner, which counts its submissions and
    /// completions in `counters`. `adoptable` asks for a ring that other threads may reap
    /// (see the file comment); the default is an owner-only ring.
    init(counters: RingCounters = RingCounters(), adoptable: Bool = false) throws(SpindleError) {
        let ring = UnsafeMutablePointer<io_uring>.allocate(capacity: 1)
        ring.initialize(to: io_uring())
        let flags: UInt32
        do throws(SpindleError) {
            flags = try Self.setUp(ring, adoptable: adoptable)
        } catch {
            ring.deallocate()
            throw error
        }
        let fd = eventfd(0, Int32(EFD_CLOEXEC | EFD_NONBLOCK))
        if fd < 0 {
            let code = errno
            io_uring_queue_exit(ring)
            ring.deallocate()
            throw SpindleError.systemCallFailed(call: "eventfd", errno: code)
        }
        self.ring = ring
        self.descriptor = ring.pointee.ring_fd
        self.counters = counters
        self.setupFlags = flags
        self.isAdoptable = flags & (IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN) == 0
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

    deinit {
        if isOpen { close() }
        ring.deallocate()
        wakeBuffer.deallocate()
        timeout.deallocate()
    }

    // MARK: The token

    // MARK: Waking and cancelling from other threads

    // MARK: Submitting (owner only)

    /// Owner only: reserves a slot for a request and returns its user_data (to cancel it, or to
    /// pass to `submit`).
    func reserve() -> UInt64 {
        acquireToken()
        defer { releaseToken() }
        return table.reserve()
    }

    /// Owner only: prepares the request of the reserved slot `userData` for the next batch:
    /// `prepare` fills its SQE (its user_data is set afterwards), and `waiter` resumes with its
    /// completion. If a cancel for the slot was drained first, nothing is submitted and `waiter`
    /// resumes at once with -ECANCELED.
    func submit(
        _ userData: UInt64, waiter: UnsafeContinuation<IOCompletion, Never>,
        _ prepare: (UnsafeMutablePointer<io_uring_sqe>) -> Void
    ) {
        acquireToken()
        guard table.attach(userData, waiter: waiter) else {
            releaseToken()
            waiter.resume(returning: IOCompletion(result: -ECANCELED, flags: 0))
            return
        }
        let sqe = nextSQE()
        prepare(sqe)
        io_uring_sqe_set_data64(sqe, userData)
        releaseToken()
    }

    /// Owner only: prepares a multishot request feeding `sink` for the next batch and returns
    /// its user_data. (Multishot requests are never cancelled through the inbox.)
    func startMultishot(
        sink: any CompletionSink, _ prepare: (UnsafeMutablePointer<io_uring_sqe>) -> Void
    ) -> UInt64 {
        acquireToken()
        defer { releaseToken() }
        let userData = table.reserve()
        let sqe = nextSQE()
        prepare(sqe)
        io_uring_sqe_set_data64(sqe, userData)
        table.attach(userData, sink: sink)
        return userData
    }

    /// Owner only, tests: occupies a slot whose request never reaches the kernel, so it never
    /// completes (a stand-in for an operation stuck in the kernel, to test `close`'s drain cap).
    func attachWithoutRequest(sink: any CompletionSink) {
        acquireToken()
        defer { releaseToken() }
        table.attach(table.reserve(), sink: sink)
    }

    /// Any thread: the operations in flight as of the ring's last submission or reap (each one
    /// counted has been handed to the kernel). The park's eventfd read and cancels are not
    /// counted.
    var inFlightCount: Int { Int(counters.operationsInFlight.load(ordering: .relaxed)) }

    /// Token holder: publishes the table's in-flight count (`inFlightCount`).
    @inline(__always)
    func publishInFlight() {
        counters.operationsInFlight.store(UInt64(table.inFlightCount), ordering: .relaxed)
    }

    /// Token holder: a submission queue entry to fill. A full SQ is submitted first, so this
    /// never fails while the ring is open.
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

    /// Token holder.
    @discardableResult
    func submitNow() -> Int32 {
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
        acquireToken()
        defer { releaseToken() }
        drainCancelRequests()
        if unsubmitted > 0 {
            submitNow()
            publishInFlight()
        }
        reapAvailable()
        // Completion work runs only when this thread enters the kernel (for an owner-only
        // ring: to get events); a busy thread that never parks must ask (a few rounds at most
        // per flush).
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
        acquireToken()
        defer { releaseToken() }
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

    /// Token holder: dispatches every available completion and returns how many there were.
    /// liburing's peek enters the kernel only when the ring says deferred task work or a CQ
    /// overflow is pending, so this costs no system call when nothing completed.
    @discardableResult
    func reapAvailable() -> UInt64 {
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
        if count > 0 {
            counters.cqesReaped.bump(by: count)
            publishInFlight()
        }
        return count
    }

    /// Token holder: whether the kernel flags completions waiting as deferred work.
    var hasDeferredWork: Bool { spindle_ring_has_deferred_work(ring) != 0 }

    // MARK: Adoption (the blocked-worker watch)

}
