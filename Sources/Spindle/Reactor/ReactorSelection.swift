// Which reactor a runtime or event loop runs on, chosen when it starts.
//
// `.automatic` (the default) reads SPINDLE_REACTOR (`epoll`, `io_uring`, `auto`; unset means
// `auto`): `auto` takes io_uring when the process may use it (IOUringProbe.swift, asked once
// per process) and epoll otherwise, logging once, through swift-log, why io_uring was refused
// and what would enable it. An explicit `.ioUring` (argument or environment) refused by the
// kernel throws `ioUringUnavailable` as before; `.epoll` never probes.

import Glibc
import Logging
import Synchronization

/// Which I/O reactor a ``Runtime`` or ``SpindleEventLoop`` uses.
public enum ReactorChoice: Sendable, Equatable {
    /// io_uring when the kernel and the sandbox allow it, epoll otherwise; the environment
    /// variable `SPINDLE_REACTOR` (`epoll`, `io_uring` or `auto`) overrides it.
    case automatic
    /// io_uring, or ``SpindleError/ioUringUnavailable(errno:reason:)`` at start.
    case ioUring
    /// epoll with non-blocking sockets (files go through the blocking pool).
    case epoll
}

/// The I/O reactor a runtime or event loop runs on (see ``RuntimeMetrics/reactor``).
public enum ReactorBackend: String, Sendable, Equatable, CustomStringConvertible {
    /// io_uring: submissions and completions on a ring per worker or loop.
    case ioUring = "io_uring"
    /// epoll with non-blocking sockets (files go through the blocking pool).
    case epoll

    /// The backend's name, as `SPINDLE_REACTOR` spells it: "io_uring" or "epoll".
    public var description: String { rawValue }
}

enum ReactorSelection {
    /// The environment variable that overrides `.automatic`.
    static let environmentVariable = "SPINDLE_REACTOR"
    /// Set once the fallback to epoll (or a bad environment value) has been logged.
    private static let logged = Atomic<Bool>(false)

    /// The backend for `choice`, logging the reason once per process when `.automatic` falls
    /// back to epoll.
    static func resolve(_ choice: ReactorChoice, logger: Logger) throws(SpindleError) -> ReactorBackend {
        switch choice {
        case .ioUring:
            if let failure = IOUringProbe.failure { throw failure }
            return .ioUring
        case .epoll:
            return .epoll
        case .automatic:
            break
        }
        let value = getenv(environmentVariable).map { String(cString: $0) } ?? ""
        switch value.lowercased() {
        case "epoll":
            return .epoll
        case "io_uring", "iouring", "io-uring", "uring":
            return try resolve(.ioUring, logger: logger)
        case "", "auto", "automatic":
            break
        default:
            logOnce(logger) {
                logger.warning("\(environmentVariable)=\(value) is not epoll, io_uring or auto; choosing automatically")
            }
        }
        guard let failure = IOUringProbe.failure else { return .ioUring }
        logOnce(logger) {
            logger.notice(
                "Spindle runs on epoll: \(failure)",
                metadata: ["reactor": "epoll", "errno": "\(failure.errorNumber ?? 0)"])
        }
        return .epoll
    }

    private static func logOnce(_ logger: Logger, _ log: () -> Void) {
        if !logged.exchange(true, ordering: .relaxed) { log() }  // relaxed: only "once" matters
    }
}

extension SpindleError {
    /// The errno of an `ioUringUnavailable` or `systemCallFailed` error.
    var errorNumber: Int32? {
        switch self {
        case .ioUringUnavailable(let code, _), .systemCallFailed(_, let code): return code
        default: return nil
        }
    }
}
