// How a task performs one operation on an epoll reactor (Reactor/EpollReactor.swift), the
// counterpart of Submission.swift's io_uring request.
//
// The seam is per operation, not per system call: every socket operation (a stream's read and
// write, connect, accept, a datagram's send and receive, waiting for a signal) asks
// `IOSubmission.epollReactor()` where the calling task's I/O goes. nil means io_uring, and the
// operation prepares its SQE exactly as before; otherwise it calls `ReadinessIO.perform` with
// the non-blocking system call it would have asked io_uring for. Both return the same kind of
// result (a count or a negated errno, -ECANCELED for a cancelled task), so each operation maps
// results to values and typed `SpindleIOError`s with one piece of code for both backends.
//
// 1. A task already cancelled gets -ECANCELED before anything is tried (as on io_uring).
// 2. Read the descriptor's readiness sequence, try the call (MSG_DONTWAIT: the socket itself
//    stays blocking, as io_uring's are, except a listener, which needs O_NONBLOCK for accept4).
//    EINTR is tried again; any result but EAGAIN is returned.
// 3. On EAGAIN, wait for an event after that sequence (ReadinessState.swift explains why no edge
//    is lost). Cancelled while waiting: -ECANCELED, and nothing was consumed, so a cancelled read
//    never loses data (it is still in the socket). Closed while waiting: -EBADF, which callers
//    see after their `descriptor.isClosed` check, as they see a ring's completion after close.
//
// A task on no Spindle thread does not move: its system call runs where it is, and its wait is
// registered with the process I/O loop's reactor (when that loop runs on epoll), whose thread
// resumes it; Swift then runs it on its own executor again.
//
// Files have no readiness (a regular file is always "ready", and its reads block in the
// kernel): on epoll they go to the blocking pool, as Tokio's and SwiftNIO's do (File.swift).

internal import CSpindle
import Glibc

extension IOSubmission {
    /// The epoll reactor that performs the calling task's I/O, or nil when it goes through
    /// io_uring (the thread has a ring, or the task is on no Spindle thread and the process's
    /// I/O loop runs on io_uring). One thread-local load on a ring's thread.
    @inline(__always)
    static func epollReactor() throws(SpindleError) -> EpollReactor? {
        if spindle_current_ring() != nil { return nil }
        return try epollReactorOffRing()
    }

    private static func epollReactorOffRing() throws(SpindleError) -> EpollReactor? {
        if let epoll = EpollReactor.current { return epoll }
        return try IOLoop.shared().reactor.epoll
    }
}

enum ReadinessIO {
    static let dontWait = spindle_msg_dontwait()

    /// Runs `attempt` (a non-blocking system call: its result, or -1 with errno set) until it
    /// does not fail with EAGAIN, waiting on `readiness` for `interest` in between. Returns
    /// the result, a negated errno, -ECANCELED if the task is cancelled, or -EBADF if the
    /// descriptor or the reactor closes while it waits.
    static nonisolated(nonsending) func perform(
        _ readiness: Readiness, _ interest: ReadinessInterest, _ attempt: () -> Int
    ) async -> Int {
        while true {
            if Task.isCancelled { return -Int(ECANCELED) }
            let sequence = readiness.sequence(interest)
            let result = attempt()
            if result >= 0 { return result }
            let code = errno
            if code == EINTR { continue }
            if code != EAGAIN && code != EWOULDBLOCK { return -Int(code) }
            let registered = readiness.ensureRegistered()
            if registered != 0 { return -Int(registered) }
            // For the task dump, as an io_uring request records itself (Support/TaskActivity.swift).
            let record = SpawnedTaskRecord.noteSuspending(
                on: TaskWait.readiness(descriptor: readiness.fd, isWrite: interest == .write))
            let wakeup = await readiness.wait(interest, after: sequence)
            record?.resumed()
            switch wakeup {
            case .ready: continue
            case .cancelled: return -Int(ECANCELED)
            case .closed: return -Int(EBADF)
            }
        }
    }
}

/// A pointer handed to a blocking-pool thread for the duration of one job, which the awaiting
/// task outlives (BlockingPool.run resumes it only after the job has finished).
struct PoolPointer: @unchecked Sendable {
    // @unchecked Sendable: the memory belongs to the awaiting call, which does not touch it
    // while the job runs and frees it only after the job has returned.
    let raw: UnsafeMutableRawPointer
}

extension BlockingPool {
    /// The pool of the runtime or loop the caller runs on, else the shared one (for files on
    /// epoll).
    static var forIO: BlockingPool {
        currentSpindleHost?.blockingPool ?? shared
    }

    /// Runs one blocking system call on the pool and returns its result or its negated errno.
    nonisolated(nonsending) func systemCall(_ call: @escaping @Sendable () -> Int) async throws -> Int {
        try await run { () -> Int in
            while true {
                let result = call()
                if result >= 0 { return result }
                if errno != EINTR { return -Int(errno) }
            }
        }
    }
}
