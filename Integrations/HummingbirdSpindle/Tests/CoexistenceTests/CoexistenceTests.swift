// A file that imports Spindle beside SwiftNIO and Hummingbird, as a server that uses both does,
// and names every type of either unqualified. It compiles only while no public type of Spindle,
// SpindleHTTP, SpindleServiceLifecycle or SpindleMetrics shares a name with one of NIOCore,
// NIOPosix or Hummingbird (`EventLoop`, `Channel`, `SocketAddress` and `IOError` did, before
// Spindle's were renamed `SpindleEventLoop`, `SpindleChannel`, `SpindleSocketAddress` and
// `SpindleIOError`); running it checks that each name means what its module says.
import Hummingbird
import NIOCore
import NIOEmbedded
import NIOPosix
import Spindle
import SpindleHTTP
import SpindleMetrics
import SpindleServiceLifecycle
import Testing

@Suite struct CoexistenceTests {
    /// Spindle's types, unqualified, on a real socket and a real loop.
    @Test func spindleTypesAreUsableUnqualified() async throws {
        let outcome = try await SpindleEventLoop.run { () async throws -> String in
            let listener = try TCPListener.bind(host: "127.0.0.1", port: 0)
            defer { listener.close() }
            let address: SpindleSocketAddress = try listener.localAddress
            let channel = SpindleChannel<String>(capacity: 1)
            let server = Task {
                for try await stream in listener.connections {
                    let bytes = try await stream.read() ?? []
                    try await channel.send(String(decoding: bytes, as: UTF8.self))
                    stream.close()
                    return
                }
            }
            let client = try await TCPStream.connect(to: address)
            try await client.write("coexists")
            let received = try await channel.receive()
            try await server.value
            // The server closed its end: the next write or read reports a typed error or EOF.
            var error: SpindleIOError?
            do {
                while try await client.read() != nil {}
                try await client.write("after close")
                try await client.write("after close")
            } catch let caught as SpindleIOError { error = caught }
            client.close()
            #expect(error == nil || error!.isBrokenPipe || error!.isConnectionReset)
            #expect(SpindleEventLoop.current != nil)
            // The free `spawn` (Spindle's host) beside NIO's names.
            let spawned = try await spawn(name: "coexists") { 1 }.value
            #expect(spawned == 1)
            return received ?? ""
        }
        #expect(outcome == "coexists")
    }

    /// NIO's types, unqualified, in the same file: the names still mean NIO's.
    @Test func nioTypesKeepTheirNames() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let loop: any EventLoop = group.next()
        let address: SocketAddress = try SocketAddress(ipAddress: "127.0.0.1", port: 80)
        #expect(address.port == 80)
        let channel: any Channel = EmbeddedChannel()
        #expect(channel.eventLoop is EmbeddedEventLoop)
        let error: any Error = IOError(errnoCode: EBADF, reason: "coexistence")
        #expect(error is IOError)
        #expect(!(error is SpindleIOError))
        let value = try await loop.submit { 42 }.get()
        #expect(value == 42)
        try await group.shutdownGracefully()
    }

    /// Hummingbird's router and Spindle's HTTP server configuration, unqualified.
    @Test func hummingbirdAndSpindleHTTPNamesCoexist() {
        let router = Router()
        router.get("/") { _, _ in "ok" }
        let configuration = HTTPServer.Configuration()
        #expect(configuration.maxHeadBytes > 0)
    }

    /// Every public top-level type of Spindle's libraries, unqualified. `SpindleTests`'
    /// `CoexistenceListTests` fails when a public type is missing here, so a new name that
    /// collides with NIO's or Hummingbird's breaks this target's build.
    @Test func everyPublicTypeNameResolves() {
        let types: [Any.Type] = [
            BlockingPool.self,
            BlockingPoolMetrics.self,
            BlockingPoolShutdownReport.self,
            ChannelClosedError.self,
            Connections<TCPStream>.self,
            File.self,
            HTTPRequestBody.self,
            HTTPResponseWriter.self,
            HTTPServer.self,
            HTTPServerError.self,
            LoopClock.self,
            ReactorBackend.self,
            ReactorChoice.self,
            Runtime.self,
            RuntimeMetrics.self,
            RuntimeMetricsExporter.self,
            RuntimeService.self,
            ShutdownDirection.self,
            ShutdownReport.self,
            Signals.self,
            SpindleChannel<Int>.self,
            SpindleError.self,
            SpindleEventLoop.self,
            SpindleHost.self,
            SpindleIOError.self,
            SpindleSocketAddress.self,
            TCPListener.self,
            TCPServerService.self,
            TCPStream.self,
            TaskSnapshot.self,
            TimeoutError.self,
            UDPSocket.self,
            UnixListener.self,
            UnixStream.self,
            WorkerMetrics.self,
        ]
        #expect(Set(types.map(ObjectIdentifier.init)).count == types.count, "a type is listed twice")
    }
}
