import CSpindle
import CURing
import Glibc
import Synchronization
import Testing
@testable import Spindle

/// The executor the calling task runs on (its runtime or event loop).
func currentSpindleExecutor() -> any TaskExecutor {
    if let runtime = Runtime.current { return runtime }
    return SpindleEventLoop.current!
}

/// Sets an `Int32` socket option on a stream's descriptor.
private func setIntOption(_ core: StreamCore, _ name: Int32, _ value: Int32) throws {
    try core.setOption(SOL_SOCKET, name, value)
}

/// Bytes queued in a stream socket: `SIOCINQ` (received, unread) or `SIOCOUTQ` (unsent).
private func queuedBytes(_ core: StreamCore, outgoing: Bool) -> Int {
    guard let fd = try? core.descriptor.begin(.address) else { return -1 }
    defer { core.descriptor.end() }
    var count: Int32 = 0
    // SIOCINQ is FIONREAD; SIOCOUTQ is TIOCOUTQ.
    let request: UInt = outgoing ? 0x5411 : UInt(FIONREAD)
    return ioctl(fd, request, &count) == 0 ? Int(count) : -1
}

/// The name of the error `body` throws, or "ok".
private func outcome(_ body: () async throws -> Void) async -> String {
    do {
        try await body()
        return "ok"
    } catch let error as SpindleIOError {
        return "SpindleIOError(\(error.kind), errno \(error.errno))"
    } catch {
        return "\(type(of: error))"
    }
}

extension SpindleTests {
    /// How I/O maps the kernel's results: -EINTR is retried (it is never a cancellation), a
    /// partly sent write says how much it sent, start-up failures are not remembered forever,
    /// and signal waiters do not steal each other's wake-ups.
    @Suite struct ErrnoTests {
        /// Whether the kernel can inject results (Linux 6.9); the injection tests need it.
        private static func injectionSupported() async throws -> Bool {
            if try await FaultInjection.isSupported() { return true }
            print("ErrnoTests: this kernel cannot inject NOP results (needs Linux 6.9); skipped")
            return false
        }

        // The -EINTR tests rewrite io_uring requests (FaultInjection.swift), so they run on the
        // ring only; on epoll a system call interrupted by a signal is retried in
        // ReadinessIO.perform.
        /// A receive that the kernel ends with -EINTR is made again and returns the data.
        /// (It became `CancellationError` in a task nobody had cancelled.)
        @Test(arguments: Host.ioUring)
        func anInterruptedReceiveIsRetriedNotTakenForCancellation(host: Host) async throws {
            let (result, replaced) = try await host.run(20) { () -> (String, Int) in
                guard try await Self.injectionSupported() else { return ("skipped", 1) }
                let (client, server) = try await connectedPair()
                defer {
                    FaultInjection.reset()
                    client.close()
                    server.close()
                }
                let before = FaultInjection.replacedCount
                FaultInjection.inject(-EINTR, into: IORING_OP_RECV, fd: server.core.descriptor.fd)
                var received: [UInt8] = []
                let result = await outcome {
                    async let reading = server.read()
                    try await client.write([1, 2, 3])
                    received = try await reading ?? []
                }
                return (result == "ok" ? "\(received)" : result, FaultInjection.replacedCount - before)
            }
            #expect(replaced == 1, "the receive was interrupted once")
            #expect(result == "[1, 2, 3]" || result == "skipped", "got \(result)")
        }

        /// A send that the kernel ends with -EINTR (while the write waits for room) is made
        /// again, and every byte arrives in order. (It became `CancellationError`.)
        @Test(arguments: Host.ioUring)
        func anInterruptedSendIsRetriedAndEveryByteArrives(host: Host) async throws {
            let (result, replaced) = try await host.run(30) { () -> (String, Int) in
                guard try await Self.injectionSupported() else { return ("skipped", 1) }
                let (client, server) = try await connectedPair()
                defer {
                    FaultInjection.reset()
                    client.close()
                    server.close()
                }
                // Small buffers, so the write soon has to wait in io_uring for room.
                try setIntOption(client.core, SO_SNDBUF, 32 * 1024)
                try setIntOption(server.core, SO_RCVBUF, 32 * 1024)
                let before = FaultInjection.replacedCount
                FaultInjection.inject(-EINTR, into: IORING_OP_SEND, fd: client.core.descriptor.fd)
                let message = pattern(1 << 20, seed: 3)
                var received: [UInt8] = []
                let result = await outcome {
                    async let writing: Void = {
                        do {
                            try await client.write(message)
                        } catch {
                            client.close()  // so that the reader does not wait for the rest
                            throw error
                        }
                    }()
                    received = (try? await server.readExactly(message.count)) ?? []
                    try await writing
                }
                return (result == "ok" ? "intact: \(received == message)" : result, FaultInjection.replacedCount - before)
            }
            #expect(replaced == 1, "the send was interrupted once")
            #expect(result == "intact: true" || result == "skipped", "got \(result)")
        }

        /// A connect that the kernel ends with -EINTR is made again and connects. (It became
        /// `CancellationError`.)
        @Test(arguments: Host.ioUring)
        func anInterruptedConnectIsRetriedAndConnects(host: Host) async throws {
            let descriptorsBefore = await descriptorBaseline()
            let (result, replaced) = try await host.run(20) { () -> (String, Int) in
                guard try await Self.injectionSupported() else { return ("skipped", 1) }
                let (listener, port) = try localListener()
                defer {
                    FaultInjection.reset()
                    listener.close()
                }
                let before = FaultInjection.replacedCount
                FaultInjection.inject(-EINTR, into: IORING_OP_CONNECT)
                var echoed: [UInt8] = []
                let result = await outcome {
                    let client = try await TCPStream.connect(host: "127.0.0.1", port: port)
                    defer { client.close() }
                    let server = try await listener.accept()
                    defer { server.close() }
                    try await client.write([7])
                    echoed = try await server.readExactly(1)
                }
                return (result == "ok" ? "\(echoed)" : result, FaultInjection.replacedCount - before)
            }
            #expect(replaced == 1, "the connect was interrupted once")
            #expect(result == "[7]" || result == "skipped", "got \(result)")
            await expectDescriptorsBack(to: descriptorsBefore)
        }

        /// UDP: -EINTR on a send or a receive is retried (it was thrown as a `SpindleIOError`).
        @Test(arguments: Host.ioUring)
        func interruptedDatagramOperationsAreRetried(host: Host) async throws {
            let (result, replaced) = try await host.run(20) { () -> (String, Int) in
                guard try await Self.injectionSupported() else { return ("skipped", 2) }
                let a = try UDPSocket.bind(host: "127.0.0.1", port: 0)
                let b = try UDPSocket.bind(host: "127.0.0.1", port: 0)
                defer {
                    FaultInjection.reset()
                    a.close()
                    b.close()
                }
                let before = FaultInjection.replacedCount
                FaultInjection.inject(-EINTR, into: IORING_OP_SENDMSG, fd: a.descriptor.fd)
                FaultInjection.inject(-EINTR, into: IORING_OP_RECVMSG, fd: b.descriptor.fd)
                var received: [UInt8] = []
                let result = await outcome {
                    async let receiving = b.receive()
                    try await a.send([5, 6], to: try b.localAddress)
                    received = try await receiving.bytes
                }
                return (result == "ok" ? "\(received)" : result, FaultInjection.replacedCount - before)
            }
            #expect(replaced == 2)
            #expect(result == "[5, 6]" || result == "skipped", "got \(result)")
        }

        /// A write cancelled after part of it was sent throws `SpindleIOError` `.cancelled` whose
        /// `bytesWritten` is exactly what the peer receives. (It threw `CancellationError`, and
        /// the caller could not know how much of the stream the peer had.)
        @Test(arguments: Host.allCases)
        func aWriteCancelledAfterAPartialSendSaysHowManyBytesWent(host: Host) async throws {
            let message = pattern(2 << 20, seed: 9)
            let (error, received) = try await host.run(30) { () -> (SpindleIOError?, [UInt8]) in
                let (client, server) = try await connectedPair()
                defer {
                    client.close()
                    server.close()
                }
                try setIntOption(client.core, SO_SNDBUF, 16 * 1024)
                try setIntOption(server.core, SO_RCVBUF, 16 * 1024)
                let writer = Task(executorPreference: currentSpindleExecutor()) { () -> (any Error)? in
                    do {
                        try await client.write(message)
                        return nil
                    } catch {
                        return error
                    }
                }
                // Part of the message has reached the peer and the rest waits for room.
                try await eventually("part of the write in flight") {
                    queuedBytes(server.core, outgoing: false) > 0 && queuedBytes(client.core, outgoing: true) > 0
                }
                writer.cancel()
                let error = await writer.value
                try client.shutdown(.write)
                var received: [UInt8] = []
                while let bytes = try await server.read(maxBytes: 64 * 1024) { received += bytes }
                if let error, !(error is SpindleIOError) { Issue.record("threw \(error)") }
                return (error as? SpindleIOError, received)
            }
            #expect(error?.kind == .cancelled)
            #expect(error?.bytesWritten == received.count, "the error says what the peer received")
            #expect(received.count > 0 && received.count < message.count)
            #expect(received[...] == message.prefix(received.count), "the peer got a prefix, in order")
        }

        /// An I/O loop whose start failed (no descriptor left) starts on the next use. (The
        /// first failure was cached for the life of the process.)
        @Test func anIOLoopThatFailedToStartStartsOnTheNextUse() async throws {
            _ = await descriptorBaseline()  // Dispatch and the shared loop already have theirs
            let lazy = LazyEventLoop(name: "spindle-lazy")
            var limit = rlimit()
            getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
            let saved = limit
            limit.rlim_cur = 0  // no new descriptor: the loop's ring cannot be created
            setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
            let failure: SpindleError?
            do {
                _ = try lazy.get()
                failure = nil
            } catch {
                failure = error
            }
            limit = saved
            setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
            #expect(failure != nil, "starting without descriptors fails")
            let loop = try lazy.get()
            #expect(try lazy.get() === loop, "started once, then kept")
            let value = try await bounded(10, "a task on the retried loop") {
                await Task(executorPreference: loop) { 42 }.value
            }
            #expect(value == 42)
            await loop.shutdown()
        }

        /// Two tasks waiting for different signals each wake for theirs; waiters for another
        /// signal cannot take the wake-up. (All waiters read one shared eventfd, so whichever
        /// read first consumed it and the task the signal was for slept on.)
        @Test func signalWaitersEachWakeForTheirOwnSignal() async throws {
            try Signals.watch([SIGUSR1, SIGUSR2])
            _ = spindle_signal_take(SIGUSR1)
            _ = spindle_signal_take(SIGUSR2)
            let others = 8
            let (rounds, usr1Returns, waitersAfter) = try await Host.twoWorkers.run(60) { () -> (Int, Int, Int) in
                let executor = currentSpindleExecutor()
                final class Counter: Sendable { let value = Atomic<Int>(0) }
                let returned = Counter()
                let usr1 = (0..<others).map { _ in
                    Task(executorPreference: executor) { () -> Int32 in
                        let signal = try await Signals.wait(for: [SIGUSR1])
                        returned.value.add(1, ordering: .relaxed)
                        return signal
                    }
                }
                var rounds = 0
                for round in 0..<5 {
                    let usr2 = Task(executorPreference: executor) { try await Signals.wait(for: [SIGUSR2]) }
                    try await eventually("\(others + 1) signal waiters") { Signals.waiterCount == others + 1 }
                    kill(getpid(), SIGUSR2)
                    let signal = try await bounded(5, "the SIGUSR2 waiter, round \(round)") { try await usr2.value }
                    if signal == SIGUSR2 { rounds += 1 }
                }
                // One SIGUSR1 is returned to exactly one of its waiters.
                kill(getpid(), SIGUSR1)
                try await eventually("a SIGUSR1 waiter returned") { returned.value.load(ordering: .relaxed) == 1 }
                for task in usr1 { task.cancel() }
                var cancelled = 0
                for task in usr1 {
                    if case .failure(let error) = await task.result, error is CancellationError { cancelled += 1 }
                }
                #expect(cancelled == others - 1)
                return (rounds, returned.value.load(ordering: .relaxed), Signals.waiterCount)
            }
            #expect(rounds == 5)
            #expect(usr1Returns == 1)
            #expect(waitersAfter == 0, "every waiter unregistered its eventfd")
        }
    }
}
