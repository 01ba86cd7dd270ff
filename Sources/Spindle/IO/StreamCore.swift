// What TCP and Unix-domain streams share: reading, writing, shutting down and closing a
// connected stream socket through io_uring.
//
// Buffer ownership. The kernel writes received bytes into the stream's own receive buffer and
// reads outgoing bytes from the stream's own send buffer; callers only ever hand over and get
// back `[UInt8]` values, copied in and out. Both buffers are allocated with the stream and freed
// in its deinit, which cannot run while an operation is in flight (the operation's task holds
// the stream), and an operation's task resumes only once its completion has arrived (see
// Submission.swift). So no cancellation, timeout or early return can leave the kernel with a
// pointer to freed memory. One reader and one writer at a time (`reading`/`writing` flags, set
// with acquire-release exchanges: the next reader sees the buffer as the previous one left it);
// a second concurrent reader gets `IOError.Kind.concurrentUse` rather than a corrupted buffer.

import CSpindle
import CURing
import Glibc
import Synchronization

final class StreamCore: @unchecked Sendable {
    // @unchecked Sendable: the buffers are used only by the task holding the matching flag
    // (`reading` for `receiveBuffer`, `writing` for `sendBuffer`), and by the kernel while
    // that task waits for the completion.

    let descriptor: Descriptor
    static let receiveCapacity = 64 * 1024
    static let sendCapacity = 64 * 1024
    private let receiveBuffer: UnsafeMutableRawPointer
    private let sendBuffer: UnsafeMutableRawPointer
    private let reading = Atomic<Bool>(false)
    private let writing = Atomic<Bool>(false)

    init(fd: Int32) {
        descriptor = Descriptor(fd, isSocket: true)
        receiveBuffer = .allocate(byteCount: Self.receiveCapacity, alignment: 16)
        sendBuffer = .allocate(byteCount: Self.sendCapacity, alignment: 16)
    }

    deinit {
        receiveBuffer.deallocate()
        sendBuffer.deallocate()
    }

    private func claim(_ flag: borrowing Atomic<Bool>, _ operation: IOError.Operation) throws(IOError) {
        if flag.exchange(true, ordering: .acquiringAndReleasing) {
            throw IOError(operation, kind: .concurrentUse)
        }
    }

    /// Up to `maxBytes` bytes, or nil at end of stream.
    func read(maxBytes: Int) async throws -> [UInt8]? {
        try claim(reading, .read)
        defer { reading.store(false, ordering: .releasing) }
        let fd = try descriptor.begin(.read)
        defer { descriptor.end() }
        let count = UInt32(min(max(maxBytes, 1), Self.receiveCapacity))
        let buffer = receiveBuffer
        let completion = try await IOSubmission.perform { sqe in
            io_uring_prep_recv(sqe, fd, buffer, Int(count), 0)
        }
        let result = completion.result
        if result > 0 {
            // Data that raced in with a cancellation is delivered, not dropped.
            return [UInt8](UnsafeRawBufferPointer(start: buffer, count: Int(result)))
        }
        if descriptor.isClosed { throw IOError.closed(.read) }
        if result == 0 { return nil }
        if result == -ECANCELED || result == -EINTR { throw CancellationError() }
        throw IOError(.read, errno: -result)
    }

    /// Exactly `count` bytes; throws `unexpectedEndOfStream` if the stream ends first.
    func readExactly(_ count: Int) async throws -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(count)
        while bytes.count < count {
            guard let chunk = try await read(maxBytes: count - bytes.count) else {
                throw IOError(.read, kind: .unexpectedEndOfStream)
            }
            bytes.append(contentsOf: chunk)
        }
        return bytes
    }

    /// Writes every byte, looping on short writes.
    func write<Bytes: Collection>(_ bytes: Bytes) async throws where Bytes.Element == UInt8 {
        try claim(writing, .write)
        defer { writing.store(false, ordering: .releasing) }
        let fd = try descriptor.begin(.write)
        defer { descriptor.end() }
        let buffer = sendBuffer
        var rest = bytes[...]
        while !rest.isEmpty {
            let chunk = rest.prefix(Self.sendCapacity)
            let count = chunk.withContiguousStorageIfAvailable { source in
                buffer.copyMemory(from: source.baseAddress!, byteCount: source.count)
                return source.count
            } ?? {
                var count = 0
                for byte in chunk {
                    buffer.storeBytes(of: byte, toByteOffset: count, as: UInt8.self)
                    count += 1
                }
                return count
            }()
            var offset = 0
            // First a non-blocking send: when the socket has room (almost always for small
            // writes) the bytes are copied into the kernel now and the kernel is done with our
            // buffer when it returns, which saves a request, a completion and a task switch.
            // Only what does not fit waits in io_uring for room.
            let direct = Glibc.send(fd, buffer, count, Int32(MSG_DONTWAIT) | Sockets.noSignal)
            if direct > 0 {
                offset = direct
            } else if direct < 0 && errno != EAGAIN && errno != EINTR {
                let code = errno
                if descriptor.isClosed { throw IOError.closed(.write) }
                throw IOError(.write, errno: code)
            }
            while offset < count {
                let start = buffer + offset
                let length = count - offset
                let completion = try await IOSubmission.perform { sqe in
                    io_uring_prep_send(sqe, fd, start, length, Sockets.noSignal)
                }
                let result = completion.result
                if result > 0 {
                    offset += Int(result)
                    continue
                }
                if descriptor.isClosed { throw IOError.closed(.write) }
                if result == -ECANCELED || result == -EINTR { throw CancellationError() }
                throw IOError(.write, errno: result == 0 ? Int32(EPIPE) : -result)
            }
            rest = rest.dropFirst(count)
        }
    }

    func shutdown(_ direction: ShutdownDirection) throws(IOError) {
        let fd = try descriptor.begin(.shutdown)
        defer { descriptor.end() }
        if Glibc.shutdown(fd, direction.how) != 0 { throw IOError(.shutdown, errno: errno) }
    }

    func setOption(_ level: Int32, _ name: Int32, _ value: Int32) throws(IOError) {
        let fd = try descriptor.begin(.setOption)
        defer { descriptor.end() }
        var value = value
        if setsockopt(fd, level, name, &value, socklen_t(MemoryLayout<Int32>.size)) != 0 {
            throw IOError(.setOption, errno: errno)
        }
    }

    func address(peer: Bool) throws(IOError) -> SocketAddress {
        let fd = try descriptor.begin(.address)
        defer { descriptor.end() }
        return try SocketAddress.of(fd, peer ? getpeername : getsockname)
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
    static func make(family: Int32, type: Int32) throws(IOError) -> Int32 {
        let fd = socket(family, type | Sockets.closeOnExec, 0)
        if fd < 0 { throw IOError(.socket, errno: errno) }
        return fd
    }

    static func setOption(_ fd: Int32, _ level: Int32, _ name: Int32, _ value: Int32) throws(IOError) {
        var value = value
        if setsockopt(fd, level, name, &value, socklen_t(MemoryLayout<Int32>.size)) != 0 {
            throw IOError(.setOption, errno: errno)
        }
    }

    /// Connects a new socket to `address` through io_uring; closes it on failure.
    static func connect(to address: SocketAddress, type: Int32) async throws -> Int32 {
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
        if completion.result == -ECANCELED || completion.result == -EINTR { throw CancellationError() }
        throw IOError(.connect, errno: -completion.result)
    }

    /// Binds and listens a new socket.
    static func listen(
        at address: SocketAddress, type: Int32, backlog: Int32, reuseAddress: Bool, reusePort: Bool
    ) throws(IOError) -> Int32 {
        let fd = try make(family: address.family, type: type)
        do throws(IOError) {
            if reuseAddress { try setOption(fd, SOL_SOCKET, SO_REUSEADDR, 1) }
            if reusePort { try setOption(fd, SOL_SOCKET, SO_REUSEPORT, 1) }
            let bound = address.withSockAddr { Glibc.bind(fd, $0, $1) }
            if bound != 0 { throw IOError(.bind, errno: errno) }
            if type == Sockets.stream, Glibc.listen(fd, backlog) != 0 {
                throw IOError(.listen, errno: errno)
            }
        } catch {
            Glibc.close(fd)
            throw error
        }
        return fd
    }
}
