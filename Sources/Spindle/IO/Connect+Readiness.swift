// Connecting on epoll (ReadinessIO.swift): the socket is made non-blocking for the connect,
// which then completes asynchronously (EINPROGRESS); the socket becomes writable (or reports
// an error) when the handshake ends, and SO_ERROR says how. The socket is made blocking again
// afterwards, like every connected socket Spindle hands out (its reads and writes pass
// MSG_DONTWAIT), and the registration used for the wait is removed again: the stream makes its
// own on its first wait. A Unix socket whose listener's backlog is full fails a non-blocking
// connect with EAGAIN and is never signalled; that is retried after a short back-off (1 ms,
// doubling to 50 ms), where io_uring's blocking connect waits in the kernel.

internal import CSpindle
import Glibc

extension Sockets {
    /// One attempt of `connect` on epoll: the socket, or nil after EINTR (never: a
    /// non-blocking connect interrupted goes on in the background and is waited for).
    static nonisolated(nonsending) func connectWhenReady(to address: SpindleSocketAddress, type: Int32, on epoll: EpollReactor) async throws -> Int32? {
        if Task.isCancelled { throw CancellationError() }
        let fd = try make(family: address.family, type: type | spindle_sock_nonblock())
        var code: Int32 = address.withSockAddr { Glibc.connect(fd, $0, $1) } == 0 ? 0 : errno
        if code == EINPROGRESS || code == EINTR || code == EAGAIN {
            let readiness = Readiness(fd: fd, reactor: epoll)
            code = await finishConnect(fd, to: address, readiness, backlogFull: code == EAGAIN)
            readiness.deregister()
        }
        if code == 0 {
            _ = spindle_set_nonblocking(fd, 0)
            return fd
        }
        Glibc.close(fd)
        if code == ECANCELED { throw CancellationError() }
        throw SpindleIOError(.connect, errno: code)
    }

    /// Waits for the connect under way on `fd` to end: 0 when connected, else its errno
    /// (ECANCELED when the task is cancelled meanwhile).
    private static nonisolated(nonsending) func finishConnect(
        _ fd: Int32, to address: SpindleSocketAddress, _ readiness: Readiness, backlogFull: Bool
    ) async -> Int32 {
        var backlogFull = backlogFull
        var backoff: Duration = .milliseconds(1)
        while backlogFull {
            do {
                try await Task.sleep(for: backoff)
            } catch {
                return ECANCELED
            }
            backoff = min(backoff * 2, .milliseconds(50))
            if address.withSockAddr({ Glibc.connect(fd, $0, $1) }) == 0 { return 0 }
            let code = errno
            if code == EISCONN { return 0 }
            if code == EINPROGRESS || code == EINTR { backlogFull = false } else if code != EAGAIN { return code }
        }
        let registered = readiness.ensureRegistered()
        if registered != 0 { return registered }
        var sequence: UInt64 = 0  // the registration reports the socket's state as an event
        while true {
            if Task.isCancelled { return ECANCELED }
            switch await readiness.wait(.write, after: sequence) {
            case .ready: break
            case .cancelled: return ECANCELED
            case .closed: return EBADF
            }
            sequence = readiness.sequence(.write)
            var error: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            if getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) != 0 { return errno }
            if error != 0 { return error }
            var peer = sockaddr_storage()
            var peerLength = socklen_t(MemoryLayout<sockaddr_storage>.size)
            let connected = withUnsafeMutablePointer(to: &peer) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getpeername(fd, $0, &peerLength) }
            }
            if connected == 0 { return 0 }
            if errno != ENOTCONN { return errno }
            // Not connected yet (an event for something else): wait for the next one.
        }
    }
}
