// Echo over sockets: per round a listener (TCP on 127.0.0.1 with a port the kernel picks, or a
// Unix-domain socket in the run's directory), a server that accepts (through the `connections`
// sequence, a multishot accept, or a loop of `accept()`, one or the other per round) and
// echoes every connection in its own task, and 1-8 clients that each stream 0-64 KiB of
// seeded random bytes in random chunks while reading the echo back concurrently. A quarter of
// the clients are cancelled at a random point.
//
// Invariants: every byte a client reads is the byte it sent at that offset (in order, nothing
// lost, duplicated or invented) and a client never reads more than it sent; a client that was
// not cancelled reads its whole stream back and then end of stream; nothing fails but what
// cancellation explains (the client's `CancellationError`, the server seeing the cancelled
// client's reset); the server ends when the listener closes, after every connection it
// accepted. The cycle's descriptor check then proves that every socket was closed.

import Glibc
import Spindle
import Synchronization

/// What the echo workload needs of a connected stream.
protocol EchoStream: Sendable {
    func read(into buffer: inout [UInt8], maxBytes: Int) async throws -> Int
    func write(_ bytes: ArraySlice<UInt8>) async throws
    func shutdown(_ direction: ShutdownDirection) throws
    func close()
}

extension TCPStream: EchoStream {}
extension UnixStream: EchoStream {}

enum EchoMix {
    enum Transport: Sendable { case tcp, unix }

    struct Client: Sendable {
        let payload: [UInt8]
        /// The largest piece written at once.
        let chunk: Int
        /// The most read at once.
        let readSize: Int
        let cancelled: Bool
    }

    static func run(_ round: Round, over transport: Transport) async {
        var rng = round.rng()
        let clients = (0..<rng.int(1...8)).map { _ in
            Client(
                payload: bytes(rng.oneIn(8) ? rng.int(0...16) : rng.int(1...65_536), &rng),
                chunk: rng.int(1...16_384), readSize: rng.int(1...16_384), cancelled: rng.oneIn(4))
        }
        round.phase("\(clients.count) \(transport) clients, \(clients.reduce(0) { $0 + $1.payload.count }) bytes")
        switch transport {
        case .tcp:
            let listener: TCPListener
            let port: Int
            do {
                listener = try TCPListener.bind(host: "127.0.0.1", port: 0)
                port = try listener.localAddress.port
            } catch {
                round.fail("cannot listen on 127.0.0.1: \(error)")
            }
            await exchange(round, clients, &rng, accept: Acceptance(listener.connections, listener.accept), close: listener.close) {
                try await TCPStream.connect(host: "127.0.0.1", port: port, timeout: .seconds(10))
            }
        case .unix:
            let path = "\(round.cycle.socketDirectory)/c\(round.cycle.number)l\(round.lane)r\(round.number)"
            let listener: UnixListener
            do {
                listener = try UnixListener.bind(path: path)
            } catch {
                round.fail("cannot listen on \(path): \(error)")
            }
            await exchange(round, clients, &rng, accept: Acceptance(listener.connections, listener.accept), close: listener.close) {
                try await UnixStream.connect(path: path, timeout: .seconds(10))
            }
            if access(path, F_OK) == 0 { round.fail("the closed listener left its socket file \(path)") }
        }
    }

    private static func bytes(_ count: Int, _ rng: inout SplitMix) -> [UInt8] {
        var bytes = [UInt8]()
        bytes.reserveCapacity(count + 8)
        while bytes.count < count {
            withUnsafeBytes(of: rng.next()) { bytes.append(contentsOf: $0) }
        }
        return Array(bytes.prefix(count))
    }

    /// The two ways a listener hands out connections: the `connections` sequence (a multishot
    /// accept) and `accept()` (one request per connection). Each round picks one.
    struct Acceptance<S: EchoStream>: Sendable {
        let connections: Connections<S>
        let accept: @Sendable () async throws -> S
        init(_ connections: Connections<S>, _ accept: @escaping @Sendable () async throws -> S) {
            self.connections = connections
            self.accept = accept
        }
    }

    /// Serves the listener while the clients run, then closes the listener and checks.
    private static func exchange<S: EchoStream>(
        _ round: Round, _ clients: [Client], _ rng: inout SplitMix,
        accept: Acceptance<S>, close: @escaping @Sendable () -> Void,
        connect: @escaping @Sendable () async throws -> S
    ) async {
        let multishot = rng.oneIn(2)
        let progress = ServerProgress(multishot: multishot)
        round.phase("\(clients.count) clients, accepting with \(multishot ? "connections (multishot)" : "accept()")")
        guard let server = round.spawn({ await serve(accept, multishot: multishot, round, progress) }) else {
            close()
            return
        }
        var tasks: [Task<Int, Never>] = []
        var cancellers: [Task<Void, Never>] = []
        for (index, client) in clients.enumerated() {
            guard let task = round.spawn({ await run(index, client, round, connect) }) else { break }
            tasks.append(task)
            if client.cancelled, let canceller = round.cancelLater(task, &rng) { cancellers.append(canceller) }
        }
        var echoed = 0
        for task in tasks { echoed += await task.value }
        for canceller in cancellers { await canceller.value }
        round.phase("clients done; closing the listener")
        close()
        round.phase("clients done, listener closed; waiting for the server: \(progress)")
        let served = await server.value
        if served > tasks.count { round.fail("the server accepted \(served) connections from \(tasks.count) clients") }
        round.counters.add(units: tasks.count, cancelled: clients.filter(\.cancelled).count, extra: UInt64(echoed))
    }

    /// Accepts until the listener closes, echoing each connection in a child task; returns
    /// how many it accepted, after all of them have ended.
    private static func serve<S: EchoStream>(
        _ accept: Acceptance<S>, multishot: Bool, _ round: Round, _ progress: ServerProgress
    ) async -> Int {
        await withTaskGroup(of: Void.self) { group in
            var accepted = 0
            func serve(_ connection: S) {
                accepted += 1
                progress.accepted.add(1, ordering: .relaxed)
                group.addTask {
                    await echo(connection, round)
                    progress.ended.add(1, ordering: .relaxed)
                }
            }
            do {
                if multishot {
                    for try await connection in accept.connections { serve(connection) }
                } else {
                    while true { serve(try await accept.accept()) }
                }
            } catch let error as SpindleIOError where error.kind == .closed && !multishot {
                // accept() ends with SpindleIOError.closed when the listener closes.
            } catch {
                if !round.cycleEndsAbruptly { round.fail("the accept loop threw \(error)") }
            }
            progress.acceptLoopEnded.store(true, ordering: .relaxed)
            return accepted
        }
    }

    /// How far the server has got, for a hang's diagnostic. Relaxed: read only for printing.
    final class ServerProgress: Sendable, CustomStringConvertible {
        let accepted = Atomic<Int>(0)
        let ended = Atomic<Int>(0)
        let acceptLoopEnded = Atomic<Bool>(false)
        let multishot: Bool
        init(multishot: Bool) { self.multishot = multishot }
        var description: String {
            "server (\(multishot ? "connections, multishot" : "accept()")) accepted \(accepted.load(ordering: .relaxed)), echoes ended \(ended.load(ordering: .relaxed)), "
                + "accept loop \(acceptLoopEnded.load(ordering: .relaxed) ? "ended" : "still waiting")"
        }
    }

    private static func echo<S: EchoStream>(_ connection: S, _ round: Round) async {
        defer { connection.close() }
        var buffer = [UInt8]()
        do {
            while true {
                let count = try await connection.read(into: &buffer, maxBytes: 16_384)
                if count == 0 { return }
                try await connection.write(buffer[...])
            }
        } catch where isPeerReset(error) {
            return  // a cancelled client closed with bytes unread
        } catch {
            if !(isCancellation(error) && round.cycleEndsAbruptly) {
                round.fail("the server's echo threw \(error)")
            }
        }
    }

    /// Streams the client's payload and reads it back; returns the bytes verified.
    private static func run<S: EchoStream>(
        _ index: Int, _ client: Client, _ round: Round, _ connect: @Sendable () async throws -> S
    ) async -> Int {
        let mayBeCancelled = { client.cancelled || round.cycleEndsAbruptly }
        func failure(_ error: any Error, _ what: String) {
            if !((isCancellation(error) || isPeerReset(error)) && mayBeCancelled()) { round.fail("client \(index): \(what) threw \(error)") }
        }
        let stream: S
        do {
            stream = try await connect()
        } catch {
            failure(error, "connect")
            return 0
        }
        defer { stream.close() }
        async let writeError = write(client, to: stream)
        var verified = 0
        var buffer = [UInt8]()
        do {
            while true {
                let count = try await stream.read(into: &buffer, maxBytes: client.readSize)
                if count == 0 { break }
                if verified + count > client.payload.count {
                    round.fail("client \(index): \(verified + count) bytes echoed of \(client.payload.count) sent")
                }
                let matches = buffer.withUnsafeBytes { got in
                    client.payload.withUnsafeBytes { sent in
                        memcmp(got.baseAddress!, sent.baseAddress! + verified, count) == 0
                    }
                }
                if !matches {
                    let offset = (0..<count).first { buffer[$0] != client.payload[verified + $0] }!
                    round.fail("client \(index): byte \(verified + offset) echoed as \(buffer[offset]), "
                        + "sent as \(client.payload[verified + offset]) (read of \(count) at \(verified))")
                }
                verified += count
            }
            if verified != client.payload.count && !mayBeCancelled() {
                round.fail("client \(index): end of stream after \(verified) of \(client.payload.count) bytes")
            }
        } catch {
            failure(error, "read at byte \(verified)")
        }
        if let error = await writeError { failure(error, "write") }
        return verified
    }

    /// A cancelled task's error: `CancellationError`, or `SpindleIOError.Kind.cancelled` from a write
    /// that had sent part of its bytes.
    private static func isCancellation(_ error: any Error) -> Bool {
        error is CancellationError || (error as? SpindleIOError)?.kind == .cancelled
    }

    /// What a socket reports after its peer closed with bytes unread (a cancelled client, or
    /// the server's side of an abrupt shutdown): the connection was reset, and the next read,
    /// write or shutdown fails with ECONNRESET, EPIPE or ENOTCONN.
    private static func isPeerReset(_ error: any Error) -> Bool {
        guard let error = error as? SpindleIOError else { return false }
        return error.isConnectionReset || error.isBrokenPipe || error.errno == ENOTCONN
    }

    /// Writes the payload in chunks and then shuts the write side; returns the error, if any.
    private static func write<S: EchoStream>(_ client: Client, to stream: S) async -> (any Error)? {
        do {
            var offset = 0
            while offset < client.payload.count {
                let end = min(offset + client.chunk, client.payload.count)
                try await stream.write(client.payload[offset..<end])
                offset = end
            }
            try stream.shutdown(.write)
            return nil
        } catch {
            return error
        }
    }
}
