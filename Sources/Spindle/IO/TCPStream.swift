import Glibc
import Logging

/// A connected TCP stream.
///
/// ```swift
/// let stream = try await TCPStream.connect(host: "127.0.0.1", port: 8080, timeout: .seconds(2))
/// try await stream.write(Array("ping".utf8))
/// let reply = try await stream.readExactly(4)
/// stream.close()
/// ```
///
/// The stream owns its descriptor; `close()` (or the stream's deinit) closes it exactly once,
/// after any read or write in flight has completed. One task may read while another writes.
/// Buffers are copied in and out, so a cancelled or timed-out read can never let the kernel
/// write into memory the caller has freed; data that arrives as a read is cancelled is
/// returned by that read.
public final class TCPStream: Sendable {
    let core: StreamCore

    init(fd: Int32) {
        core = StreamCore(fd: fd)
    }

    deinit { core.descriptor.close() }

    /// Connects to `host:port`.
    ///
    /// - Parameters:
    ///   - host: a numeric IPv4 or IPv6 address.
    ///   - port: the port to connect to.
    ///   - timeout: how long to wait for the connection; past it the attempt is
    ///   cancelled and ``SpindleIOError`` with `ETIMEDOUT` is thrown.
    /// - Throws: ``SpindleIOError`` (`ECONNREFUSED`, `ETIMEDOUT`, `ENETUNREACH`...), or
    ///   `CancellationError`.
    public static nonisolated(nonsending) func connect(host: String, port: Int, timeout: Duration? = nil) async throws -> TCPStream {
        try await connect(to: SpindleSocketAddress(host: host, port: port), timeout: timeout)
    }

    /// Connects to `address`.
    public static nonisolated(nonsending) func connect(to address: SpindleSocketAddress, timeout: Duration? = nil) async throws -> TCPStream {
        let fd: Int32
        if let timeout {
            do {
                fd = try await withTimeout(timeout) {
                    try await Sockets.connect(to: address, type: Sockets.stream)
                }
            } catch is TimeoutError {
                throw SpindleIOError(.connect, errno: ETIMEDOUT)
            }
        } else {
            fd = try await Sockets.connect(to: address, type: Sockets.stream)
        }
        return TCPStream(fd: fd)
    }

    /// Reads up to `maxBytes` (at most 64 KiB) bytes as soon as any are available.
    ///
    /// - Returns: the bytes, or nil at end of stream.
    /// - Throws: ``SpindleIOError`` (`ECONNRESET`...; ``SpindleIOError/Kind/closed`` after `close()`), or
    ///   `CancellationError` if the task was cancelled before data arrived.
    public nonisolated(nonsending) func read(maxBytes: Int = 16 * 1024) async throws -> [UInt8]? {
        try await core.read(maxBytes: maxBytes)
    }

    /// Reads up to `maxBytes` (at most 64 KiB) bytes into `buffer` as soon as any are
    /// available, replacing its contents. The array's capacity is reused, so a loop that reads
    /// into the same array allocates nothing per read.
    ///
    /// ```swift
    /// var buffer: [UInt8] = []
    /// while try await stream.read(into: &buffer) > 0 {
    ///     try await stream.write(buffer)
    /// }
    /// ```
    ///
    /// - Returns: the number of bytes read (`buffer.count`); 0 at end of stream.
    /// - Throws: what ``read(maxBytes:)`` throws.
    public nonisolated(nonsending) func read(into buffer: inout [UInt8], maxBytes: Int = 16 * 1024) async throws -> Int {
        try await core.read(into: &buffer, maxBytes: maxBytes)
    }

    /// Reads exactly `count` bytes. The result grows as bytes arrive (at most 64 KiB is
    /// reserved up front), so a `count` taken from the peer costs only what the peer sends.
    ///
    /// - Throws: ``SpindleIOError`` with ``SpindleIOError/Kind/unexpectedEndOfStream`` if the stream ends
    ///   first, ``SpindleIOError/Kind/invalidArgument`` if `count` is negative.
    public nonisolated(nonsending) func readExactly(_ count: Int) async throws -> [UInt8] {
        try await core.readExactly(count)
    }

    /// Writes all of `bytes`, however many sends it takes.
    ///
    /// - Throws: ``SpindleIOError`` (`EPIPE`, `ECONNRESET`...) with ``SpindleIOError/bytesWritten``, the
    ///   bytes sent before the failure (the peer may receive them); `CancellationError` if the
    ///   task was cancelled before any byte was sent, ``SpindleIOError/Kind/cancelled`` (with
    ///   ``SpindleIOError/bytesWritten``) if after some were. Under ``withTimeout(_:operation:)`` a
    ///   timed-out write throws ``TimeoutError``, which does not carry the count.
    public nonisolated(nonsending) func write<Bytes: Collection & Sendable>(_ bytes: Bytes) async throws where Bytes.Element == UInt8 {
        try await core.write(bytes)
    }

    /// Writes all of `bytes` (the common case of the generic `write`, without the overhead of
    /// its unspecialized code).
    public nonisolated(nonsending) func write(_ bytes: [UInt8]) async throws {
        try await core.write(bytes)
    }

    /// Writes all of `bytes`.
    public nonisolated(nonsending) func write(_ bytes: ArraySlice<UInt8>) async throws {
        try await core.write(bytes)
    }

    /// Writes the UTF-8 bytes of `string`.
    public nonisolated(nonsending) func write(_ string: String) async throws {
        try await core.write(Array(string.utf8))
    }

    /// Shuts down one or both directions; `.write` sends end of stream to the peer.
    public func shutdown(_ direction: ShutdownDirection) throws {
        try core.shutdown(direction)
    }

    /// Closes the stream. Reads and writes in flight complete with ``SpindleIOError/Kind/closed``;
    /// the descriptor is closed once they have. Calling it again does nothing.
    public func close() {
        core.descriptor.close()
    }

    /// Turns Nagle's algorithm off (true) or on.
    public func setNoDelay(_ enabled: Bool = true) throws {
        try core.setOption(Int32(IPPROTO_TCP), TCP_NODELAY, enabled ? 1 : 0)
    }

    /// The local address.
    public var localAddress: SpindleSocketAddress { get throws { try core.address(peer: false) } }
    /// The peer's address.
    public var peerAddress: SpindleSocketAddress { get throws { try core.address(peer: true) } }
}

/// A listening TCP socket.
///
/// ```swift
/// let listener = try TCPListener.bind(host: "127.0.0.1", port: 0)
/// for try await connection in listener.connections {
///     try runtime.spawn { try await serve(connection) }
/// }
/// ```
public final class TCPListener: Sendable {
    let acceptor: Acceptor

    private init(fd: Int32, logger: Logger) {
        acceptor = Acceptor(descriptor: Descriptor(fd, isSocket: true), logger: logger)
    }

    deinit { acceptor.close() }

    /// Binds to `host:port` (port 0 picks a free port; see ``localAddress``) and listens.
    ///
    /// - Parameters:
    ///   - host: the address to listen on (a numeric IPv4 or IPv6 address).
    ///   - port: the port; 0 lets the kernel choose one.
    ///   - backlog: the kernel's queue of connections not yet accepted.
    ///   - reuseAddress: `SO_REUSEADDR` (rebinding a port with connections in TIME_WAIT).
    ///   - reusePort: `SO_REUSEPORT` (several listeners on one port, load-balanced by the kernel).
    ///   - logger: where accepting reports running out of descriptors (once per episode: a
    ///     warning when it begins, a notice with the number of back-offs when it recovers).
    /// - Throws: ``SpindleIOError`` (`EADDRINUSE`, `EACCES`...).
    public static func bind(
        host: String = "127.0.0.1", port: Int, backlog: Int32 = 1024,
        reuseAddress: Bool = true, reusePort: Bool = false, logger: Logger = Logger(label: "spindle")
    ) throws -> TCPListener {
        let address = try SpindleSocketAddress(host: host, port: port)
        return try bind(to: address, backlog: backlog, reuseAddress: reuseAddress, reusePort: reusePort, logger: logger)
    }

    /// Binds to `address` and listens. The parameters are those of
    /// ``bind(host:port:backlog:reuseAddress:reusePort:logger:)``.
    public static func bind(
        to address: SpindleSocketAddress, backlog: Int32 = 1024,
        reuseAddress: Bool = true, reusePort: Bool = false, logger: Logger = Logger(label: "spindle")
    ) throws -> TCPListener {
        let fd = try Sockets.listen(
            at: address, type: Sockets.stream, backlog: backlog,
            reuseAddress: reuseAddress, reusePort: reusePort)
        return TCPListener(fd: fd, logger: logger)
    }

    /// The next connection. Descriptor exhaustion (`EMFILE`) makes it back off and retry
    /// rather than fail or spin.
    ///
    /// - Throws: ``SpindleIOError`` (``SpindleIOError/Kind/closed`` once the listener is closed), or
    ///   `CancellationError`.
    public nonisolated(nonsending) func accept() async throws -> TCPStream {
        TCPStream(fd: try await acceptor.acceptOne())
    }

    /// The connections as they arrive, backed by a multishot accept on the ring of the task
    /// that iterates. The iteration ends (nil) when the listener is closed.
    ///
    /// Several tasks may iterate at once: each connection goes to exactly one of them, the
    /// longest-waiting first, and cancelling one iteration leaves the others waiting.
    /// Connections accepted while no task waits are kept for the next call, up to 64; past
    /// that the multishot accept stops and the kernel's listen backlog holds the rest, until
    /// the consumers have taken the kept ones down to 32.
    public var connections: Connections<TCPStream> {
        Connections(acceptor: acceptor) { TCPStream(fd: $0) }
    }

    /// The bound address (with the port the kernel chose for port 0).
    public var localAddress: SpindleSocketAddress {
        get throws {
            let fd = try acceptor.descriptor.begin(.address)
            defer { acceptor.descriptor.end() }
            return try SpindleSocketAddress.of(fd, getsockname)
        }
    }

    /// Times accepting backed off because descriptors or memory ran out.
    public var acceptBackoffs: UInt64 { acceptor.backoffs.load(ordering: .relaxed) }

    /// Stops listening; a pending `accept` or iteration ends with ``SpindleIOError/Kind/closed``.
    public func close() {
        acceptor.close()
    }
}

/// The connections a listener accepts, as an `AsyncSequence`.
public struct Connections<Stream: Sendable>: AsyncSequence, Sendable {
    /// An accepted connection (a ``TCPStream`` or a ``UnixStream``).
    public typealias Element = Stream
    let acceptor: Acceptor
    let make: @Sendable (Int32) -> Stream

    /// Accepts the connections one at a time, for `for try await`.
    public struct AsyncIterator: AsyncIteratorProtocol {
        let acceptor: Acceptor
        let make: @Sendable (Int32) -> Stream

        /// Waits for the next connection; `nil` once the listener is closed.
        ///
        /// - Throws: ``SpindleIOError`` (operation ``SpindleIOError/Operation/accept``) when
        ///   accepting fails, or `CancellationError`.
        public mutating func next() async throws -> Stream? {
            do {
                return make(try await acceptor.next())
            } catch let error as SpindleIOError where error.kind == .closed {
                return nil
            }
        }
    }

    /// An iterator over the listener's connections.
    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(acceptor: acceptor, make: make)
    }
}
