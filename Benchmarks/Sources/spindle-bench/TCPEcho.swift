// W9 tcp_echo: an echo server on 127.0.0.1, loaded for 10 s (2 s in quick mode) by the client of
// EchoClient.swift, a separate process with 64 connections each doing 64-byte round trips.
// Metric: msgs_per_s, round trips per second over all connections.
//
// Two servers here (Tokio's and Go's are in Benchmarks/Peers; Peers.swift runs them):
// - spindle / eventloop: per connection, `read(into:)` what has arrived (one array reused for
//   every read) and `write` it back, until the
//   peer closes (SpindleServer.swift for the accept loop).
// - swift-nio: a raw SwiftNIO server, `ServerBootstrap` on `MultiThreadedEventLoopGroup.singleton`
//   (`threads` loops, set by the driver through NIO_SINGLETON_GROUP_LOOP_COUNT), whose
//   `ChannelInboundHandler` writes back what it reads and flushes when a read burst ends.
// Both turn Nagle's algorithm off on accepted connections.

import NIOCore
import NIOPosix
import Spindle

enum TCPEcho {
    static func run(_ context: WorkloadContext) async throws -> [Metric] {
        let seconds = context.sizes.loadSeconds
        switch context.runtime {
        case .spindle, .eventloop:
            return try await SpindleServer.serve(handle: echo) { port in
                try await LoadGenerator.echoClient(port: port, seconds: seconds)
            }
        case .swiftNIO:
            return try await runNIO(seconds: seconds)
        case .tokio, .go:
            return try await Peers.serve(context, workload: .w9)
        default:
            throw WorkloadFailure(description: "W9 has no server on \(context.runtime.rawValue)")
        }
    }

    static func echo(_ stream: TCPStream) async throws {
        try stream.setNoDelay()
        var buffer: [UInt8] = []
        while try await stream.read(into: &buffer, maxBytes: 64 * 1024) > 0 {
            try await stream.write(buffer)
        }
    }

    static func runNIO(seconds: Int) async throws -> [Metric] {
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(EchoHandler())
                }
            }
            .bind(host: "127.0.0.1", port: 0)
            .get()
        guard let port = server.localAddress?.port else {
            throw WorkloadFailure(description: "W9: the NIO server has no port")
        }
        do {
            let metrics = try await LoadGenerator.echoClient(port: port, seconds: seconds)
            try await server.close()
            return metrics
        } catch {
            try? await server.close()
            throw error
        }
    }

    /// Writes back every buffer it reads; flushes once per read burst.
    final class EchoHandler: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            context.write(data, promise: nil)
        }

        func channelReadComplete(context: ChannelHandlerContext) {
            context.flush()
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            context.close(promise: nil)
        }
    }
}
