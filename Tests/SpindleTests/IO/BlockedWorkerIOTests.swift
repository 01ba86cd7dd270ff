import CSpindle
import Glibc
import Logging
import Synchronization
import Testing
@testable import Spindle

// I/O whose requests sit on the ring of a worker stuck in a long job (BlockedWorkerWatch.swift:
// the watch adopts the ring and reaps it). Each test blocks one of two workers for 2 s with a
// `usleep` in a spawned task, after making sure the I/O it is about is in flight on that very
// worker's ring (a blocker that cannot arrange that fails the test rather than pass it
// vacuously), and then requires the I/O to go on within a few watch thresholds.
//
// Threshold and margins. The threshold is the default, 100 ms: long enough that a loaded machine
// (6 agents on 2 cores) does not make ordinary jobs look stuck, short enough to leave a wide gap
// below the 2 s block. The watch declares a worker stuck after 1 to 1.25 thresholds (it samples
// every quarter threshold), then reaps its ring at once and at every completion. So the longest
// wait expected is about 150 ms; the bound is 5 thresholds (500 ms), which leaves 350 ms for
// scheduling delays under load and is still 4 times below the 2 s that the same I/O waits when
// nobody reaps the ring (the behaviour before the watch adopted rings, and what these tests
// measured then).

/// The watch threshold of these tests and the bound on any wait (see the file comment).
private let threshold: Duration = .milliseconds(100)
private let bound: Duration = threshold * 5
private let blockMicroseconds: UInt32 = 2_000_000

/// Where a blocker blocked, and what was in flight on that worker's ring when it did.
private struct Blocked: Sendable {
    var worker: Int
    var inFlight: Int
}

/// Where a task started its I/O: the ring of the thread it ran on, recorded in the same job
/// that prepares the request (so that request is on that ring).
private final class StartedOn: Sendable {
    private struct State {
        var ring: ObjectIdentifier? = nil
        var started = false
        var waiter: CheckedContinuation<Void, Never>? = nil
    }
    private let state = Lock(State())

    /// Called by the I/O task just before its request: records the ring and resumes the waiter
    /// from this thread, so on a worker it takes this worker's LIFO slot (which no thief takes)
    /// and runs once this job, which prepares the request, has suspended.
    func record() {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            state.ring = Ring.current.map(ObjectIdentifier.init)
            state.started = true
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume()
    }

    /// Waits until the I/O has started, then tells whether it started on the ring the caller
    /// is on now.
    func startedHere() async -> Bool {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let started = state.withLock { state -> Bool in
                if state.started { return true }
                state.waiter = continuation
                return false
            }
            if started { continuation.resume() }
        }
        guard let ring = state.withLock({ $0.ring }), let current = Ring.current else { return false }
        return ring == ObjectIdentifier(current)
    }
}

/// Blocks the worker the calling task runs on for 2 s once `ready()` holds on it (checked
/// between yields, for up to 10 s). Returns where it blocked, or nil if `ready` never held.
private func blockOnceReady(_ ready: (Ring) -> Bool) async -> Blocked? {
    let deadline = ContinuousClock.now + .seconds(10)
    while ContinuousClock.now < deadline {
        if let ring = Ring.current, let worker = Runtime.currentWorkerIndex, ready(ring) {
            let inFlight = ring.inFlightCount
            usleep(blockMicroseconds)  // blocks the worker, not just the task
            return Blocked(worker: worker, inFlight: inFlight)
        }
        await Task.yield()
    }
    return nil
}

private func quietLogger() -> Logger { Logger(label: "test") { _ in SwiftLogNoOpLogHandler() } }

private func nanos(_ duration: Duration) -> UInt64 { duration.clampedNanoseconds }

private func milliseconds(_ nanoseconds: UInt64) -> String {
    "\(nanoseconds / 1_000_000).\(nanoseconds / 100_000 % 10) ms"
}

/// A load client on a plain thread, on no executor of the runtime under test: `count`
/// connections to 127.0.0.1:`port`, each sending 16 bytes and waiting for them to come back,
/// over and over, multiplexed with poll(2). While `measuring`, it records the longest wait for an
/// echo, including, when it stops, the waits still outstanding (a connection that never gets
/// its echo counts with the whole time it waited).
private final class EchoLoad: @unchecked Sendable {
    // @unchecked Sendable: `state` is behind its lock; the sockets are the client thread's.

    struct State {
        var roundTrips: [Int]
        var measuring = false
        var stop = false
        var longestWait: UInt64 = 0
        var longestWaitConnection = -1
        var failure: String? = nil
        var finished = false
    }

    let count: Int
    let state: Lock<State>
    static let message: [UInt8] = Array("0123456789abcdef".utf8)

    init(count: Int) {
        self.count = count
        state = Lock(State(roundTrips: [Int](repeating: 0, count: count)))
    }

    var snapshot: State { state.withLock { $0 } }

    func start(port: Int) {
        onForeignThread { [self] in run(port: port) }
    }

    func startMeasuring() { state.withLock { $0.measuring = true } }

    /// Stops the client and waits (bounded) until it has closed its sockets.
    func stop() async throws {
        state.withLock { $0.stop = true }
        try await eventually("the echo client stops", seconds: 10) { snapshot.finished }
    }

    private func fail(_ message: String) {
        state.withLock { state in
            if state.failure == nil { state.failure = message }
        }
    }

    private func run(port: Int) {
        var fds: [Int32] = []
        defer {
            for fd in fds { Glibc.close(fd) }
            state.withLock { $0.finished = true }
        }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        for _ in 0..<count {
            let fd = socket(AF_INET, spindle_sock_stream() | spindle_sock_cloexec(), 0)
            guard fd >= 0 else { return fail("socket: errno \(errno)") }
            fds.append(fd)
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
            guard connected == 0 else { return fail("connect: errno \(errno)") }
            var one: Int32 = 1
            setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        }
        var sentAt = [UInt64](repeating: 0, count: count)
        var received = [Int](repeating: 0, count: count)
        var buffer = [UInt8](repeating: 0, count: 64)
        var reply = [[UInt8]](repeating: [], count: count)
        func send(_ index: Int) -> Bool {
            sentAt[index] = monotonicNanos()
            received[index] = 0
            reply[index].removeAll(keepingCapacity: true)
            // 16 bytes always fit in an empty socket buffer: the echo of the last message has
            // been read back, so nothing of ours is queued.
            return Glibc.send(fds[index], Self.message, Self.message.count, spindle_msg_nosignal()) == Self.message.count
        }
        for index in 0..<count where !send(index) { return fail("send: errno \(errno)") }
        var polled = fds.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
        while !state.withLock({ $0.stop }) {
            let ready = poll(&polled, nfds_t(polled.count), 20)
            if ready < 0 && errno != EINTR { return fail("poll: errno \(errno)") }
            guard ready > 0 else { continue }
            for index in 0..<count where polled[index].revents != 0 {
                polled[index].revents = 0
                let got = recv(fds[index], &buffer, buffer.count, Int32(MSG_DONTWAIT))
                if got < 0 && (errno == EAGAIN || errno == EINTR) { continue }
                guard got > 0 else { return fail("connection \(index): recv returned \(got), errno \(errno)") }
                reply[index].append(contentsOf: buffer[0..<got])
                received[index] += got
                guard received[index] >= Self.message.count else { continue }
                guard reply[index] == Self.message else { return fail("connection \(index) got back \(reply[index])") }
                let wait = monotonicNanos() &- sentAt[index]
                state.withLock { state in
                    state.roundTrips[index] += 1
                    if state.measuring && wait > state.longestWait {
                        state.longestWait = wait
                        state.longestWaitConnection = index
                    }
                }
                if !send(index) { return fail("send: errno \(errno)") }
            }
        }
        let now = monotonicNanos()
        state.withLock { state in
            guard state.measuring else { return }
            for index in 0..<count where now &- sentAt[index] > state.longestWait {
                state.longestWait = now &- sentAt[index]
                state.longestWaitConnection = index
            }
        }
    }
}

extension SpindleTests {
    @Suite struct BlockedWorkerIOTests {
        @Test func echoConnectionsKeepRoundTrippingWhileAWorkerIsBlocked() async throws {
            let runtime = try Runtime(workers: 2, blockedWorkerThreshold: threshold, logger: quietLogger())
            let listener = try TCPListener.bind(host: "127.0.0.1", port: 0)
            let load = EchoLoad(count: 32)
            let server = try runtime.spawn(name: "accept loop") {
                do {
                    for try await stream in listener.connections {
                        _ = try? runtime.spawn(name: "echo") {
                            defer { stream.close() }
                            var buffer: [UInt8] = []
                            while (try? await stream.read(into: &buffer, maxBytes: 4096)) ?? 0 > 0 {
                                if (try? await stream.write(buffer)) == nil { return }
                            }
                        }
                    }
                } catch {}
            }
            defer { listener.close() }
            do {
                load.start(port: try listener.localAddress.port)
                // Every connection is up and round-tripping before anything blocks.
                try await eventually("32 connections round-tripping", seconds: 20) {
                    load.snapshot.roundTrips.allSatisfy { $0 >= 5 } || load.snapshot.failure != nil
                }
                #expect(load.snapshot.failure == nil, "\(load.snapshot.failure ?? "")")
                load.startMeasuring()
                // The blocker blocks a worker whose ring holds the reads of at least 4
                // connections (so at least 4 echoes depend on that ring).
                let blocker = try runtime.spawn(name: "blocker") { await blockOnceReady { $0.inFlightCount >= 4 } }
                let blocked = try await bounded(30, "the blocker") { await blocker.value }
                let atUnblock = load.snapshot.roundTrips
                // Round trips that waited for the blocker end only after it: let every
                // connection finish a few more, so such a wait is recorded, then stop.
                try await eventually("every connection round-trips after the block", seconds: 20) {
                    zip(load.snapshot.roundTrips, atUnblock).allSatisfy { $0 >= $1 + 3 } || load.snapshot.failure != nil
                }
                try await load.stop()
                let result = load.snapshot
                #expect(result.failure == nil, "\(result.failure ?? "")")
                let blockedWorker = try #require(blocked, "the blocker never found a worker with 4 reads in flight on its ring")
                let reapedByWatch = runtime.metrics().workers[blockedWorker.worker].cqesReapedByWatch
                #expect(
                    result.longestWait < nanos(bound),
                    "connection \(result.longestWaitConnection) waited \(milliseconds(result.longestWait)) for an echo (bound \(bound)); worker \(blockedWorker.worker) was blocked with \(blockedWorker.inFlight) operations in flight on its ring; the watch reaped \(reapedByWatch) of its completions")
                #expect(reapedByWatch > 0, "the watch reaped nothing from the blocked worker's ring")
            } catch {
                try? await load.stop()
                throw error
            }
            listener.close()
            _ = try await bounded(10, "accept loop ends") { await server.value }
            await runtime.shutdown(gracePeriod: .seconds(2))
        }

        @Test func aTimeoutAroundAReadOnABlockedWorkerFiresInTime() async throws {
            let runtime = try Runtime(workers: 2, blockedWorkerThreshold: threshold, logger: quietLogger())
            let (near, far) = try UnixStream.pair()
            defer {
                near.close()
                far.close()
            }
            let timeout: Duration = .milliseconds(300)
            let blocker = try runtime.spawn(name: "blocker") { () -> Duration? in
                for _ in 0..<20 {
                    // The read (inside its timeout) starts on this worker, so its request is on
                    // this ring and its timer on this worker's wheel; then this worker blocks.
                    let started = StartedOn()
                    let start = ContinuousClock.now
                    let reader = Task(executorPreference: runtime) { () -> Duration? in
                        do {
                            _ = try await withTimeout(timeout) { () async throws -> [UInt8]? in
                                started.record()  // same job as the request's preparation
                                return try await near.read()
                            }
                            return nil
                        } catch is TimeoutError {
                            return ContinuousClock.now - start
                        } catch {
                            return nil
                        }
                    }
                    if await started.startedHere() {
                        usleep(blockMicroseconds)  // blocks the worker, not just the task
                        return await reader.value
                    }
                    // One of the two was stolen by the other worker: try again.
                    reader.cancel()
                    _ = await reader.value
                }
                return nil
            }
            let outcome = try await bounded(30, "the blocker") { await blocker.value }
            let took = try #require(outcome, "no read was in flight on the blocker's worker, or it did not time out")
            // Expected: the timeout plus about one reap; when nobody reaped the blocked ring,
            // the request (and its cancel) waited for the 2 s block.
            #expect(took < timeout + bound, "the read timed out after \(took) (timeout \(timeout), bound \(timeout + bound))")
            await runtime.shutdown(gracePeriod: .seconds(2))
        }

        @Test func connectionsAreAcceptedWhileTheAcceptingWorkerIsBlocked() async throws {
            let runtime = try Runtime(workers: 2, blockedWorkerThreshold: threshold, logger: quietLogger())
            let connections = 3
            final class Progress: Sendable {
                let port = Lock<Int?>(nil)  // the port, once the worker is about to block
                let gaveUp = Atomic<Bool>(false)
            }
            let progress = Progress()
            let blocker = try runtime.spawn(name: "blocker") { () -> ContinuousClock.Instant? in
                defer { progress.gaveUp.store(progress.port.withLock { $0 } == nil, ordering: .releasing) }
                for _ in 0..<20 {
                    // The multishot accept is armed on this worker's ring; then it blocks.
                    guard let listener = try? TCPListener.bind(host: "127.0.0.1", port: 0),
                        let port = try? listener.localAddress.port
                    else { return nil }
                    defer { listener.close() }
                    let started = StartedOn()
                    let acceptor = Task(executorPreference: runtime) { () -> ContinuousClock.Instant? in
                        var streams: [TCPStream] = []
                        defer { for stream in streams { stream.close() } }
                        started.record()  // same job as the first `next()`, which arms the accept
                        do {
                            for try await stream in listener.connections {
                                streams.append(stream)
                                if streams.count == connections { return ContinuousClock.now }
                            }
                        } catch {}
                        return nil
                    }
                    if await started.startedHere() {
                        progress.port.withLock { $0 = port }
                        usleep(blockMicroseconds)  // blocks the worker, not just the task
                        return await acceptor.value
                    }
                    // One of the two was stolen by the other worker: try again.
                    listener.close()
                    acceptor.cancel()
                    _ = await acceptor.value
                }
                return nil
            }
            do {
                try await eventually("the accepting worker blocks", seconds: 20) {
                    progress.port.withLock { $0 } != nil || progress.gaveUp.load(ordering: .acquiring)
                }
            } catch {
                _ = try? await bounded(30, "the blocker") { await blocker.value }
                await runtime.shutdown(gracePeriod: .seconds(2))
                throw error
            }
            guard let port = progress.port.withLock({ $0 }) else {
                _ = try? await bounded(30, "the blocker") { await blocker.value }
                await runtime.shutdown(gracePeriod: .seconds(2))
                Issue.record("the accept never was armed on the blocker's worker")
                return
            }
            // Connect from a plain thread (blocking connects complete in the kernel's backlog).
            let connected = ContinuousClock.now
            let clients = Lock<[Int32]>([])
            onForeignThread {
                for _ in 0..<connections {
                    var address = sockaddr_in()
                    address.sin_family = sa_family_t(AF_INET)
                    address.sin_port = in_port_t(UInt16(port).bigEndian)
                    address.sin_addr.s_addr = inet_addr("127.0.0.1")
                    let fd = socket(AF_INET, spindle_sock_stream() | spindle_sock_cloexec(), 0)
                    _ = withUnsafePointer(to: &address) {
                        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                            Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                        }
                    }
                    clients.withLock { $0.append(fd) }
                }
            }
            let acceptedAt = try await bounded(30, "the blocker") { await blocker.value }
            try await eventually("the client thread is done", seconds: 10) { clients.withLock { $0.count } == connections }
            for fd in clients.withLock({ $0 }) { Glibc.close(fd) }
            let accepted = try #require(acceptedAt, "the connections were not accepted")
            // When nobody reaped the blocked ring, the accepts waited for the 2 s block.
            #expect(accepted - connected < bound, "\(connections) connections were accepted \(accepted - connected) after they connected (bound \(bound))")
            await runtime.shutdown(gracePeriod: .seconds(2))
        }
    }
}
