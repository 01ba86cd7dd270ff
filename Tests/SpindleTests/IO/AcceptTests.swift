import Glibc
import Synchronization
import Testing
@testable import Spindle

/// A plain blocking TCP socket connected to 127.0.0.1:`port` (made before any descriptor runs
/// out), which then sends `byte`.
struct RawClient {
    let fd: Int32

    init() throws {
        fd = socket(AF_INET, Sockets.stream, 0)
        try #require(fd >= 0, "socket: \(errno)")
    }

    func connect(port: Int, sending byte: UInt8) throws {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        try #require(connected == 0, "connect: \(errno)")
        var byte = byte
        try #require(Glibc.send(fd, &byte, 1, Int32(MSG_NOSIGNAL)) == 1)
    }
}

/// Sets the process's descriptor limit; false if the kernel refused.
@discardableResult
func setDescriptorLimit(_ limit: rlimit) -> Bool {
    var limit = limit
    return setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0
}

extension SpindleTests {
    /// `listener.connections`: the multishot accept, what happens when the kernel ends it, and
    /// the single-shot accepts used off Spindle and where multishot is refused.
    @Suite struct AcceptTests {
        /// The kernel ends a multishot accept when an accept fails, here with EMFILE (every
        /// descriptor below the limit in use). The acceptor must back off, arm a new request
        /// once descriptors are free again, and lose none of the connections that waited.
        /// (ENFILE, ENOBUFS and ENOMEM take the same branch; the kernel cannot be made to
        /// produce those here.)
        @Test(arguments: Host.allCases)
        func aMultishotAcceptEndedByTheKernelIsArmedAgainAndLosesNoConnection(host: Host) async throws {
            let saved = { () -> rlimit in
                var limit = rlimit()
                getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
                return limit
            }()
            defer { setDescriptorLimit(saved) }
            #expect(Acceptor.isExhaustion(ENOBUFS) && Acceptor.isExhaustion(ENFILE) && Acceptor.isExhaustion(ENOMEM))
            let clients = 4
            let recorder = LogRecorder()
            let (received, backoffs) = try await host.run { () -> ([UInt8], UInt64) in
                let listener = try TCPListener.bind(host: "127.0.0.1", port: 0, logger: recorder.logger)
                let port = try listener.localAddress.port
                defer { listener.close() }
                let raw = try (0..<clients).map { _ in try RawClient() }
                defer { raw.forEach { _ = Glibc.close($0.fd) } }
                // A limit a little above the highest descriptor in use. The kernel reads it
                // when the accept request is prepared, so it is lowered before the first one.
                var highest: Int32 = 0
                for entry in descriptorTargets() {
                    if let number = Int32(entry.prefix { $0 != "-" }) { highest = max(highest, number) }
                }
                var limit = saved
                limit.rlim_cur = rlim_t(highest + 32)
                try #require(setDescriptorLimit(limit), "setrlimit: \(errno)")
                return try await withThrowingTaskGroup(of: [UInt8].self) { group in
                    group.addTask {
                        var bytes: [UInt8] = []
                        for try await connection in listener.connections {
                            defer { connection.close() }
                            bytes += try await connection.readExactly(1)
                            if bytes.count == clients { break }
                        }
                        return bytes
                    }
                    try await untilInFlight("the multishot accept")
                    // Use up every descriptor below the limit, then connect.
                    var fillers: [Int32] = []
                    defer { fillers.forEach { _ = Glibc.close($0) } }
                    while fillers.count < 1_000 {
                        let fd = dup(raw[0].fd)
                        if fd < 0 { break }
                        fillers.append(fd)
                    }
                    try #require(errno == EMFILE && fillers.count < 1_000, "\(fillers.count) descriptors, errno \(errno)")
                    for (index, client) in raw.enumerated() { try client.connect(port: port, sending: UInt8(index)) }
                    try await eventually("the acceptor backs off") { listener.acceptBackoffs >= 1 }
                    fillers.forEach { _ = Glibc.close($0) }
                    fillers = []
                    setDescriptorLimit(saved)
                    let bytes = try await group.next()!
                    group.cancelAll()
                    return (bytes, listener.acceptBackoffs)
                }
            }
            #expect(received.sorted() == (0..<UInt8(clients)).map { $0 }, "received \(received)")
            // The episode is logged once when it begins and once when it ends, with the count,
            // however many times the acceptor backed off in between.
            let began = recorder.entries(containing: "accept is out of descriptors")
            let ended = recorder.entries(containing: "accept recovered from descriptor exhaustion")
            #expect(began.count == 1, "\(recorder.all)")
            #expect(began.first?.level == .warning)
            #expect(began.first?.metadata["errno"] == "\(EMFILE)")
            #expect(ended.count == 1, "\(recorder.all)")
            #expect(ended.first?.metadata["backoffs"] == "\(backoffs)", "\(recorder.all), \(backoffs) back-offs")
        }

        /// Off Spindle (a plain task on Swift's executor) there is no ring to keep a multishot
        /// request on: every connection is one accept on the process's I/O loop, and nothing is
        /// left armed once the iteration stops.
        @Test func connectionsIteratedOffSpindleAreSingleShotAcceptsOnTheIOLoop() async throws {
            let received = try await bounded(30, "accepting off Spindle") { () -> [UInt8] in
                let (listener, port) = try localListener()
                defer { listener.close() }
                let raw = try (0..<3).map { _ in try RawClient() }
                defer { raw.forEach { _ = Glibc.close($0.fd) } }
                let consumer = Task.detached { () -> [UInt8] in
                    var bytes: [UInt8] = []
                    for try await connection in listener.connections {
                        defer { connection.close() }
                        bytes += try await connection.readExactly(1)
                        if bytes.count == 3 { break }
                    }
                    return bytes
                }
                for (index, client) in raw.enumerated() { try client.connect(port: port, sending: UInt8(index)) }
                return try await consumer.value
            }
            #expect(received.sorted() == [0, 1, 2])
            let loop = try IOLoop.shared()
            try await eventually("nothing left armed on the I/O loop") { loop.metrics().operationsInFlight == 0 }
        }

        /// Where the kernel refuses multishot accept (before Linux 5.19: EINVAL), the acceptor
        /// stops asking for it and serves `connections` with one accept per connection, on the
        /// ring of the iterating task. (The refusal is stood in for by clearing the flag the
        /// first EINVAL clears; this kernel takes multishot accept.)
        @Test(arguments: Host.allCases)
        func whereMultishotIsRefusedConnectionsAreSingleShotAccepts(host: Host) async throws {
            Acceptor.multishotWorks.store(false, ordering: .relaxed)
            defer { Acceptor.multishotWorks.store(true, ordering: .relaxed) }
            let received = try await host.run { () -> [UInt8] in
                let (listener, port) = try localListener()
                defer { listener.close() }
                let raw = try (0..<3).map { _ in try RawClient() }
                defer { raw.forEach { _ = Glibc.close($0.fd) } }
                async let consumer: [UInt8] = {
                    var bytes: [UInt8] = []
                    for try await connection in listener.connections {
                        defer { connection.close() }
                        bytes += try await connection.readExactly(1)
                        if bytes.count == 3 { break }
                    }
                    return bytes
                }()
                for (index, client) in raw.enumerated() { try client.connect(port: port, sending: UInt8(index)) }
                let bytes = try await consumer
                // A multishot request would stay armed until the listener closes.
                try await eventually("no accept left armed") { operationsInFlight() == 0 }
                return bytes
            }
            #expect(received.sorted() == [0, 1, 2])
        }
    }
}
