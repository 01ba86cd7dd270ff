import Glibc

/// Errors raised by Spindle's runtimes.
public enum SpindleError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A runtime was configured with fewer than one worker.
    case invalidWorkerCount(Int)
    /// The runtime or event loop has been shut down and takes no new work.
    case shutDown
    /// `run` was called on a thread that already belongs to a running Spindle runtime or loop
    /// (asyncio's "cannot be called from a running event loop"): it would block its own worker.
    case nestedRun
    /// The kernel refused io_uring. `reason` says why and what to do.
    case ioUringUnavailable(errno: Int32, reason: String)
    /// A system call needed to set up the runtime failed.
    case systemCallFailed(call: String, errno: Int32)
    /// The OS would not start another thread.
    case threadCreationFailed(errno: Int32)
    /// A blocking pool was given a thread limit below 1 (or too large to count).
    case invalidThreadLimit(Int)
    /// The free ``spawn(name:priority:_:)->Task<Success,Never>`` was called on a thread that is
    /// no runtime worker and no event loop thread (a plain thread, Swift's global executor, or
    /// a blocking-pool thread inside ``toThread(_:)``): there is no current host to spawn on.
    case notOnSpindle

    /// What went wrong and, where there is one, what to do instead, for logs.
    public var description: String {
        switch self {
        case .invalidWorkerCount(let count):
            return "invalid worker count \(count): a runtime needs at least one worker"
        case .shutDown:
            return "the runtime has been shut down and accepts no new work"
        case .nestedRun:
            return "run() cannot be called from a thread of a running Spindle runtime or event loop; use spawn or await the work instead"
        case .ioUringUnavailable(let errno, let reason):
            return "io_uring is unavailable (errno \(errno): \(String(cString: strerror(errno)))): \(reason)"
        case .systemCallFailed(let call, let errno):
            return "\(call) failed (errno \(errno): \(String(cString: strerror(errno))))"
        case .threadCreationFailed(let errno):
            return "could not start a thread (errno \(errno): \(String(cString: strerror(errno))))"
        case .invalidThreadLimit(let limit):
            return "invalid thread limit \(limit): a blocking pool needs at least one thread"
        case .notOnSpindle:
            return "spawn was called off Spindle's threads (no runtime worker or event loop is current); spawn on a runtime or loop explicitly, or on one taken with currentSpindleHost before leaving it"
        }
    }
}
