// What TCP and Unix-domain streams share: reading, writing, shutting down and closing a
// connected stream socket through io_uring.
//
// Buffer ownership. The kernel writes received bytes into the stream's own receive buffer and,
// when a write has to wait for room, reads the outgoing bytes from the stream's own send buffer;
// callers only ever hand over and get back `[UInt8]` values, copied in and out. Both buffers
// belong to the stream: allocated on first use at the size asked for (so an idle connection
// costs no buffer, and a 16 KiB reader 16 KiB, not 64), grown only between operations, and
// freed in its deinit, which cannot run while an operation is in flight (the operation's task
// holds the stream). An operation's task resumes only once its completion has arrived (see
// Submission.swift). So no cancellation, timeout or early return can leave the kernel with a
// pointer to freed memory. A write first offers the caller's bytes to a non-blocking `send`,
// during which the kernel copies them synchronously; only a remainder that does not fit is
// copied into the send buffer and handed to io_uring.
// One reader and one writer at a time (`reading`/`writing` flags, set with acquire-release
// exchanges: the next reader sees the buffer as the previous one left it); a second concurrent
// reader gets `SpindleIOError.Kind.concurrentUse` rather than a corrupted buffer.
//
// Errors. A request that ends with -EINTR did nothing and is submitted again (it is never a
// cancellation: only -ECANCELED, which our own cancel produces, is). A write that fails after
// sending part of its bytes says how many in `SpindleIOError.bytesWritten`; cancelled after a partial
// send, it throws `SpindleIOError.Kind.cancelled` rather than `CancellationError`, which would hide
// that the peer got a prefix. `readExactly` takes a length that may come from the peer, so it
// grows its result as bytes arrive instead of reserving the length up front.

internal import CSpindle
internal import CURing
import Glibc
import Synchronization

final class StreamCore: @unchecked Sendable {
    // @unchecked Sendable: each buffer (and its capacity, and `receiveDrained` for the receive
    // side) is used only by the task holding the matching flag (`reading` for the receive
    // buffer, `writing` for the send buffer), and by the kernel while that task waits for the
    // completion.

    let descriptor: Descriptor
    /// The most one read returns, and the largest piece a waiting write hands to io_uring.
    static let maxChunk = 64 * 1024
    private var receiveBuffer: UnsafeMutableRawPointer? = nil
    private var receiveCapacity = 0
    /// Whether the last receive emptied the socket (reader only, like the buffer).
    private var receiveDrained = false
    private var sendBuffer: UnsafeMutableRawPointer? = nil
    private var sendCapacity = 0
    private let reading = Atomic<Bool>(false)
    private let writing = Atomic<Bool>(false)

    init(fd: Int32) {
        descriptor = Descriptor(fd, isSocket: true)
    }

    deinit {
        receiveBuffer?.deallocate()
        sendBuffer?.deallocate()
    }

    private func claim(_ flag: borrowing Atomic<Bool>, _ operation: SpindleIOError.Operation) throws(SpindleIOError) {
        if flag.exchange(true, ordering: .acquiringAndReleasing) {
            throw SpindleIOError(operation, kind: .concurrentUse)
        }
    }

    /// A buffer of at least `count` bytes in `buffer`, (re)allocated when it is smaller. Only
    /// between operations: no request can point into the old one.
    private static func ensure(
        _ buffer: inout UnsafeMutableRawPointer?, _ capacity: inout Int, _ count: Int
    ) -> UnsafeMutableRawPointer {
        if let existing = buffer, capacity >= count { return existing }
        buffer?.deallocate()
        let fresh = UnsafeMutableRawPointer.allocate(byteCount: count, alignment: 16)
        buffer = fresh
        capacity = count
        return fresh
    }

    /// Up to `maxBytes` bytes, or nil at end of stream.
    nonisolated(nonsending) func read(maxBytes: Int) async throws -> [UInt8]? {
        try await receive(maxBytes: maxBytes) { [UInt8]($0) }
    }

    /// Up to `maxBytes` bytes into `destination`, replacing its contents and reusing its
    /// capacity; 0 at end of stream.
    nonisolated(nonsending) func read(into destination: inout [UInt8], maxBytes: Int) async throws -> Int {
        let received = try await receive(maxBytes: maxBytes) { bytes -> Int in
            destination.removeAll(keepingCapacity: true)
            destination.append(contentsOf: bytes)
            return bytes.count
        }
        guard let received else {
            destination.removeAll(keepingCapacity: true)
            return 0
        }
        return received
    }

    /// Receives up to `maxBytes` bytes into the receive buffer and hands them to `deliver`
    /// (while this reader still holds the buffer); nil at end of stream.
    private nonisolated(nonsending) func receive<Result>(
        maxBytes: Int, _ deliver: (UnsafeRawBufferPointer) -> Result
    ) async throws -> Result? {
        try claim(reading, .read)
        defer { reading.store(false, ordering: .releasing) }
        let fd = try descriptor.begin(.read)
        defer { descriptor.end() }
        let count = min(max(maxBytes, 1), Self.maxChunk)
        let buffer = Self.ensure(&receiveBuffer, &receiveCapacity, count)
        while true {
            let result: Int32
            if let epoll = try IOSubmission.epollReactor() {
                result = Int32(await ReadinessIO.perform(descriptor.readiness(on: epoll), .read) {
                    Glibc.recv(fd, buffer, count, ReadinessIO.dontWait)
                })
            } else {
                let pollFirst = receiveDrained
                let completion = try await IOSubmission.perform { sqe in
                    io_uring_prep_recv(sqe, fd, buffer, count, 0)
                    // The last read took less than it asked for, so the socket was empty then
                    // and most likely still is: arm the readiness poll at once instead of first
                    // trying a receive that would fail with EAGAIN (a request/response peer
                    // sends only after our reply).
                    if pollFirst { sqe.pointee.ioprio |= UInt16(IORING_RECVSEND_POLL_FIRST) }
                }
                result = completion.result
            }
            receiveDrained = result >= 0 && Int(result) < count
            if result > 0 {
                // Data that raced in with a cancellation is delivered, not dropped.
                return deliver(UnsafeRawBufferPointer(start: buffer, count: Int(result)))
            }
            if descriptor.isClosed { throw SpindleIOError.closed(.read) }
            if result == 0 { return nil }
            if result == -EINTR { continue }  // nothing was received: ask again
            if result == -ECANCELED { throw CancellationError() }
            throw SpindleIOError(.read, errno: -result)
        }
    }

    /// The most `readExactly` reserves before bytes arrive: the count may come from the peer.
    static let readExactlyReserve = 64 * 1024

    /// Exactly `count` bytes; throws `unexpectedEndOfStream` if the stream ends first, and
    /// `invalidArgument` for a negative count.
    nonisolated(nonsending) func readExactly(_ count: Int) async throws -> [UInt8] {
        guard count >= 0 else { throw SpindleIOError.invalidArgument(.read) }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(min(count, Self.readExactlyReserve))  // then grows as bytes arrive
        while bytes.count < count {
            guard let chunk = try await read(maxBytes: count - bytes.count) else {
                throw SpindleIOError(.read, kind: .unexpectedEndOfStream)
            }
            bytes.append(contentsOf: chunk)
        }
        return bytes
    }

    /// Why a write stopped, before the count of bytes sent is attached.
    private enum WriteFailure: Error {
        case cancelled, closed
        case system(Int32)
    }

    /// Writes every byte, looping on short writes.
    ///
    /// - Throws: `CancellationError` if cancelled before any byte was sent; otherwise
    ///   ``SpindleIOError`` with ``SpindleIOError/bytesWritten`` set (``SpindleIOError/Kind/cancelled`` if cancelled).
    nonisolated(nonsending) func write<Bytes: Collection>(_ bytes: Bytes) async throws where Bytes.Element == UInt8 {
        try claim(writing, .write)
        defer { writing.store(false, ordering: .releasing) }
        let fd = try descriptor.begin(.write)
        defer { descriptor.end() }
        var written = 0
        do {
            var rest = bytes[...]
            while !rest.isEmpty {
                let chunk = rest.prefix(Self.maxChunk)
                // The kernel copies what fits during this call, from the caller's own storage:
                // nothing is borrowed past the call. (Non-contiguous collections skip this.)
                let sent = try chunk.withContiguousStorageIfAvailable { source -> Int in
                    let result = Glibc.send(fd, source.baseAddress!, source.count, Int32(MSG_DONTWAIT) | Sockets.noSignal)
                    if result >= 0 { return result }
                    let code = errno
                    if code == EAGAIN || code == EINTR { return 0 }
                    throw descriptor.isClosed ? WriteFailure.closed : WriteFailure.system(code)
                } ?? 0
                written += sent
                let waiting = chunk.dropFirst(sent)
                if !waiting.isEmpty { try await sendWaiting(waiting, fd: fd, written: &written) }
                rest = rest.dropFirst(chunk.count)
            }
        } catch let error as WriteFailure {
            switch error {
            case .cancelled:
                if written == 0 { throw CancellationError() }
                throw SpindleIOError(.write, kind: .cancelled, errno: ECANCELED, bytesWritten: written)
            case .closed:
                throw SpindleIOError.closed(.write, bytesWritten: written)
            case .system(let code):
                throw SpindleIOError(.write, kind: .system, errno: code, bytesWritten: written)
            }
        }
    }

    /// Copies `bytes` (at most `maxChunk`) into the send buffer and sends them through io_uring,
    /// which waits for room in the socket; adds what was sent to `written` as it goes.
    private nonisolated(nonsending) func sendWaiting<Bytes: Collection>(
        _ bytes: Bytes, fd: Int32, written: inout Int
    ) async throws where Bytes.Element == UInt8 {
        let buffer = Self.ensure(&sendBuffer, &sendCapacity, min(Self.maxChunk, max(bytes.count, 4096)))
        let count = bytes.withContiguousStorageIfAvailable { source -> Int in
            buffer.copyMemory(from: source.baseAddress!, byteCount: source.count)
            return source.count
        } ?? {
            var count = 0
            for byte in bytes {
                buffer.storeBytes(of: byte, toByteOffset: count, as: UInt8.self)
                count += 1
            }
            return count
        }()
        var offset = 0
        while offset < count {
            let start = buffer + offset
            let length = count - offset
            let result: Int32
            if let epoll = try IOSubmission.epollReactor() {
                result = Int32(await ReadinessIO.perform(descriptor.readiness(on: epoll), .write) {
                    Glibc.send(fd, start, length, ReadinessIO.dontWait | Sockets.noSignal)
                })
            } else {
                result = try await IOSubmission.perform { sqe in
                    io_uring_prep_send(sqe, fd, start, length, Sockets.noSignal)
                }.result
            }
            if result > 0 {
                offset += Int(result)
                written += Int(result)
                continue
            }
            if descriptor.isClosed { throw WriteFailure.closed }
            if result == -EINTR { continue }  // nothing was sent: send again
            if result == -ECANCELED { throw WriteFailure.cancelled }
            throw WriteFailure.system(result == 0 ? Int32(EPIPE) : -result)
        }
    }

    func shutdown(_ direction: ShutdownDirection) throws(SpindleIOError) {
        let fd = try descriptor.begin(.shutdown)
        defer { descriptor.end() }
        if Glibc.shutdown(fd, direction.how) != 0 { throw SpindleIOError(.shutdown, errno: errno) }
    }

    func setOption(_ level: Int32, _ name: Int32, _ value: Int32) throws(SpindleIOError) {
        let fd = try descriptor.begin(.setOption)
        defer { descriptor.end() }
        var value = value
        if setsockopt(fd, level, name, &value, socklen_t(MemoryLayout<Int32>.size)) != 0 {
            throw SpindleIOError(.setOption, errno: errno)
        }
    }

    func address(peer: Bool) throws(SpindleIOError) -> SpindleSocketAddress {
        let fd = try descriptor.begin(.address)
        defer { descriptor.end() }
        return try SpindleSocketAddress.of(fd, peer ? getpeername : getsockname)
    }
}

/// Which direction of a stream `shutdown` ends.
public enum ShutdownDirection: Sendable {
    /// No more reads (pending and later reads see end of stream).
    case read
    /// No more writes: the peer sees end of stream after the bytes already written.
    case write
    /// Both.
    case both

    var how: Int32 {
        switch self {
        case .read: return Int32(SHUT_RD)
        case .write: return Int32(SHUT_WR)
        case .both: return Int32(SHUT_RDWR)
        }
    }
}

/// Socket helpers shared by the listener and connect paths.
enum Sockets {
    static let stream = spindle_sock_stream()
    static let datagram = spindle_sock_dgram()
    static let closeOnExec = spindle_sock_cloexec()
    static let noSignal = spindle_msg_nosignal()

    /// A new close-on-exec socket, owned by the caller.
    static func make(family: Int32, type: Int32) throws(SpindleIOError) -> Int32 {
        let fd = socket(family, type | Sockets.closeOnExec, 0)
        if fd < 0 { throw SpindleIOError(.socket, errno: errno) }
        return fd
    }

    static func setOption(_ fd: Int32, _ level: Int32, _ name: Int32, _ value: Int32) throws(SpindleIOError) {
        var value = value
        if setsockopt(fd, level, name, &value, socklen_t(MemoryLayout<Int32>.size)) != 0 {
            throw SpindleIOError(.setOption, errno: errno)
        }
    }

    /// Connects a new socket to `address` through io_uring; closes it on failure. An attempt
    /// that ends with -EINTR is abandoned (its socket closed, which aborts a handshake the
    /// kernel may still be making) and made again on a fresh socket.
    static nonisolated(nonsending) func connect(to address: SpindleSocketAddress, type: Int32) async throws -> Int32 {
        while true {
            if let fd = try await connectOnce(to: address, type: type) { return fd }
        }
    }

    /// One attempt of `connect`: the socket, or nil after -EINTR.
    private static nonisolated(nonsending) func connectOnce(to address: SpindleSocketAddress, type: Int32) async throws -> Int32? {
        if let epoll = try IOSubmission.epollReactor() {
            return try await connectWhenReady(to: address, type: type, on: epoll)
        }
        let fd = try make(family: address.family, type: type)
        // The kernel reads the address during the request: it lives in this frame's heap box
        // until the completion (which this task waits for before it returns).
        let storage = UnsafeMutablePointer<sockaddr_storage>.allocate(capacity: 1)
        defer { storage.deallocate() }
        address.withSockAddr { pointer, length in
            UnsafeMutableRawPointer(storage).copyMemory(from: pointer, byteCount: Int(length))
        }
        let length = address.length
        let completion: IOCompletion
        do {
            completion = try await IOSubmission.perform { sqe in
                storage.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    io_uring_prep_connect(sqe, fd, $0, length)
                }
            }
        } catch {
            Glibc.close(fd)
            throw error
        }
        if completion.result == 0 { return fd }
        Glibc.close(fd)
        if completion.result == -EINTR { return nil }
        if completion.result == -ECANCELED { throw CancellationError() }
        throw SpindleIOError(.connect, errno: -completion.result)
    }

    /// Binds and listens a new socket.
    static func listen(
        at address: SpindleSocketAddress, type: Int32, backlog: Int32, reuseAddress: Bool, reusePort: Bool
    ) throws(SpindleIOError) -> Int32 {
        let fd = try make(family: address.family, type: type)
        do throws(SpindleIOError) {
            if reuseAddress { try setOption(fd, SOL_SOCKET, SO_REUSEADDR, 1) }
            if reusePort { try setOption(fd, SOL_SOCKET, SO_REUSEPORT, 1) }
            let bound = address.withSockAddr { Glibc.bind(fd, $0, $1) }
            if bound != 0 { throw SpindleIOError(.bind, errno: errno) }
            if type == Sockets.stream, Glibc.listen(fd, backlog) != 0 {
                throw SpindleIOError(.listen, errno: errno)
            }
        } catch {
            Glibc.close(fd)
            throw error
        }
        return fd
    }
}
