import Glibc

/// A failed I/O operation: which operation, and the `errno` the kernel returned.
///
/// End of stream is not an error: `read` returns `nil` there. `readExactly` throws
/// ``Kind/unexpectedEndOfStream`` when the stream ends early; a task cancelled while it waits
/// throws `CancellationError` (a write that had already sent part of its bytes throws
/// ``Kind/cancelled`` instead, with ``bytesWritten``); ``withTimeout(_:operation:)`` throws
/// ``TimeoutError``. An argument that no call could satisfy (a negative count, an offset past
/// what a file offset can hold) throws ``Kind/invalidArgument`` before anything is submitted.
public struct SpindleIOError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The operation that failed.
    public enum Operation: String, Sendable {
        /// Creating a socket (`socket(2)`).
        case socket
        /// Binding a socket to a local address (`bind(2)`).
        case bind
        /// Marking a socket as listening (`listen(2)`).
        case listen
        /// Accepting a connection on a listener.
        case accept
        /// Connecting a stream to a peer (including a connect timeout, `ETIMEDOUT`).
        case connect
        /// Reading from a stream, file or signal descriptor.
        case read
        /// Writing to a stream or file.
        case write
        /// Sending a datagram.
        case send
        /// Receiving a datagram.
        case receive
        /// Shutting down one or both directions of a stream (`shutdown(2)`).
        case shutdown
        /// Opening a file.
        case open
        /// Closing a descriptor.
        case close
        /// Flushing a file to storage (`fsync`).
        case sync
        /// Reading a file's metadata (`fstat(2)`).
        case stat
        /// Setting a socket option (`setsockopt(2)`).
        case setOption
        /// Resolving a host name to an address (`getaddrinfo(3)`).
        case resolve
        /// Building or reading a socket address (a port out of range, a Unix path too long,
        /// `getsockname`/`getpeername`).
        case address
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
        /// An argument is out of range (a negative count, an offset beyond `Int64.max`);
        /// nothing was done. `errno` is `EINVAL`.
        case invalidArgument
        /// The task was cancelled while a write waited, after ``SpindleIOError/bytesWritten`` of its
        /// bytes had been sent (and the peer may receive them); the rest were not. `errno` is
        /// `ECANCELED`. A write cancelled before sending anything throws `CancellationError`.
        case cancelled
    }

    /// The operation that failed.
    public let operation: Operation
    /// What went wrong; ``Kind/system`` when a system call failed with ``errno``.
    public let kind: Kind
    /// The error number (`ECONNRESET`, `EPIPE`, ...); `EBADF` for ``Kind/closed``, 0 where
    /// no system call failed.
    public let errno: Int32
    /// For a stream's `write`: how many of the bytes it was given had been sent when it failed
    /// (the peer may have received them; a retry should resume after them). 0 otherwise.
    public let bytesWritten: Int

    /// An error for a system call or io_uring request that failed: `operation` failed with
    /// `errno` (kind ``Kind/system``, no bytes written).
    public init(_ operation: Operation, errno: Int32) {
        self.init(operation, kind: .system, errno: errno)
    }

    init(_ operation: Operation, kind: Kind, errno: Int32 = 0, bytesWritten: Int = 0) {
        self.operation = operation
        self.kind = kind
        self.errno = errno
        self.bytesWritten = bytesWritten
    }

    static func closed(_ operation: Operation, bytesWritten: Int = 0) -> SpindleIOError {
        SpindleIOError(operation, kind: .closed, errno: EBADF, bytesWritten: bytesWritten)
    }

    static func invalidArgument(_ operation: Operation) -> SpindleIOError {
        SpindleIOError(operation, kind: .invalidArgument, errno: EINVAL)
    }

    /// The peer reset the connection (`ECONNRESET`).
    public var isConnectionReset: Bool { errno == ECONNRESET }
    /// The peer is gone for writing (`EPIPE`).
    public var isBrokenPipe: Bool { errno == EPIPE }
    /// Nothing listens at the address (`ECONNREFUSED`).
    public var isConnectionRefused: Bool { errno == ECONNREFUSED }

    /// The operation and what went wrong, for logs: "read failed: Connection reset by peer
    /// (errno 104)", with how many bytes had been written when there were some.
    public var description: String {
        let what: String
        switch kind {
        case .system:
            what = "\(String(cString: strerror(errno))) (errno \(errno))"
        case .unexpectedEndOfStream:
            what = "the stream ended early"
        case .closed:
            what = "the descriptor is closed"
        case .concurrentUse:
            what = "another task is already doing this on the same stream"
        case .invalidAddress:
            what = "invalid address"
        case .invalidArgument:
            what = "invalid argument"
        case .cancelled:
            what = "the task was cancelled"
        }
        let sent = bytesWritten > 0 ? " after \(bytesWritten) bytes were written" : ""
        return "\(operation) failed: \(what)\(sent)"
    }
}
