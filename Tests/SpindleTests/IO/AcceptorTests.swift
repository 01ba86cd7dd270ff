import CSpindle
import Glibc
import Synchronization
import Testing
@testable import Spindle

/// A client socket connected with plain blocking calls (no ring involved), or -errno.
private func plainConnect(port: Int) -> Int32 {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    let result = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
        }
    }
    if result != 0 {
        Glibc.close(fd)
        return -errno
    }
    return fd
}

/// Connections waiting in the kernel's accept queue of `listener` (TCP_INFO's `tcpi_unacked`
/// is the accept queue's length for a listening socket).
private func kernelAcceptQueue(_ listener: TCPListener) -> Int {
    guard let fd = try? listener.acceptor.descriptor.begin(.address) else { return -1 }
    defer { listener.acceptor.descriptor.end() }
    var info = tcp_info()
    var length = socklen_t(MemoryLayout<tcp_info>.size)
    guard getsockopt(fd, Int32(IPPROTO_TCP), TCP_INFO, &info, &length) == 0 else { return -1 }
    return Int(info.tcpi_unacked)
}

extension SpindleTests {
    @Suite struct AcceptorTests {
        /// Closing a Unix listener while a task iterates its connections ends the iteration
        /// with `closed`. (`shutdown(2)` ends a multishot accept on a TCP listener but not on
        /// an AF_UNIX one: the iterator waited forever, found by spindle-stress `--mix unix`.)
        @Test(arguments: Host.allCases)
        func closingAUnixListenerEndsItsIterators(host: Host) async throws {
            let path = "/tmp/spindle-acc-\(getpid())-\(host.rawValue).sock"
            let ended = try await host.run(20) { () -> String in
                let listener = try UnixListener.bind(path: path)
                let executor = currentSpindleExecutor()
                let iterator = Task(executorPreference: executor) { () -> String in
                    do {
                        for try await stream in listener.connections { stream.close() }
                        return "ended without an error"
                    } catch let error as SpindleIOError where error.kind == .closed {
                        return "closed"
                    } catch {
                        return "\(error)"
                    }
                }
                // One connection first, so the multishot request is armed and has delivered.
                let client = try await UnixStream.connect(path: path)
                client.close()
                try await eventually("the iterator waits again") { listener.acceptor.queued.waiters == 1 }
                listener.close()
                return try await bounded(5, "the iterator ends after close") { await iterator.value }
            }
            // Either ending is an ending (the sequence may finish or throw `closed`); the bug
            // was that it never ended.
            #expect(ended == "closed" || ended == "ended without an error", "\(ended)")
        }

        /// Two tasks iterating one listener's connections each get a connection of their own.
        /// (The acceptor kept one waiter: the second overwrote the first, which was never
        /// resumed.)
        @Test(arguments: Host.allCases)
        func twoConcurrentIteratorsEachGetTheirOwnConnection(host: Host) async throws {
            let (ports, expected) = try await host.run(20) { () -> ([Int], [Int]) in
                let (listener, port) = try localListener()
                defer { listener.close() }
                let executor = currentSpindleExecutor()
                let iterate = { @Sendable () async throws -> Int in
                    var iterator = listener.connections.makeAsyncIterator()
                    guard let stream = try await iterator.next() else { return -1 }
                    defer { stream.close() }
                    return try stream.peerAddress.port
                }
                let first = Task(executorPreference: executor) { try await iterate() }
                let second = Task(executorPreference: executor) { try await iterate() }
                try await eventually("both iterators wait") { listener.acceptor.queued.waiters == 2 }
                let a = try await TCPStream.connect(host: "127.0.0.1", port: port)
                let b = try await TCPStream.connect(host: "127.0.0.1", port: port)
                defer {
                    a.close()
                    b.close()
                }
                let got = [try await first.value, try await second.value].sorted()
                return (got, [try a.localAddress.port, try b.localAddress.port].sorted())
            }
            #expect(ports == expected)
        }

        /// Cancelling one of two waiting iterators ends that one only; the other still gets
        /// the next connection. (The cancellation handler resumed whichever continuation was
        /// stored last: the other task's.)
        @Test(arguments: Host.allCases)
        func cancellingOneIteratorLeavesTheOtherWaiting(host: Host) async throws {
            let (firstOutcome, secondPort, clientPort) = try await host.run(20) { () -> (String, Int, Int) in
                let (listener, port) = try localListener()
                defer { listener.close() }
                let executor = currentSpindleExecutor()
                let first = Task(executorPreference: executor) { () -> String in
                    var iterator = listener.connections.makeAsyncIterator()
                    do {
                        let stream = try await iterator.next()
                        stream?.close()
                        return "returned a connection"
                    } catch {
                        return "\(type(of: error))"
                    }
                }
                try await eventually("the first iterator waits") { listener.acceptor.queued.waiters == 1 }
                let second = Task(executorPreference: executor) { () -> Int in
                    var iterator = listener.connections.makeAsyncIterator()
                    guard let stream = try await iterator.next() else { return -1 }
                    defer { stream.close() }
                    return try stream.peerAddress.port
                }
                try await eventually("both iterators wait") { listener.acceptor.queued.waiters == 2 }
                first.cancel()
                let firstOutcome = await first.value
                #expect(listener.acceptor.queued.waiters == 1, "the second still waits")
                let client = try await TCPStream.connect(host: "127.0.0.1", port: port)
                defer { client.close() }
                return (firstOutcome, try await second.value, try client.localAddress.port)
            }
            #expect(firstOutcome == "CancellationError")
            #expect(secondPort == clientPort)
        }

        /// An iterator whose task is already cancelled throws at once instead of waiting for a
        /// connection.
        @Test(arguments: Host.allCases)
        func anAlreadyCancelledIteratorThrowsAtOnce(host: Host) async throws {
            let outcome = try await host.run(20) { () -> String in
                let (listener, _) = try localListener()
                defer { listener.close() }
                return await Task(executorPreference: currentSpindleExecutor()) { () -> String in
                    withUnsafeCurrentTask { $0?.cancel() }
                    var iterator = listener.connections.makeAsyncIterator()
                    do {
                        _ = try await iterator.next()
                        return "returned"
                    } catch {
                        return "\(type(of: error))"
                    }
                }.value
            }
            #expect(outcome == "CancellationError")
        }

        /// A `next()` cancelled from another thread at any moment (before, while or after it
        /// registers) ends promptly, and no connection is lost to a cancelled waiter. (A cancel
        /// that landed between the cancellation check and the registration ran its handler
        /// first, which found nothing, and the task then waited for a connection.)
        @Test func aNextCancelledAtAnyMomentEndsPromptlyAndLosesNoConnection() async throws {
            let rounds = 3_000
            let (cancelled, echoed) = try await Host.twoWorkers.run(120) { () -> (Int, [UInt8]) in
                let (listener, port) = try localListener()
                defer { listener.close() }
                let executor = currentSpindleExecutor()
                var cancelled = 0
                for round in 0..<rounds {
                    let task = Task(executorPreference: executor) { () -> Bool in
                        var iterator = listener.connections.makeAsyncIterator()
                        do {
                            _ = try await iterator.next()
                            return false
                        } catch {
                            return error is CancellationError
                        }
                    }
                    let spins = (round &* 7919) % 4_000
                    onForeignThread {
                        var sink = 0
                        for i in 0..<spins { sink &+= i }
                        withExtendedLifetime(sink) { task.cancel() }
                    }
                    if try await bounded(10, "next() cancelled in round \(round)", { await task.value }) {
                        cancelled += 1
                    }
                }
                // Every cancelled waiter is gone: a connection reaches the next caller.
                let client = try await TCPStream.connect(host: "127.0.0.1", port: port)
                defer { client.close() }
                var iterator = listener.connections.makeAsyncIterator()
                guard let server = try await iterator.next() else { return (cancelled, []) }
                defer { server.close() }
                try await client.write([4, 2])
                return (cancelled, try await server.readExactly(2))
            }
            #expect(cancelled == rounds)
            #expect(echoed == [4, 2])
        }

        /// With a multishot accept armed and nobody taking connections, the process holds at
        /// most about `Acceptor.bufferLimit` accepted descriptors; the rest wait in the
        /// kernel's backlog. Then every connection is accepted, none lost. (The multishot
        /// request accepted every connection the kernel completed, without limit.)
        @Test(arguments: [Host.oneWorker, Host.eventLoop])
        func unclaimedConnectionsStayBoundedAndNoneIsLost(host: Host) async throws {
            raiseDescriptorLimit()
            let clients = 400
            let limit = Acceptor.bufferLimit
            let descriptorsBefore = await descriptorBaseline()
            let (held, inKernel, indices) = try await host.run(60) { () -> (Int, Int, [Int]) in
                let (listener, port) = try localListener()
                defer { listener.close() }
                var iterator = listener.connections.makeAsyncIterator()
                // Arm the multishot request with one connection, then take no more.
                let firstClient = try await TCPStream.connect(host: "127.0.0.1", port: port)
                defer { firstClient.close() }
                guard let firstServer = try await iterator.next() else { return (-1, -1, []) }
                defer { firstServer.close() }
                // A socket pair for round trips through this thread's ring: each enters the
                // kernel, which then runs the accepts it has queued for the ring, and reaps them.
                let (ping, pong) = try UnixStream.pair()
                defer {
                    ping.close()
                    pong.close()
                }
                let roundTrip = {
                    try await ping.write([1])
                    _ = try await pong.readExactly(1)
                }
                let before = acceptedSockets(onPort: port)
                // The clients connect from this thread, one at a time, each followed by a round
                // trip: the ring sees the connections as they come (as an idle server would),
                // with no other thread's scheduling in the way. Each sends its index.
                var fds: [Int32] = []
                defer { for fd in fds { Glibc.close(fd) } }
                for index in 0..<clients {
                    let fd = plainConnect(port: port)
                    if fd < 0 { throw SpindleIOError(.connect, errno: -fd) }
                    fds.append(fd)
                    var value = UInt32(index).littleEndian
                    _ = Glibc.send(fd, &value, 4, 0)
                    try await roundTrip()
                }
                for _ in 0..<3 { try await roundTrip() }
                let held = acceptedSockets(onPort: port) - before
                #expect(held + kernelAcceptQueue(listener) == clients, "each connection held or queued")
                let queued = kernelAcceptQueue(listener)
                // Now a consumer on this executor takes them all (re-arming as the queue drains).
                let consumer = Task(executorPreference: currentSpindleExecutor()) { () -> [Int] in
                    var iterator = listener.connections.makeAsyncIterator()
                    var indices: [Int] = []
                    for _ in 0..<clients {
                        guard let stream = try await iterator.next() else { break }
                        defer { stream.close() }
                        let bytes = try await stream.readExactly(4)
                        indices.append(Int(UInt32(bytes[0]) | UInt32(bytes[1]) << 8 | UInt32(bytes[2]) << 16 | UInt32(bytes[3]) << 24))
                    }
                    return indices
                }
                let indices: [Int]
                do {
                    indices = try await bounded(30, "accepting \(clients) connections") { try await consumer.value }
                } catch {
                    Issue.record(error)
                    indices = []
                }
                return (held, queued, indices)
            }
            // The limit, plus what the kernel accepted before the cancel took effect (here one
            // round trip's worth: a connection or two).
            #expect(held <= limit + 8, "the process took \(held) connections nobody asked for")
            #expect(inKernel >= clients - limit - 8, "the rest stay in the kernel's backlog: \(inKernel)")
            #expect(indices.sorted() == Array(0..<clients), "every client accepted once")
            await expectDescriptorsBack(to: descriptorsBefore)
        }
    }
}
