import Glibc

/// A failed I/O operation: which operation, and the `errno` the kernel returned.
///
/// End of stream is not an error: `read` returns `nil` there. `readExactly` throws
/// ``Kind/unexpectedEndOfStream`` when the stream ends early; a task cancelled while it waits
/// throws `CancellationError`; ``withTimeout(_:operation:)`` throws ``TimeoutError``.
public struct IOError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The operation that failed.
    public enum Operation: String, Sendable {
        case socket, bind, listen, accept, connect, read, write, send, receive, shutdown
        case open, close, sync, stat, setOption, resolve, address
    }

    /// What went wrong.
    public enum Kind: Sendable, Equatable {
        /// A system call or io_uring request failed with `errno`.
        case system
        /// The stream ended before the bytes asked for arrived (`readExactly`).
        case unexpectedEndOfStream
        /// The descriptor was closed (by ``TCPStream/close()`` or similar) before or during
        /// the operation.
        case closed
        /// Another task is already reading (or writing) this stream; one reader and one
        /// writer at a time.
        case concurrentUse
        /// The address could not be parsed or resolved.
        case invalidAddress
    }

    public let operation: Operation
    public let kind: Kind
    /// The error number (`ECONNRESET`, `EPIPE`, ...); `EBADF` for ``Kind/closed``, 0 where
    /// no system call failed.
    public let errno: Int32

    public init(_ operation: Operation, errno: Int32) {
        self.operation = operation
        self.kind = .system
        self.errno = errno
    }

    init(_ operation: Operation, kind: Kind, errno: Int32 = 0) {
        self.operation = operation
        self.kind = kind
        self.errno = errno
    }

    static func closed(_ operation: Operation) -> IOError { IOError(operation, kind: .closed, errno: EBADF) }

    /// The peer reset the connection (`ECONNRESET`).
    public var isConnectionReset: Bool { errno == ECONNRESET }
    /// The peer is gone for writing (`EPIPE`).
    public var isBrokenPipe: Bool { errno == EPIPE }
    /// Nothing listens at the address (`ECONNREFUSED`).
    public var isConnectionRefused: Bool { errno == ECONNREFUSED }

    public var description: String {
        switch kind {
        case .system:
            return "\(operation) failed: \(String(cString: strerror(errno))) (errno \(errno))"
        case .unexpectedEndOfStream:
            return "\(operation) failed: the stream ended early"
        case .closed:
            return "\(operation) failed: the descriptor is closed"
        case .concurrentUse:
            return "\(operation) failed: another task is already doing this on the same stream"
        case .invalidAddress:
            return "\(operation) failed: invalid address"
        }
    }
}

/// Thrown by ``withTimeout(_:operation:)`` when the operation did not finish in time.
public struct TimeoutError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The time limit that passed.
    public let duration: Duration
    public init(duration: Duration) { self.duration = duration }
    public var description: String { "the operation did not finish within \(duration)" }
}
