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
// become `SpindleError.ioUringUnavailable` with a diagnosis (IOUringProbe.swift).

internal import CSpindle
internal import CURing
import Glibc

extension Ring {
    /// The operations Spindle submits, by name.
    static let requiredOperations: [(io_uring_op, String)] = [
        (IORING_OP_READ, "READ"), (IORING_OP_WRITE, "WRITE"), (IORING_OP_RECV, "RECV"),
        (IORING_OP_SEND, "SEND"), (IORING_OP_SENDMSG, "SENDMSG"), (IORING_OP_RECVMSG, "RECVMSG"),
        (IORING_OP_ACCEPT, "ACCEPT"), (IORING_OP_CONNECT, "CONNECT"), (IORING_OP_OPENAT, "OPENAT"),
        (IORING_OP_FSYNC, "FSYNC"), (IORING_OP_ASYNC_CANCEL, "ASYNC_CANCEL"),
    ]

    /// Asks the kernel which operations it supports (once per ring, at set-up) and returns
    /// the first one Spindle needs that it lacks. A kernel that cannot be probed is trusted.
    static func missingOperation(_ ring: UnsafeMutablePointer<io_uring>) -> String? {
        guard let probe = io_uring_get_probe_ring(ring) else { return nil }
        defer { io_uring_free_probe(probe) }
        for (operation, name) in requiredOperations
        where io_uring_opcode_supported(probe, Int32(operation.rawValue)) == 0 {
            return name
        }
        return nil
    }

    static func diagnose(errno code: Int32) -> SpindleError {
        IOUringProbe.diagnose(
            errno: code, disabled: IOUringProbe.disabledSetting(), lockedMemory: IOUringProbe.lockedMemoryLimit())
    }

    /// Sets `ring` up with the first flags the kernel accepts (see the file comment), checks
    /// that it supports every operation Spindle submits, and returns the flags. On failure the
    /// ring is left torn down (but not deallocated) and the error says why.
    static func setUp(_ ring: UnsafeMutablePointer<io_uring>, adoptable: Bool) throws(SpindleError) -> UInt32 {
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
        guard let flags = accepted else { throw Self.diagnose(errno: lastError) }
        if let missing = Self.missingOperation(ring) {
            io_uring_queue_exit(ring)
            throw SpindleError.ioUringUnavailable(
                errno: EOPNOTSUPP,
                reason: "the kernel's io_uring lacks \(missing) (Spindle needs Linux 5.19 or later)")
        }
        return flags
    }
}
