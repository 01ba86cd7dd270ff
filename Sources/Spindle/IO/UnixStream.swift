import Glibc
import Logging

/// A connected Unix-domain stream socket; the same surface as ``TCPStream``.
public final class UnixStream: Sendable {
    let core: StreamCore

    init(fd: Int32) {
        core = StreamCore(fd: fd)
    }

    deinit { core.descriptor.close() }

    /// Connects to the socket at `path`.
    ///
    /// - Throws: ``SpindleIOError`` (`ENOENT`, `ECONNREFUSED`, `ETIMEDOUT` past `timeout`...).
    public static nonisolated(nonsending) func connect(path: String, timeout: Duration? = nil) async throws -> UnixStream {
        let address = try SpindleSocketAddress(unixPath: path)
        guard let timeout else {
            return UnixStream(fd: try await Sockets.connect(to: address, type: Sockets.stream))
        }
        do {
            return UnixStream(fd: try await withTimeout(timeout) {
                try await Sockets.connect(to: address, type: Sockets.stream)
            })
        } catch is TimeoutError {
            throw SpindleIOError(.connect, errno: ETIMEDOUT)
        }
    }

    /// Creates a connected pair (`socketpair`), for talking to a child or between tasks.
    public static func pair() throws -> (UnixStream, UnixStream) {
        var fds: [Int32] = [-1, -1]
        if socketpair(AF_UNIX, Sockets.stream | Sockets.closeOnExec, 0, &fds) != 0 {
            throw SpindleIOError(.socket, errno: errno)
        }
        return (UnixStream(fd: fds[0]), UnixStream(fd: fds[1]))
    }

    /// Up to `maxBytes` bytes, or nil at end of stream (see ``TCPStream/read(maxBytes:)``).
    public nonisolated(nonsending) func read(maxBytes: Int = 16 * 1024) async throws -> [UInt8]? {
        try await core.read(maxBytes: maxBytes)
    }

    /// Up to `maxBytes` bytes into `buffer`, reusing its capacity; 0 at end of stream (see
    /// ``TCPStream/read(into:maxBytes:)``).
    public nonisolated(nonsending) func read(into buffer: inout [UInt8], maxBytes: Int = 16 * 1024) async throws -> Int {
        try await core.read(into: &buffer, maxBytes: maxBytes)
    }

    /// Exactly `count` bytes (see ``TCPStream/readExactly(_:)``).
    public nonisolated(nonsending) func readExactly(_ count: Int) async throws -> [UInt8] {
        try await core.readExactly(count)
    }

    /// Writes all of `bytes`.
    public nonisolated(nonsending) func write<Bytes: Collection & Sendable>(_ bytes: Bytes) async throws where Bytes.Element == UInt8 {
        try await core.write(bytes)
    }

    /// Writes all of `bytes` (without the generic path's overhead).
    public nonisolated(nonsending) func write(_ bytes: [UInt8]) async throws {
        try await core.write(bytes)
    }

    /// Writes all of `bytes`.
    public nonisolated(nonsending) func write(_ bytes: ArraySlice<UInt8>) async throws {
        try await core.write(bytes)
    }

    /// Shuts down one or both directions.
    public func shutdown(_ direction: ShutdownDirection) throws {
        try core.shutdown(direction)
    }

    /// Closes the stream (once; see ``TCPStream/close()``).
    public func close() {
        core.descriptor.close()
    }
}

/// A listening Unix-domain stream socket.
public final class UnixListener: Sendable {
    let acceptor: Acceptor
    /// The path bound, removed again by `close()`.
    public let path: String

    private init(fd: Int32, path: String, logger: Logger) {
        acceptor = Acceptor(descriptor: Descriptor(fd, isSocket: true), logger: logger)
        self.path = path
    }

    deinit { close() }

    /// Binds to `path` and listens. An existing socket file at `path` is replaced when
    /// `removeExisting` is true. `logger` is where accepting reports running out of
    /// descriptors (see ``TCPListener/bind(host:port:backlog:reuseAddress:reusePort:logger:)``).
    public static func bind(
        path: String, backlog: Int32 = 1024, removeExisting: Bool = true, logger: Logger = Logger(label: "spindle")
    ) throws -> UnixListener {
        let address = try SpindleSocketAddress(unixPath: path)
        if removeExisting { unlink(path) }
        let fd = try Sockets.listen(
            at: address, type: Sockets.stream, backlog: backlog, reuseAddress: false, reusePort: false)
        return UnixListener(fd: fd, path: path, logger: logger)
    }

    /// The next connection (see ``TCPListener/accept()``).
    public nonisolated(nonsending) func accept() async throws -> UnixStream {
        UnixStream(fd: try await acceptor.acceptOne())
    }

    /// The connections as they arrive; several tasks may iterate at once, and at most 64
    /// untaken connections are kept (see ``TCPListener/connections``).
    public var connections: Connections<UnixStream> {
        Connections(acceptor: acceptor) { UnixStream(fd: $0) }
    }

    /// Stops listening and removes the socket file.
    public func close() {
        if !acceptor.descriptor.isClosed { unlink(path) }
        acceptor.close()
    }
}
