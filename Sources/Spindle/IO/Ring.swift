// One io_uring per thread that runs jobs (each worker, each event loop). A thread with nothing
// to run parks *in its ring*: `io_uring_submit_and_wait_timeout` returns on any completion, on
// the next timer deadline, or when another thread writes the ring's wake eventfd (a READ on the
// eventfd is kept armed while parked). So I/O completions, timers and cross-thread wake-ups all
// end a park through one system call.
//
// Set-up asks for SINGLE_ISSUER | DEFER_TASKRUN (completions are processed only when this thread
// enters the kernel, which is exactly when it parks or reaps) and falls back flag by flag on
// EINVAL for older kernels. The completion queue is twice the submission queue. EPERM/ENOSYS
// (io_uring disabled by sysctl or a seccomp profile) and ENOMEM (locked-memory limit on old
// kernels) become `SpindleError.ioUringUnavailable` with a diagnosis.
//
// A ring must be created and used on the thread that owns it (SINGLE_ISSUER); only `wake()` may
// be called from other threads. The owner closes the ring when its thread stops; a `wake()`
// racing with that is serialised by `wakeLock`, so it can never write to a descriptor number
// the process has since reused for something else.

import CSpindle
import CURing
import Glibc

final class Ring: @unchecked Sendable {
    // @unchecked Sendable: every member except `wakeFD` is touched only by the owning thread;
    // `wake()` writes the eventfd, which the kernel makes safe from any thread.

    static let entries: UInt32 = 256
    /// user_data of the eventfd READ that ends a park when another thread wakes us.
    private static let wakeTag: UInt64 = .max

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

    /// Creates a ring on the calling thread, which becomes its only issuer.
    init() throws(SpindleError) {
        let ring = UnsafeMutablePointer<io_uring>.allocate(capacity: 1)
        ring.initialize(to: io_uring())
        let attempts: [UInt32] = [
            IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
            IORING_SETUP_COOP_TASKRUN,
            0,
        ]
        var lastError: Int32 = 0
        var accepted: UInt32? = nil
        for flags in attempts {
            var params = io_uring_params()
            params.flags = flags | IORING_SETUP_CQSIZE
            params.cq_entries = Self.entries * 2
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
        let fd = eventfd(0, Int32(EFD_CLOEXEC | EFD_NONBLOCK))
        if fd < 0 {
            let code = errno
            io_uring_queue_exit(ring)
            ring.deallocate()
            throw SpindleError.systemCallFailed(call: "eventfd", errno: code)
        }
        self.ring = ring
        self.setupFlags = flags
        self.wakeFD = fd
        wakeBuffer = .allocate(capacity: 1)
        wakeBuffer.initialize(to: 0)
        timeout = .allocate(capacity: 1)
        timeout.initialize(to: __kernel_timespec())
    }

    /// Owner only, once, when the owning thread stops: closes the ring and the eventfd.
    /// Tearing the ring down cancels and waits out its in-flight requests, so the wake buffer
    /// is no longer the kernel's once io_uring_queue_exit returns.
    func close() {
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
        close()
        ring.deallocate()
        wakeBuffer.deallocate()
        timeout.deallocate()
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

    /// Any thread: ends the owner's current or next park. The eventfd counter is sticky, so a
    /// wake sent just before the owner parks is not lost: the READ completes at once.
    func wake() {
        wakeLock.withLock { isClosed in
            if isClosed { return }
            var one: UInt64 = 1
            _ = write(wakeFD, &one, 8)
        }
    }

    /// Owner only. Sleeps until a completion, a wake, or `deadline` (CLOCK_MONOTONIC
    /// nanoseconds; `.max` for none), then reaps what completed.
    func park(deadline: UInt64) {
        if !wakeArmed, let sqe = io_uring_get_sqe(ring) {
            io_uring_prep_read(sqe, wakeFD, wakeBuffer, 8, 0)
            io_uring_sqe_set_data64(sqe, Self.wakeTag)
            wakeArmed = true
        }
        var cqe: UnsafeMutablePointer<io_uring_cqe>? = nil
        if deadline == .max {
            _ = io_uring_submit_and_wait_timeout(ring, &cqe, 1, nil, nil)
        } else {
            let now = monotonicNanos()
            let wait = deadline > now ? deadline - now : 0
            timeout.pointee = __kernel_timespec(
                tv_sec: Int64(wait / 1_000_000_000), tv_nsec: Int64(wait % 1_000_000_000))
            _ = io_uring_submit_and_wait_timeout(ring, &cqe, 1, timeout, nil)
        }
        reap()
    }

    /// Owner only. Processes completions without waiting. liburing's peek enters the kernel
    /// only when the ring says deferred task work or a CQ overflow is pending, so a busy worker
    /// pays no system call here when nothing completed.
    func reapNonBlocking() {
        reap()
    }

    private func reap() {
        var cqe: UnsafeMutablePointer<io_uring_cqe>? = nil
        while io_uring_peek_cqe(ring, &cqe) == 0, let entry = cqe {
            if entry.pointee.user_data == Self.wakeTag {
                wakeArmed = false
            }
            io_uring_cqe_seen(ring, entry)
        }
    }
}
