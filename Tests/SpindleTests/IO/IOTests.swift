import CSpindle
import Glibc
import Synchronization
import Testing
@testable import Spindle

/// Where an I/O test runs: the work-stealing runtime (1 or 2 workers) or the event loop, on
/// io_uring or on epoll (`Host.allCases` covers both reactors; `Host.ioUring` the ring only).
enum Host: String, CaseIterable, Sendable, CustomStringConvertible {
    case oneWorker, twoWorkers, eventLoop
    case oneWorkerEpoll, twoWorkersEpoll, eventLoopEpoll
    var description: String { rawValue }

    /// The hosts on io_uring (tests of the ring itself).
    static let ioUring: [Host] = [.oneWorker, .twoWorkers, .eventLoop]
    /// The hosts on epoll.
    static let epoll: [Host] = [.oneWorkerEpoll, .twoWorkersEpoll, .eventLoopEpoll]

    var reactor: ReactorChoice {
        switch self {
        case .oneWorker, .twoWorkers, .eventLoop: return .ioUring
        case .oneWorkerEpoll, .twoWorkersEpoll, .eventLoopEpoll: return .epoll
        }
    }

    var isEpoll: Bool { reactor == .epoll }

    func run<T: Sendable>(_ seconds: Double = 60, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
        let reactor = self.reactor
        return try await bounded(seconds, "I/O test on \(self)") {
            switch self {
            case .oneWorker, .oneWorkerEpoll:
                return try await Runtime.run(workers: 1, reactor: reactor) { try await body() }
            case .twoWorkers, .twoWorkersEpoll:
                return try await Runtime.run(workers: 2, reactor: reactor) { try await body() }
            case .eventLoop, .eventLoopEpoll:
                return try await SpindleEventLoop.run(reactor: reactor) { try await body() }
            }
        }
    }
}

/// Raises the soft descriptor limit to the hard one (1,000 connections need 2,000 descriptors).
func raiseDescriptorLimit() {
    var limit = rlimit()
    getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
    limit.rlim_cur = limit.rlim_max
    setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
}

/// A listener on 127.0.0.1 with an ephemeral port.
func localListener() throws -> (TCPListener, Int) {
    let listener = try TCPListener.bind(host: "127.0.0.1", port: 0)
    return (listener, try listener.localAddress.port)
}

/// A connected client/server pair of TCP streams on 127.0.0.1 (the listener is closed again).
func connectedPair() async throws -> (client: TCPStream, server: TCPStream) {
    let (listener, port) = try localListener()
    defer { listener.close() }
    let client = try await TCPStream.connect(host: "127.0.0.1", port: port)
    return (client, try await listener.accept())
}

/// Serves echo on `listener` until it is closed: every connection in its own child task.
func serveEcho(_ listener: TCPListener) async {
    await withTaskGroup(of: Void.self) { group in
        do {
            for try await connection in listener.connections {
                group.addTask {
                    defer { connection.close() }
                    while let bytes = try? await connection.read() {
                        do { try await connection.write(bytes) } catch { return }
                    }
                }
            }
        } catch {}
    }
}

/// Deterministic bytes for connection `seed`.
func pattern(_ count: Int, seed: Int) -> [UInt8] {
    var state = UInt64(seed &+ 1) &* 0x9E37_79B9_7F4A_7C15
    return (0..<count).map { _ in
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        return UInt8(truncatingIfNeeded: state)
    }
}

/// Makes the next close of `stream` send a reset (SO_LINGER with a zero timeout).
func armReset(_ stream: TCPStream) throws {
    let fd = try stream.core.descriptor.begin(.setOption)
    defer { stream.core.descriptor.end() }
    var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
}

/// What each open descriptor of this process refers to, for diagnostics.
func descriptorTargets() -> [String] {
    guard let dir = opendir("/proc/self/fd") else { return [] }
    defer { closedir(dir) }
    var targets: [String] = []
    while let entry = readdir(dir) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        if name == "." || name == ".." { continue }
        var buffer = [CChar](repeating: 0, count: 256)
        let count = readlink("/proc/self/fd/\(name)", &buffer, 255)
        targets.append("\(name)->" + String(decoding: buffer.prefix(max(0, count)).map { UInt8(bitPattern: $0) }, as: UTF8.self))
    }
    return targets
}

/// The descriptor count once the process's lazily created ones exist: Dispatch's timer and
/// epoll descriptors (first `Task.sleep` on Swift's executor) and the I/O loop's ring.
func descriptorBaseline() async -> Int {
    _ = try? IOLoop.shared()
    try? await Task.sleep(for: .milliseconds(1))
    return procEntries("/proc/self/fd")
}

/// Waits until the process has no more descriptors than `baseline`, and says which are extra.
func expectDescriptorsBack(to baseline: Int) async {
    do {
        try await eventually("descriptors back to \(baseline)") { procEntries("/proc/self/fd") <= baseline }
    } catch {
        Issue.record("descriptors not back to \(baseline): \(descriptorTargets())")
    }
}

/// The I/O operations in flight on the rings of the runtime or event loop running the caller
/// (as the rings last published them: each counted one has been handed to the kernel).
func operationsInFlight() -> UInt64 {
    if let runtime = Runtime.current {
        return runtime.metrics().workers.reduce(0) { $0 + $1.operationsInFlight }
    }
    return SpindleEventLoop.current?.metrics().operationsInFlight ?? 0
}

/// The runtime or event loop running the caller, for unstructured tasks that must run there
/// too (`Task {}` does not inherit a task executor preference).
func hostExecutor() -> any TaskExecutor {
    if let runtime = Runtime.current { return runtime }
    return SpindleEventLoop.current!
}

/// Waits until at least `count` operations are in flight on the caller's runtime or event
/// loop: an operation started by another task has then really been submitted, not merely
/// requested (so cancelling or closing it tests what happens to a request the kernel holds).
func untilInFlight(_ what: String, count: UInt64 = 1) async throws {
    try await eventually("\(what) in flight (\(count) operation(s))", seconds: 10) { operationsInFlight() >= count }
}

extension SpindleTests {
    @Suite struct IOTests {
        @Test(arguments: [Host.twoWorkers, Host.eventLoop])
        func echoRoundTripsAcrossAThousandConnectionsAreByteExact(host: Host) async throws {
            raiseDescriptorLimit()
            let descriptorsBefore = await descriptorBaseline()
            let mismatches = try await host.run(120) { () -> Int in
                let (listener, port) = try localListener()
                async let server: Void = serveEcho(listener)
                let bad = try await withThrowingTaskGroup(of: Int.self) { group in
                    for client in 0..<1_000 {
                        group.addTask {
                            let stream = try await TCPStream.connect(host: "127.0.0.1", port: port, timeout: .seconds(10))
                            defer { stream.close() }
                            try stream.setNoDelay()
                            var wrong = 0
                            for round in 0..<3 {
                                let message = pattern(100 + (client * 7 + round * 131) % 3_000, seed: client * 3 + round)
                                try await stream.write(message)
                                if try await stream.readExactly(message.count) != message { wrong += 1 }
                            }
                            return wrong
                        }
                    }
                    return try await group.reduce(0, +)
                }
                listener.close()
                await server
                return bad
            }
            #expect(mismatches == 0)
            await expectDescriptorsBack(to: descriptorsBefore)
        }

        @Test func workerCountersIncludeTheRingsSubmissionsAndCompletions() async throws {
            let (submitted, reaped) = try await Host.twoWorkers.run { () -> (UInt64, UInt64) in
                let (client, server) = try await connectedPair()
                defer {
                    client.close()
                    server.close()
                }
                for _ in 0..<10 {
                    try await client.write([1])
                    _ = try await server.readExactly(1)
                }
                let workers = Runtime.current!.metrics().workers
                return (workers.reduce(0) { $0 + $1.sqesSubmitted }, workers.reduce(0) { $0 + $1.cqesReaped })
            }
            #expect(submitted >= 10, "at least the ten reads went through a ring")
            #expect(reaped >= 10)
        }

        @Test(arguments: Host.allCases)
        func connectToAClosedPortIsRefused(host: Host) async throws {
            let port = try { () throws -> Int in
                let (listener, port) = try localListener()
                listener.close()
                return port
            }()
            let error = try await host.run {
                do {
                    _ = try await TCPStream.connect(host: "127.0.0.1", port: port)
                    return SpindleIOError?.none
                } catch let error as SpindleIOError {
                    return error
                }
            }
            #expect(error?.operation == .connect)
            #expect(error?.isConnectionRefused == true)
        }

        @Test(arguments: Host.allCases)
        func endOfStreamIsAValueAndShutdownWriteDeliversIt(host: Host) async throws {
            let (received, after) = try await host.run { () -> ([UInt8], [UInt8]?) in
                let (client, server) = try await connectedPair()
                try await client.write(Array("last words".utf8))
                try client.shutdown(.write)
                let bytes = try await server.readExactly(10)
                let eof = try await server.read()
                client.close()
                server.close()
                return (bytes, eof)
            }
            #expect(received == Array("last words".utf8))
            #expect(after == nil)
        }

        @Test(arguments: Host.allCases)
        func readIntoReplacesTheBufferReusesItsStorageAndReturnsZeroAtTheEnd(host: Host) async throws {
            let results = try await host.run { () -> [String] in
                let (client, server) = try await connectedPair()
                var buffer: [UInt8] = []
                buffer.reserveCapacity(4096)
                let storage = buffer.withUnsafeBufferPointer { UInt(bitPattern: $0.baseAddress) }
                var seen: [String] = []
                // A slice, written through its own overload.
                let hello = Array("xhello".utf8)
                try await client.write(hello[1...])
                var count = try await server.read(into: &buffer)
                seen.append("\(count):\(String(decoding: buffer, as: UTF8.self))")
                try await client.write(Array("hi".utf8))
                count = try await server.read(into: &buffer)
                seen.append("\(count):\(String(decoding: buffer, as: UTF8.self))")
                let same = buffer.withUnsafeBufferPointer { UInt(bitPattern: $0.baseAddress) } == storage
                seen.append("same storage: \(same)")
                try client.shutdown(.write)
                count = try await server.read(into: &buffer)
                seen.append("\(count):\(buffer.count)")
                client.close()
                server.close()
                return seen
            }
            #expect(results == ["5:hello", "2:hi", "same storage: true", "0:0"])
        }

        @Test(arguments: Host.allCases)
        func aPeerResetFailsAPendingReadWithECONNRESET(host: Host) async throws {
            let error = try await host.run { () -> SpindleIOError? in
                let (client, server) = try await connectedPair()
                async let reading: SpindleIOError? = {
                    do {
                        _ = try await server.read()
                        return nil
                    } catch let error as SpindleIOError {
                        return error
                    }
                }()
                try await untilInFlight("the read")
                try armReset(client)
                client.close()
                return try await reading
            }
            #expect(error?.isConnectionReset == true, "got \(String(describing: error))")
        }

        @Test(arguments: Host.allCases)
        func writingToAResetPeerFailsWithEPIPEOrECONNRESET(host: Host) async throws {
            let error = try await host.run { () -> SpindleIOError? in
                let (client, server) = try await connectedPair()
                try armReset(client)
                client.close()
                let chunk = [UInt8](repeating: 7, count: 64 * 1024)
                do {
                    for _ in 0..<1_000 { try await server.write(chunk) }
                    return nil
                } catch let error as SpindleIOError {
                    return error
                }
            }
            #expect(error.map { $0.isBrokenPipe || $0.isConnectionReset } == true, "got \(String(describing: error))")
        }

        @Test(arguments: Host.allCases)
        func aCancelledReadThrowsAndLosesNoLaterData(host: Host) async throws {
            let descriptorsBefore = await descriptorBaseline()
            let (cancelled, later) = try await host.run { () -> (Bool, [UInt8]) in
                let (client, server) = try await connectedPair()
                defer {
                    client.close()
                    server.close()
                }
                // On this host: a plain `Task {}` would not inherit it and would read on the
                // process's I/O loop instead.
                let reader = Task(executorPreference: hostExecutor()) { try await server.read() }
                try await untilInFlight("the read on an idle socket")
                reader.cancel()
                let cancelled: Bool
                do {
                    _ = try await reader.value
                    cancelled = false
                } catch is CancellationError {
                    cancelled = true
                }
                try await client.write(Array("after the cancel".utf8))
                return (cancelled, try await server.readExactly(16))
            }
            #expect(cancelled)
            #expect(later == Array("after the cancel".utf8))
            await expectDescriptorsBack(to: descriptorsBefore)
        }

        @Test(arguments: Host.allCases)
        func withTimeoutCancelsAReadAndTheStreamStaysUsable(host: Host) async throws {
            let (timedOut, later) = try await host.run { () -> (Bool, [UInt8]) in
                let (client, server) = try await connectedPair()
                defer {
                    client.close()
                    server.close()
                }
                var timedOut = false
                do {
                    _ = try await withTimeout(.milliseconds(50)) { try await server.read() }
                } catch is TimeoutError {
                    timedOut = true
                }
                try await client.write([1, 2, 3])
                return (timedOut, try await server.readExactly(3))
            }
            #expect(timedOut)
            #expect(later == [1, 2, 3])
        }

        @Test(arguments: Host.allCases)
        func closeEndsAReadInFlightWithClosed(host: Host) async throws {
            let descriptorsBefore = await descriptorBaseline()
            let error = try await host.run { () -> SpindleIOError? in
                let (client, server) = try await connectedPair()
                defer { client.close() }
                let reader = Task(executorPreference: hostExecutor()) { () -> SpindleIOError? in
                    do {
                        _ = try await server.read()
                        return nil
                    } catch let error as SpindleIOError {
                        return error
                    }
                }
                try await untilInFlight("the read")
                server.close()
                server.close()  // a second close does nothing
                return try await reader.value
            }
            #expect(error?.kind == .closed)
            await expectDescriptorsBack(to: descriptorsBefore)
        }

        @Test func aSecondConcurrentReaderIsRefusedNotCorrupted() async throws {
            let error = try await Host.twoWorkers.run { () -> SpindleIOError? in
                let (client, server) = try await connectedPair()
                defer {
                    client.close()
                    server.close()
                }
                let first = Task(executorPreference: hostExecutor()) { try await server.read() }
                try await untilInFlight("the first read")
                do {
                    _ = try await server.read()
                    return nil
                } catch let error as SpindleIOError {
                    first.cancel()
                    _ = try? await first.value
                    return error
                }
            }
            #expect(error?.kind == .concurrentUse)
        }

        @Test func operationsFromAPlainTaskRunOnTheIOLoop() async throws {
            // No Spindle executor here: the requests are performed on the process's I/O loop.
            let echoed = try await bounded(20, "plain-task echo") { () -> [UInt8] in
                let (client, server) = try await connectedPair()
                defer {
                    client.close()
                    server.close()
                }
                try await client.write([9, 8, 7])
                try await server.write(try await server.readExactly(3))
                return try await client.readExactly(3)
            }
            #expect(echoed == [9, 8, 7])
        }

        /// Called from an actor that Swift's default executor runs, stream reads and writes must
        /// reach a ring (the process's I/O loop) and come back to the actor's own executor, not
        /// spin, fail, or leave the actor's code running on the shared loop's thread. (With the
        /// stream operations `nonisolated(nonsending)`, the actor stayed on the loop's thread.)
        @Test func operationsFromAnActorOffSpindleReachTheIOLoopAndReturnToTheActor() async throws {
            actor Echoer {
                var rounds = 0
                func echo(_ client: TCPStream, _ server: TCPStream) async throws -> [UInt8] {
                    var buffer: [UInt8] = []
                    try await client.write([1, 2, 3, 4])
                    var received: [UInt8] = []
                    while received.count < 4 {
                        let count = try await server.read(into: &buffer)
                        if count == 0 { break }
                        received += buffer
                    }
                    self.assertIsolated()
                    // Back on the actor's own executor, not left on the shared I/O loop.
                    let onLoopAfterRead = SpindleEventLoop.current != nil
                    #expect(!onLoopAfterRead)
                    try await server.write(received[...])
                    let onLoopAfterWrite = SpindleEventLoop.current != nil
                    #expect(!onLoopAfterWrite)
                    rounds += 1
                    return try await client.readExactly(4)
                }
            }
            let echoed = try await bounded(20, "actor echo") { () -> [UInt8] in
                let (client, server) = try await connectedPair()
                defer {
                    client.close()
                    server.close()
                }
                let echoer = Echoer()
                let first = try await echoer.echo(client, server)
                let second = try await echoer.echo(client, server)
                #expect(await echoer.rounds == 2)
                return first + second
            }
            #expect(echoed == [1, 2, 3, 4, 1, 2, 3, 4])
        }

        @Test(arguments: Host.allCases)
        func aLargeWriteWaitsForRoomAndArrivesIntact(host: Host) async throws {
            // 4 MiB against a reader that starts late: the socket fills, the non-blocking send
            // takes part of a chunk, and the rest waits in io_uring for room.
            let size = 4 * 1024 * 1024
            let (sent, received) = try await host.run { () -> (UInt64, UInt64) in
                let (client, server) = try await connectedPair()
                defer {
                    client.close()
                    server.close()
                }
                let message = pattern(size, seed: 11)
                async let writing: Void = client.write(message)
                try await untilInFlight("the write waiting for room")
                let back = try await server.readExactly(size)
                try await writing
                return (fnv1a(message), fnv1a(back))
            }
            #expect(sent == received)
        }

        @Test(arguments: Host.allCases)
        func unixDomainStreamsEcho(host: Host) async throws {
            let path = "/tmp/spindle-test-\(getpid())-\(host).sock"
            let echoed = try await host.run { () -> [UInt8] in
                let listener = try UnixListener.bind(path: path)
                defer { listener.close() }
                async let accepted = listener.accept()
                let client = try await UnixStream.connect(path: path)
                let server = try await accepted
                defer {
                    client.close()
                    server.close()
                }
                let message = pattern(100_000, seed: 5)
                async let sent: Void = client.write(message)
                let received = try await server.readExactly(message.count)
                try await sent
                try await server.write(received)
                return try await client.readExactly(message.count)
            }
            #expect(echoed == pattern(100_000, seed: 5))
            #expect(access(path, F_OK) != 0, "close removes the socket file")
        }

        @Test(arguments: Host.allCases)
        func udpDatagramsRoundTrip(host: Host) async throws {
            let (reply, senderPort, expectedPort) = try await host.run { () -> ([UInt8], Int, Int) in
                let a = try UDPSocket.bind(host: "127.0.0.1", port: 0)
                let b = try UDPSocket.bind(host: "127.0.0.1", port: 0)
                defer {
                    a.close()
                    b.close()
                }
                try await a.send(Array("ping".utf8), to: try b.localAddress)
                let (bytes, sender) = try await b.receive()
                try await b.send(bytes + Array("!".utf8), to: sender)
                let (reply, _) = try await a.receive()
                return (reply, sender.port, try a.localAddress.port)
            }
            #expect(reply == Array("ping!".utf8))
            #expect(senderPort == expectedPort)
        }

        /// Closing a UDP socket while a receive waits on it ends the receive with `closed`
        /// (the close shuts the socket down, which wakes the kernel's receive), and frees the
        /// descriptor once the receive has completed.
        @Test(arguments: Host.allCases)
        func closingAUDPSocketEndsAReceiveInFlightWithClosed(host: Host) async throws {
            let descriptorsBefore = await descriptorBaseline()
            let error = try await host.run { () -> SpindleIOError? in
                let socket = try UDPSocket.bind(host: "127.0.0.1", port: 0)
                async let receiving: SpindleIOError? = {
                    do {
                        _ = try await socket.receive()
                        return nil
                    } catch let error as SpindleIOError {
                        return error
                    }
                }()
                try await untilInFlight("the receive")
                socket.close()
                return try await receiving
            }
            #expect(error?.kind == .closed, "got \(String(describing: error))")
            #expect(error?.operation == .receive)
            await expectDescriptorsBack(to: descriptorsBefore)
        }

        @Test func aSixtyFourMebibyteFileRoundTripsWithItsChecksum() async throws {
            let path = "/tmp/spindle-test-\(getpid())-big.bin"
            defer { unlink(path) }
            let size = 64 * 1024 * 1024
            let (written, read, reportedSize) = try await Host.twoWorkers.run(120) { () -> (UInt64, UInt64, UInt64) in
                var bytes = [UInt8](repeating: 0, count: size)
                var state: UInt64 = 0x1234_5678
                for i in 0..<size {
                    state = state &* 6364136223846793005 &+ 1442695040888963407
                    bytes[i] = UInt8(truncatingIfNeeded: state >> 33)
                }
                let file = try await File.open(path, options: [.write, .create, .truncate])
                try await file.write(bytes, at: 0)
                try await file.sync()
                file.close()
                let back = try await File.readAll(path)
                let opened = try await File.open(path)
                defer { opened.close() }
                return (fnv1a(bytes), fnv1a(back), try await opened.size())
            }
            #expect(written == read)
            #expect(reportedSize == UInt64(size))
        }

        @Test func fileErrorsAreTyped() async throws {
            let error = try await Host.oneWorker.run { () -> SpindleIOError? in
                do {
                    _ = try await File.open("/nonexistent/spindle/file")
                    return nil
                } catch let error as SpindleIOError {
                    return error
                }
            }
            #expect(error?.operation == .open)
            #expect(error?.errno == ENOENT)
        }

        @Test func positionalReadsAndWritesLandWhereAsked() async throws {
            let path = "/tmp/spindle-test-\(getpid())-positional.bin"
            defer { unlink(path) }
            let result = try await Host.eventLoop.run { () -> ([UInt8], [UInt8]) in
                let file = try await File.open(path, options: [.read, .write, .create, .truncate])
                defer { file.close() }
                try await file.write([1, 2, 3, 4, 5, 6], at: 0)
                try await file.write([9, 9], at: 2)
                let all = try await file.read(at: 0, count: 100)
                let middle = try await file.read(at: 3, count: 2)
                return (all, middle)
            }
            #expect(result.0 == [1, 2, 9, 9, 5, 6])
            #expect(result.1 == [9, 5])
        }

        @Test func badAddressesAreTypedErrors() throws {
            #expect(throws: SpindleIOError.self) { try SpindleSocketAddress(host: "127.0.0.1", port: 70_000) }
            #expect(throws: SpindleIOError.self) { try SpindleSocketAddress(host: "no.such.host.invalid", port: 1) }
            #expect(throws: SpindleIOError.self) { try SpindleSocketAddress(unixPath: String(repeating: "x", count: 200)) }
            let (listener, port) = try localListener()
            defer { listener.close() }
            let error = #expect(throws: SpindleIOError.self) {
                try TCPListener.bind(host: "127.0.0.1", port: port, reuseAddress: false)
            }
            #expect(error?.errno == EADDRINUSE)
        }
    }
}

func fnv1a(_ bytes: [UInt8]) -> UInt64 {
    var hash: UInt64 = 0xcbf2_9ce4_8422_2325
    for byte in bytes { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
    return hash
}
