// UDP through io_uring SENDMSG/RECVMSG, or on epoll non-blocking sendmsg/recvmsg with a
// readiness wait (ReadinessIO.swift). Each operation's message header, address and buffer
// live in one heap block (`Message`) owned by the awaiting call, which resumes only after the
// completion: the kernel never sees freed memory. A request that ends with -EINTR did nothing
// and is submitted again; only -ECANCELED means the task was cancelled.

internal import CURing
import Glibc

/// A UDP socket.
///
/// ```swift
/// let socket = try UDPSocket.bind(host: "127.0.0.1", port: 0)
/// try await socket.send(Array("hi".utf8), to: peer)
/// let (bytes, sender) = try await socket.receive()
/// ```
public final class UDPSocket: Sendable {
    let descriptor: Descriptor

    private init(fd: Int32) {
        descriptor = Descriptor(fd, isSocket: true)
    }

    deinit { descriptor.close() }

    /// Binds to `host:port` (port 0 picks a free port).
    public static func bind(host: String = "127.0.0.1", port: Int, reuseAddress: Bool = false) throws -> UDPSocket {
        let address = try SpindleSocketAddress(host: host, port: port)
        let fd = try Sockets.listen(
            at: address, type: Sockets.datagram, backlog: 0, reuseAddress: reuseAddress, reusePort: false)
        return UDPSocket(fd: fd)
    }

    /// The bound address.
    public var localAddress: SpindleSocketAddress {
        get throws {
            let fd = try descriptor.begin(.address)
            defer { descriptor.end() }
            return try SpindleSocketAddress.of(fd, getsockname)
        }
    }

    /// Sends one datagram to `address`. Returns the bytes sent.
    @discardableResult
    public nonisolated(nonsending) func send(_ bytes: [UInt8], to address: SpindleSocketAddress) async throws -> Int {
        let message = Message(capacity: max(bytes.count, 1))
        defer { message.free() }
        bytes.withUnsafeBytes { message.buffer.copyMemory(from: $0.baseAddress ?? UnsafeRawPointer(message.buffer), byteCount: bytes.count) }
        address.withSockAddr { pointer, length in
            UnsafeMutableRawPointer(message.address).copyMemory(from: pointer, byteCount: Int(length))
            message.header.pointee.msg_namelen = length
        }
        message.iovec.pointee.iov_len = bytes.count
        let result = try await descriptor.using(.send) { fd in
            if let epoll = try IOSubmission.epollReactor() {
                return Int32(await ReadinessIO.perform(descriptor.readiness(on: epoll), .write) {
                    sendmsg(fd, message.header, ReadinessIO.dontWait | Sockets.noSignal)
                })
            }
            while true {
                let result = try await IOSubmission.perform { sqe in
                    io_uring_prep_sendmsg(sqe, fd, message.header, UInt32(Sockets.noSignal))
                }.result
                if result != -EINTR { return result }
            }
        }
        if result >= 0 { return Int(result) }
        if descriptor.isClosed { throw SpindleIOError.closed(.send) }
        if result == -ECANCELED { throw CancellationError() }
        throw SpindleIOError(.send, errno: -result)
    }

    /// Receives one datagram (truncated to `maxBytes`, at most 64 KiB: no datagram is larger)
    /// and its sender.
    public nonisolated(nonsending) func receive(maxBytes: Int = 64 * 1024) async throws -> (bytes: [UInt8], sender: SpindleSocketAddress) {
        let message = Message(capacity: min(max(maxBytes, 1), 64 * 1024))
        defer { message.free() }
        let result = try await descriptor.using(.receive) { fd in
            if let epoll = try IOSubmission.epollReactor() {
                return Int32(await ReadinessIO.perform(descriptor.readiness(on: epoll), .read) {
                    message.header.pointee.msg_namelen = socklen_t(MemoryLayout<sockaddr_storage>.size)
                    return recvmsg(fd, message.header, ReadinessIO.dontWait)
                })
            }
            while true {
                // The header's name length is an in-out field: reset it for each attempt.
                message.header.pointee.msg_namelen = socklen_t(MemoryLayout<sockaddr_storage>.size)
                let result = try await IOSubmission.perform { sqe in
                    io_uring_prep_recvmsg(sqe, fd, message.header, 0)
                }.result
                if result != -EINTR { return result }
            }
        }
        if result >= 0 {
            if descriptor.isClosed && result == 0 { throw SpindleIOError.closed(.receive) }
            let bytes = [UInt8](UnsafeRawBufferPointer(start: message.buffer, count: Int(result)))
            return (bytes, SpindleSocketAddress(storage: message.address.pointee, length: message.header.pointee.msg_namelen))
        }
        if descriptor.isClosed { throw SpindleIOError.closed(.receive) }
        if result == -ECANCELED { throw CancellationError() }
        throw SpindleIOError(.receive, errno: -result)
    }

    /// Closes the socket; a pending `receive` ends with ``SpindleIOError/Kind/closed``.
    public func close() {
        descriptor.close()
    }
}

/// One datagram operation's kernel-visible memory: header, one iovec, address, payload.
private struct Message {
    let header: UnsafeMutablePointer<msghdr>
    let iovec: UnsafeMutablePointer<iovec>
    let address: UnsafeMutablePointer<sockaddr_storage>
    let buffer: UnsafeMutableRawPointer

    init(capacity: Int) {
        header = .allocate(capacity: 1)
        iovec = .allocate(capacity: 1)
        address = .allocate(capacity: 1)
        address.initialize(to: sockaddr_storage())
        buffer = .allocate(byteCount: capacity, alignment: 16)
        iovec.initialize(to: Glibc.iovec(iov_base: buffer, iov_len: capacity))
        header.initialize(to: msghdr())
        header.pointee.msg_name = UnsafeMutableRawPointer(address)
        header.pointee.msg_namelen = socklen_t(MemoryLayout<sockaddr_storage>.size)
        header.pointee.msg_iov = iovec
        header.pointee.msg_iovlen = 1
    }

    /// Only after the operation's completion has arrived.
    func free() {
        header.deallocate()
        iovec.deallocate()
        address.deallocate()
        buffer.deallocate()
    }
}
