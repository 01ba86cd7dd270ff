// One io_uring per thread that runs jobs (each worker, each event loop). A thread with nothing
// to run parks *in its ring*: `io_uring_submit_and_wait_timeout` returns on any completion, on
// the next timer deadline, or when another thread writes the ring's wake eventfd (a READ on the
// eventfd is kept armed while parked). So I/O completions, timers and cross-thread wake-ups all
// end a park through one system call.
//
// Set-up, in two kinds (flags fall back one by one on EINVAL, for older kernels):
// - An *owner-only* ring (an event loop's; a worker's when its runtime has no blocked-worker
//   watch): SINGLE_ISSUER | DEFER_TASKRUN | TASKRUN_FLAG. The kernel finishes requests (copies a
//   receive's bytes, posts the CQE) only when the owner enters it to get events, exactly when it
//   parks or reaps, so completions come in batches. Nobody else can ever reap such a ring.
// - An *adoptable* ring (a worker's when the watch is on): COOP_TASKRUN | TASKRUN_FLAG. The
//   kernel runs a request's completion work on the thread that submitted it at that thread's
//   next entry to or exit from the kernel, also when it has to wake it from an interruptible
//   sleep for that (usleep, a futex, pipe or poll wait: the system call then restarts by
//   itself), and, for a thread computing in user space, at its next timer tick. The CQE then
//   lies in the shared CQ, where any thread may take it. So when a worker is stuck inside one
//   job, the blocked-worker watch can reap its ring (below). Measured on Linux 6.18: a receive
//   completed while its submitter slept in usleep(2 s); with DEFER_TASKRUN the ring's fd polled
//   readable but the CQ stayed empty for the 2 s, with COOP_TASKRUN the CQE was there at once,
//   for a sleeping and for a spinning submitter. Only a thread in uninterruptible sleep (a page
//   fault on a dead disk) still holds its completions back. Not SINGLE_ISSUER either: that flag
//   makes the kernel refuse submissions from other threads (EEXIST), and the watch must submit
//   the cancels of tasks that time out.
// TASKRUN_FLAG makes the kernel raise IORING_SQ_TASKRUN while completion work waits; without it
// nothing told a busy thread, which processed it only when it parked (a CPU-bound event loop
// served some connections 100+ ms late: W8 p99 176 ms against 1 ms). The CQ is four times the
// SQ, and a CQ overflow loses nothing: the kernel keeps overflowed completions in a backlog
// (FEAT_NODROP) and liburing's peek flushes it when the ring flags it. EPERM/ENOSYS (io_uring
// disabled by sysctl or a seccomp profile) and ENOMEM (locked-memory limit on old kernels)
// become `SpindleError.ioUringUnavailable` with a diagnosis.
//
// Operations. Every request's user_data is a slot of the ring's `OperationTable` (index plus
// generation), never a pointer: a completion for a slot that has since been reused (a stale
// cancel) finds a different generation and is ignored. A one-shot slot holds the suspended
// task's continuation, resumed when the completion is reaped; a multishot slot holds a sink
// that takes every completion until one arrives without IORING_CQE_F_MORE. SQEs are only
// prepared here and submitted in batches: by `flush()` (the owner calls it once per loop turn
// and before it searches for work), or by the park. A full SQ is submitted and the preparation
// retried, so it never becomes the user's error.
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
// Other threads may `wake()` the ring and `requestCancel(_:)` one of its operations (a Swift
// task is cancelled from whichever thread cancels it): the request waits in a locked inbox
// that the token's next holder drains; the wake makes that prompt, and also rings the watch's
// doorbell while the watch has adopted the ring. The owner closes the ring when its thread
// stops, after the watch has stopped (Runtime stops the watch before the workers, and an
// adopter finds a closed ring refuses it anyway), cancelling what is in flight and waiting for
// those completions (the kernel owns each operation's buffer until then); a `wake()` racing
// with that is serialised by `wakeLock`, so it never writes to a descriptor number the process
// has since reused.

import CSpindle
import CURing
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

    private let ring: UnsafeMutablePointer<io_uring>
    /// The ring's own descriptor (polls readable while completions wait in the CQ).
    let descriptor: Int32
    private let wakeFD: Int32
    /// Guards the use of `wakeFD` and of the watch's doorbell by other threads.
    private let wakeLock = Lock(WakeState())
    private struct WakeState {
        var isClosed = false
        /// The blocked-worker watch's eventfd while it has adopted this ring, else -1.
        var doorbell: Int32 = -1
    }
    /// The 8-byte target of the eventfd READ. The kernel owns it while the READ is in flight,
    /// so it lives as long as the ring and is freed only after the ring is torn down.
    private let wakeBuffer: UnsafeMutablePointer<UInt64>
    private let timeout: UnsafeMutablePointer<__kernel_timespec>
    /// The set-up flags the kernel accepted (for diagnostics and tests).
    let setupFlags: UInt32
    /// Whether other threads may reap this ring (see the file comment): set-up without
    /// SINGLE_ISSUER or DEFER_TASKRUN.
    let isAdoptable: Bool

    /// The ring's token (see the file comment): true while some thread holds the ring.
    private let token = Atomic<Bool>(false)
    /// Token holder: the operations in flight.
    private var table = OperationTable()
    /// Token holder: SQEs prepared since the last submission.
    private var unsubmitted = 0
    /// Token holder: whether the eventfd READ is in flight.
    private var wakeArmed = false
    /// Token holder: false once `close` has begun.
    private var isOpen = true
    /// Cancel requests from other threads (user_data values), drained by the token holder.
    private let cancelInbox = Lock<[(userData: UInt64, release: Bool)]>([])
    /// Whether `cancelInbox` may hold requests. Release on set (after the append, inside the
    /// lock) and acquire on the drainer's check: a seen flag implies the drainer's lock
    /// acquisition sees the request; a missed flag is seen on the next drain (the requester
    /// also wakes the ring, and with it the watch when it has adopted the ring).
    private let hasCancelRequests = Atomic<Bool>(false)
    /// SQEs submitted, CQEs reaped, operations in flight: written by the token holder only
    /// (so by one thread at a time, in token order), see RingCounters.swift.
    let counters: RingCounters

    /// Creates a ring on the calling thread, its owner, which counts its submissions and
    /// completions in `counters`. `adoptable` asks for a ring that other threads may reap
    /// (see the file comment); the default is an owner-only ring.
    init(counters: RingCounters = RingCounters(), adoptable: Bool = false) throws(SpindleError) {
        let ring = UnsafeMutablePointer<io_uring>.allocate(capacity: 1)
        ring.initialize(to: io_uring())
        let attempts: [UInt32] = adoptable
            ? [
                IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG,
                IORING_SETUP_COOP_TASKRUN,
                0,
            ]
            : [
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

    // MARK: The token

    /// Takes the token, waiting for the other holder (the watch, for one reap batch) if needed.
    @inline(__always)
    private func acquireToken() {
        // Acquire: pairs with the release in `releaseToken`, so the previous holder's writes to
        // the table, to liburing's indices and to the SQEs happen before everything we do.
        if token.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged { return }
        acquireTokenContended()
    }

    private func acquireTokenContended() {
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
    private func tryAcquireToken() -> Bool {
        token.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged
    }

    @inline(__always)
    private func releaseToken() {
        // Release: everything this holder did happens before the next holder's acquire.
        token.store(false, ordering: .releasing)
    }

    // MARK: Waking and cancelling from other threads

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

    private func post(_ userData: UInt64, release: Bool) {
        cancelInbox.withLock { requests in
            requests.append((userData, release))
            hasCancelRequests.store(true, ordering: .releasing)
        }
        if spindle_current_ring() != Unmanaged.passUnretained(self).toOpaque() { wake() }
    }

    /// Token holder: submits an ASYNC_CANCEL for `userData` if it is in flight.
    private func cancelNow(_ userData: UInt64) {
        guard table.noteCancel(userData) else { return }
        let sqe = nextSQE()
        io_uring_prep_cancel64(sqe, userData, 0)
        io_uring_sqe_set_data64(sqe, Self.ignoredTag)
    }

    /// Token holder.
    private func drainCancelRequests() {
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
    private func publishInFlight() {
        counters.operationsInFlight.store(UInt64(table.inFlightCount), ordering: .relaxed)
    }

    /// Token holder: a submission queue entry to fill. A full SQ is submitted first, so this
    /// never fails while the ring is open.
    private func nextSQE() -> UnsafeMutablePointer<io_uring_sqe> {
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
    private func reapAvailable() -> UInt64 {
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
    private var hasDeferredWork: Bool { spindle_ring_has_deferred_work(ring) != 0 }

    /// Token holder (the owner, closing): cancels every operation in flight and reaps until
    /// they have all completed or `timeout` nanoseconds have passed.
    private func drainInFlight(timeout nanos: UInt64) {
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

    // MARK: Adoption (the blocked-worker watch)

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
