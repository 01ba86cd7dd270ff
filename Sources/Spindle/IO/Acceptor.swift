// Accepting connections on a listening socket (TCP or Unix-domain).
//
// `accept()` is one io_uring ACCEPT per connection. The `connections` sequence instead keeps a
// multishot ACCEPT armed on the ring of a task iterating it: the kernel posts one completion
// per connection without a new request each time. Completions arrive on the ring's thread while
// the iterating tasks may be anywhere (or not waiting at all), so they meet in `AcceptQueue`
// behind a lock: accepted descriptors queue there until a `next()` takes them, and waiting
// `next()` calls are resumed directly, oldest first (several tasks may iterate at once). The
// queue is bounded: past `bufferLimit` untaken connections the request is cancelled, and the
// kernel's backlog holds the rest until a consumer catches up (see AcceptQueue.swift). A
// cancelled `next()` leaves the request armed; connections that arrive later wait in the queue
// for the next call, so none is lost. When the multishot request ends (the kernel ends it on an
// error, or on its own), the next `next()` arms a new one.
//
// Cancellation of a waiting `next()`: its handler removes it by id and resumes it. A task
// cancelled before it registers (already cancelled, or just before) runs the handler first,
// which finds nothing; the registration checks `Task.isCancelled` under the lock for that case
// (the flag is set before the handler runs, and the lock orders the two).
//
// On epoll there is no multishot request: `next()` is one non-blocking accept4 per connection,
// waiting for the listener's readiness in between (ReadinessIO.swift).
//
// Descriptor exhaustion (EMFILE, ENFILE, ENOBUFS, ENOMEM) is not fatal and must not spin: the
// acceptor backs off (5 ms, doubling to 500 ms) and tries again, and the rest of the runtime
// keeps serving the connections it has. Go's net/http does the same. An episode of exhaustion
// is logged twice, not once per retry: a warning when it begins (the errno and the listener)
// and a notice when an accept succeeds again (how many back-offs it took, how long). A listener
// out of descriptors under load retries every 500 ms; a line per retry would flood the log
// when the operator most needs to read it.

internal import CSpindle
internal import CURing
import Glibc
import Logging
import Synchronization

final class Acceptor: CompletionSink, @unchecked Sendable {
    // @unchecked Sendable: `state` is behind its lock; `descriptor` is Sendable.

    let descriptor: Descriptor
    /// Times accept backed off because descriptors or memory ran out (for tests and metrics).
    let backoffs = Atomic<UInt64>(0)
    /// Where an exhaustion episode is reported (the listener's `logger`).
    let logger: Logger
    /// The exhaustion episode in progress, if any: when it began and its back-offs so far.
    private let episode = Lock<(start: UInt64, backoffs: Int)?>(nil)
    /// Whether `episode` is set, so that an accept checks it without the lock; written only
    /// inside `episode`'s lock, so the two agree there. Relaxed: a stale false after an episode
    /// began only delays its end to the next accept; a stale true costs one lock.
    private let inEpisode = Atomic<Bool>(false)
    /// The most accepted connections that wait untaken before the multishot request stops
    /// (64, like a modest listen backlog: enough to ride out a consumer busy for a moment).
    static let bufferLimit = 64

    typealias Waiter = UnsafeContinuation<AcceptDelivery, Never>
    /// Where a multishot request is armed: its ring and user_data (to cancel it).
    struct ArmedRequest {
        let ring: Ring
        let userData: UInt64
    }
    private typealias Queue = AcceptQueue<Waiter, ArmedRequest>

    private let state = Lock(Queue(limit: Acceptor.bufferLimit))
    /// Whether the kernel accepts multishot ACCEPT (cleared at the first refusal; internal so
    /// that tests can take the single-shot path on a kernel that has multishot). Relaxed: a
    /// stale true costs one more refused request.
    static let multishotWorks = Atomic<Bool>(true)

    init(descriptor: Descriptor, logger: Logger) {
        self.descriptor = descriptor
        self.logger = logger
    }

    deinit {
        // Descriptors accepted but never taken.
        for fd in state.withLock({ $0.drainReady() }) where fd >= 0 { Glibc.close(fd) }
    }

    /// Connections accepted and not yet taken, and tasks waiting (for tests; on epoll the
    /// waiters are the listener's readiness waiters).
    var queued: (ready: Int, waiters: Int) {
        let (ready, waiters) = state.withLock { ($0.readyCount, $0.waiterCount) }
        return (ready, waiters + descriptor.readinessWaiters)
    }

    static func isExhaustion(_ code: Int32) -> Bool {
        code == EMFILE || code == ENFILE || code == ENOBUFS || code == ENOMEM
    }

    private static func isRetryable(_ code: Int32) -> Bool {
        code == ECONNABORTED || code == EINTR || code == EAGAIN || code == EPROTO
    }

    /// One connection's descriptor, with a single-shot ACCEPT per try.
    nonisolated(nonsending) func acceptOne() async throws -> Int32 {
        var backoff: Duration = .milliseconds(5)
        while true {
            let fd = try descriptor.begin(.accept)
            let result: Int32
            do throws(any Error) {
                if let epoll = try IOSubmission.epollReactor() {
                    // On epoll (ReadinessIO.swift) the listener is non-blocking: a readiness
                    // event may be taken by another acceptor first.
                    let readiness = descriptor.readiness(on: epoll, nonBlocking: true)
                    result = Int32(await ReadinessIO.perform(readiness, .read) {
                        Int(spindle_accept4(fd, Sockets.closeOnExec))
                    })
                } else {
                    result = try await IOSubmission.perform { sqe in
                        io_uring_prep_accept(sqe, fd, nil, nil, Sockets.closeOnExec)
                    }.result
                }
            } catch {
                descriptor.end()
                throw error
            }
            descriptor.end()
            if result >= 0 { return accepted(result) }  // an accept that raced a cancel still delivers
            if descriptor.isClosed { throw SpindleIOError.closed(.accept) }
            if result == -ECANCELED { throw CancellationError() }
            try await handleFailure(-result, backoff: &backoff)
        }
    }

    /// Backs off on exhaustion, returns on a retryable error, throws the rest.
    private nonisolated(nonsending) func handleFailure(_ code: Int32, backoff: inout Duration) async throws {
        if Self.isRetryable(code) { return }
        guard Self.isExhaustion(code) else { throw SpindleIOError(.accept, errno: code) }
        backoffs.add(1, ordering: .relaxed)  // relaxed: a statistic
        let begins = episode.withLock { current -> Bool in
            guard current == nil else {
                current!.backoffs += 1
                return false
            }
            current = (monotonicNanos(), 1)
            inEpisode.store(true, ordering: .relaxed)
            return true
        }
        if begins {
            logger.warning(
                "accept is out of descriptors or memory: backing off and retrying (logged once until it recovers)",
                metadata: [
                    "errno": "\(code)", "error": "\(String(cString: strerror(code)))",
                    "listener": "\(descriptor.fd)",
                ])
        }
        try await Task.sleep(for: backoff)
        backoff = min(backoff * 2, .milliseconds(500))
    }

    /// Returns `fd`, ending an exhaustion episode if one is in progress (and logging its end).
    private func accepted(_ fd: Int32) -> Int32 {
        guard inEpisode.load(ordering: .relaxed) else { return fd }
        let ended = episode.withLock { current in
            defer { current = nil }
            inEpisode.store(false, ordering: .relaxed)
            return current
        }
        guard let ended else { return fd }
        let milliseconds = (monotonicNanos() &- ended.start) / 1_000_000
        logger.notice(
            "accept recovered from descriptor exhaustion",
            metadata: ["backoffs": "\(ended.backoffs)", "duration_ms": "\(milliseconds)", "listener": "\(descriptor.fd)"])
        return fd
    }

    /// The next connection from the multishot request (arming it if needed).
    nonisolated(nonsending) func next() async throws -> Int32 {
        var backoff: Duration = .milliseconds(5)
        while true {
            try Task.checkCancellation()
            if descriptor.isClosed { throw SpindleIOError.closed(.accept) }
            // Off a ring (a plain Swift task, or a thread on epoll), single-shot accepts, which
            // move onto the I/O loop or wait for readiness; the same where the kernel has no
            // multishot accept. Connections an earlier
            // multishot request accepted are taken first.
            guard let ring = Ring.current, Self.multishotWorks.load(ordering: .relaxed) else {
                if let fd = state.withLock({ $0.takeReady() }) { return accepted(fd) }
                return try await acceptOne()
            }
            let id = state.withLock { $0.makeID() }
            let delivery = await withTaskCancellationHandler {
                await withUnsafeContinuation { (continuation: Waiter) in
                    let take = state.withLock { queue in
                        queue.take(id: id, waiter: continuation, isCancelled: Task.isCancelled)
                    }
                    switch take {
                    case .connection(let fd, let arm):
                        if arm { self.arm(on: ring) }
                        continuation.resume(returning: .connection(fd))
                    case .cancelled:
                        continuation.resume(returning: .cancelled)
                    case .wait(let arm):
                        if arm { self.arm(on: ring) }
                    }
                }
            } onCancel: {
                state.withLock { $0.removeWaiter(id) }?.resume(returning: .cancelled)
            }
            switch delivery {
            case .connection(let fd):
                return accepted(fd)
            case .cancelled:
                throw CancellationError()
            case .retry:
                continue
            case .failure(let code):
                if descriptor.isClosed { throw SpindleIOError.closed(.accept) }
                if code == ECANCELED { continue }  // the request was cancelled under us: re-arm
                if code == EINVAL {
                    // Multishot accept needs Linux 5.19; an older kernel refuses the flag. From
                    // then on, this process accepts one request per connection.
                    Self.multishotWorks.store(false, ordering: .relaxed)
                    return try await acceptOne()
                }
                try await handleFailure(code, backoff: &backoff)
            }
        }
    }

    /// Closes the listener: the descriptor (which ends a pending single-shot accept), and the
    /// armed multishot request through its ring's cancel inbox (which `shutdown(2)` does not
    /// end on an AF_UNIX listener). The iterators then end with ``SpindleIOError/Kind/closed``.
    func close() {
        descriptor.close()
        if let request = state.withLock({ $0.closing() }) { request.ring.requestCancel(request.userData) }
    }

    /// On `ring`'s thread, after `take` claimed the arming: arms the multishot request.
    private func arm(on ring: Ring) {
        let fd: Int32
        do throws(SpindleIOError) {
            fd = try descriptor.begin(.accept)
        } catch {
            // Closed meanwhile: nothing is armed; the waiters learn it from the closed check.
            for waiter in state.withLock({ $0.armFailed() }) { waiter.resume(returning: .failure(EBADF)) }
            return
        }
        let userData = IOSubmission.startMultishot(on: ring, sink: self) { sqe in
            spindle_prep_multishot_accept(sqe, fd, Sockets.closeOnExec)
        }
        if let request = state.withLock({ $0.didArm(ArmedRequest(ring: ring, userData: userData)) }) {
            request.ring.requestCancel(request.userData)  // closed while arming
        }
    }

    /// Ring thread: one completion of the multishot request.
    func complete(result: Int32, hasMore: Bool) {
        let actions = state.withLock { $0.complete(result: result, hasMore: hasMore) }
        if !hasMore { descriptor.end() }
        // Through the ring's inbox, submitted with its next batch (we are inside its reap).
        if let request = actions.cancel { request.ring.requestCancel(request.userData) }
        if let (waiter, delivery) = actions.deliver { waiter.resume(returning: delivery) }
        for waiter in actions.retry { waiter.resume(returning: .retry) }
    }
}
