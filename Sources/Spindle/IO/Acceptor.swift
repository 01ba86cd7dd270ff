// Accepting connections on a listening socket (TCP or Unix-domain).
//
// `accept()` is one io_uring ACCEPT per connection. The `connections` sequence instead keeps a
// multishot ACCEPT armed on the ring of the task iterating it: the kernel posts one completion
// per connection without a new request each time. Completions arrive on the ring's thread while
// the iterating task may be anywhere (or not waiting at all), so they meet in a small locked
// state: accepted descriptors queue there until `next()` takes them, and a waiting `next()` is
// resumed directly. A cancelled `next()` leaves the request armed; connections that arrive
// later wait in the queue for the next call, so none is lost. When the multishot request ends
// (the kernel ends it on an error, or on its own), the next `next()` arms a new one.
//
// Descriptor exhaustion (EMFILE, ENFILE, ENOBUFS, ENOMEM) is not fatal and must not spin: the
// acceptor backs off (5 ms, doubling to 500 ms) and tries again, and the rest of the runtime
// keeps serving the connections it has. Go's net/http does the same.

import CSpindle
import CURing
import Glibc
import Synchronization

final class Acceptor: CompletionSink, @unchecked Sendable {
    // @unchecked Sendable: `state` is behind its lock; `descriptor` is Sendable.

    let descriptor: Descriptor
    /// Times accept backed off because descriptors or memory ran out (for tests and metrics).
    let backoffs = Atomic<UInt64>(0)

    private struct State {
        var ready: [Int32] = []
        var waiter: UnsafeContinuation<Int32, Never>? = nil
        /// The armed multishot request (ring and user_data), nil when none.
        var armed: (ring: Ring, userData: UInt64)? = nil
    }
    private let state = Lock(State())
    /// Whether the kernel accepts multishot ACCEPT (cleared at the first refusal; internal so
    /// that tests can take the single-shot path on a kernel that has multishot). Relaxed: a
    /// stale true costs one more refused request.
    static let multishotWorks = Atomic<Bool>(true)
    /// Marks a `next()` resumed by its cancellation rather than by a completion.
    private static let cancelledMarker = Int32.min

    init(descriptor: Descriptor) {
        self.descriptor = descriptor
    }

    deinit {
        // Descriptors accepted but never taken.
        for fd in state.withLock({ $0.ready }) where fd >= 0 { Glibc.close(fd) }
    }

    static func isExhaustion(_ code: Int32) -> Bool {
        code == EMFILE || code == ENFILE || code == ENOBUFS || code == ENOMEM
    }

    private static func isRetryable(_ code: Int32) -> Bool {
        code == ECONNABORTED || code == EINTR || code == EAGAIN || code == EPROTO
    }

    /// One connection's descriptor, with a single-shot ACCEPT per try.
    func acceptOne() async throws -> Int32 {
        var backoff: Duration = .milliseconds(5)
        while true {
            let fd = try descriptor.begin(.accept)
            let completion: IOCompletion
            do {
                completion = try await IOSubmission.perform { sqe in
                    io_uring_prep_accept(sqe, fd, nil, nil, Sockets.closeOnExec)
                }
            } catch {
                descriptor.end()
                throw error
            }
            descriptor.end()
            let result = completion.result
            if result >= 0 { return result }  // an accept that raced a cancel still delivers
            if descriptor.isClosed { throw IOError.closed(.accept) }
            if result == -ECANCELED { throw CancellationError() }
            try await handleFailure(-result, backoff: &backoff)
        }
    }

    /// Backs off on exhaustion, returns on a retryable error, throws the rest.
    private func handleFailure(_ code: Int32, backoff: inout Duration) async throws {
        if Self.isRetryable(code) { return }
        guard Self.isExhaustion(code) else { throw IOError(.accept, errno: code) }
        backoffs.add(1, ordering: .relaxed)  // relaxed: a statistic
        try await Task.sleep(for: backoff)
        backoff = min(backoff * 2, .milliseconds(500))
    }

    /// The next connection from the multishot request (arming it if needed).
    func next() async throws -> Int32 {
        var backoff: Duration = .milliseconds(5)
        while true {
            try Task.checkCancellation()
            if descriptor.isClosed { throw IOError.closed(.accept) }
            // Off a ring (a plain Swift task), single-shot accepts, which move onto the I/O
            // loop; the same where the kernel has no multishot accept.
            guard let ring = Ring.current, Self.multishotWorks.load(ordering: .relaxed) else {
                return try await acceptOne()
            }
            let result: Int32 = await withTaskCancellationHandler {
                await withUnsafeContinuation { (continuation: UnsafeContinuation<Int32, Never>) in
                    let ready: Int32? = state.withLock { state in
                        if !state.ready.isEmpty { return state.ready.removeFirst() }
                        state.waiter = continuation
                        return nil
                    }
                    if let ready {
                        continuation.resume(returning: ready)
                        return
                    }
                    armIfNeeded(on: ring)
                }
            } onCancel: {
                let waiter = state.withLock { state -> UnsafeContinuation<Int32, Never>? in
                    defer { state.waiter = nil }
                    return state.waiter
                }
                waiter?.resume(returning: Self.cancelledMarker)
            }
            if result >= 0 { return result }
            if result == Self.cancelledMarker { throw CancellationError() }
            if descriptor.isClosed { throw IOError.closed(.accept) }
            if result == -ECANCELED { continue }  // the request was cancelled under us: re-arm
            if result == -EINVAL {
                // Multishot accept needs Linux 5.19; an older kernel refuses the flag. From then
                // on, this process accepts one request per connection.
                Self.multishotWorks.store(false, ordering: .relaxed)
                return try await acceptOne()
            }
            try await handleFailure(-result, backoff: &backoff)
        }
    }

    /// On `ring`'s thread: arms the multishot request unless one is armed.
    private func armIfNeeded(on ring: Ring) {
        let needed = state.withLock { state -> Bool in
            if state.armed != nil { return false }
            state.armed = (ring, 0)
            return true
        }
        guard needed else { return }
        let fd: Int32
        do throws(IOError) {
            fd = try descriptor.begin(.accept)
        } catch {
            // Closed meanwhile: nothing is armed; the waiter learns it from the closed check.
            let waiter = state.withLock { state -> UnsafeContinuation<Int32, Never>? in
                state.armed = nil
                defer { state.waiter = nil }
                return state.waiter
            }
            waiter?.resume(returning: -EBADF)
            return
        }
        let userData = IOSubmission.startMultishot(on: ring, sink: self) { sqe in
            spindle_prep_multishot_accept(sqe, fd, Sockets.closeOnExec)
        }
        state.withLock { state in
            if state.armed?.ring === ring { state.armed = (ring, userData) }
        }
    }

    /// Ring thread: one completion of the multishot request.
    func complete(result: Int32, hasMore: Bool) {
        let waiter = state.withLock { state -> UnsafeContinuation<Int32, Never>? in
            if !hasMore { state.armed = nil }
            if let waiter = state.waiter {
                state.waiter = nil
                return waiter
            }
            // Nobody waits: keep connections for later; errors only matter to a waiter.
            if result >= 0 { state.ready.append(result) }
            return nil
        }
        if !hasMore { descriptor.end() }
        waiter?.resume(returning: result)
    }
}
