// W8 http_plaintext: an HTTP/1.1 keep-alive server on 127.0.0.1 answering `GET /` with 200 and
// the body `Hello, World!`, loaded by `wrk -t1 -c64 -d10s --latency` (2 s in quick mode) from a
// process of its own (LoadGenerator.swift). Metrics: wrk's req_per_s and p99_ms.
// `SPINDLE_BENCH_W8_PATH=/json` loads `GET /json` instead, which every server answers with
// `{"message":"Hello, World!"}` encoded per request by Foundation's JSONEncoder (TechEmpower's
// JSON test).
//
// Three servers:
// - spindle / eventloop: SpindleHTTP's `HTTPServer` (Sources/SpindleHTTP) on the runtime under
//   test, with a handler answering the two routes (404 otherwise): the full server, strict
//   parsing, limits and timeouts included, as `spindle-http` serves.
// - hummingbird: Hummingbird 2's `Application` with the router of `router()`, its I/O on
//   `MultiThreadedEventLoopGroup.singleton` (`threads` loops: the driver sets
//   NIO_SINGLETON_GROUP_LOOP_COUNT), its route handlers (async code) on Swift's global
//   executor, as a stock Hummingbird server runs. It stops the way a deployed one does, by a
//   graceful shutdown on a signal (SIGUSR1, which this process sends itself once wrk is done). Making SwiftNIO's loops the global
//   executor too, so that everything runs on `threads` threads as in Spindle's server, was
//   measured and rejected: it cut Hummingbird's req_per_s from ~40k to ~26k at 1 loop, and from
//   ~43k to ~38k at 2 (quick runs); the comparison is with Hummingbird at its best.
// - hummingbird-spindle: the same router served by `SpindleApplication`
//   (Integrations/HummingbirdSpindle) on a Spindle `Runtime` of `threads` workers: SpindleHTTP
//   for the sockets and HTTP/1.1, Hummingbird for routing, middleware, context and encoding.
//   It stops by a graceful shutdown of its ServiceGroup once wrk is done.

import Foundation
import Glibc
import HTTPTypes
import Hummingbird
import HummingbirdSpindle
import Logging
import NIOCore
import ServiceLifecycle
import Spindle
import SpindleHTTP

enum HTTPPlaintext {
    static let body = "Hello, World!"

    /// The JSON route's value.
    struct Message: ResponseEncodable {
        let message: String
    }

    /// The path wrk loads: `/`, or `SPINDLE_BENCH_W8_PATH`.
    static var path: String { ProcessInfo.processInfo.environment["SPINDLE_BENCH_W8_PATH"] ?? "/" }

    static func run(_ context: WorkloadContext) async throws -> [Metric] {
        let seconds = context.sizes.loadSeconds
        switch context.runtime {
        case .spindle, .eventloop:
            return try await runSpindleHTTP(seconds: seconds)
        case .hummingbird:
            return try await runHummingbird(seconds: seconds)
        case .hummingbirdSpindle:
            return try await runHummingbirdSpindle(seconds: seconds)
        case .tokio, .go:
            return try await Peers.serve(context, workload: .w8)
        default:
            throw WorkloadFailure(description: "W8 has no server on \(context.runtime.rawValue)")
        }
    }

    /// A logger for the servers that keeps "server started" lines out of the driver's output.
    static var quietLogger: Logger {
        var logger = Logger(label: "spindle-bench.w8")
        logger.logLevel = .warning
        return logger
    }

    // MARK: SpindleHTTP

    static func runSpindleHTTP(seconds: Int) async throws -> [Metric] {
        let plain = HTTPResponse(status: .ok, headerFields: [.contentType: "text/plain; charset=utf-8"])
        let json = HTTPResponse(status: .ok, headerFields: [.contentType: "application/json; charset=utf-8"])
        let plainBody = Array(body.utf8)
        let server = HTTPServer(logger: quietLogger) { request, _, response in
            switch request.path {
            case "/": try await response.respond(plain, body: plainBody)
            case "/json": try await response.respond(json, body: try JSONEncoder().encode(Message(message: body)))
            default: try await response.respond(HTTPResponse(status: .notFound))
            }
        }
        let listener = try TCPListener.bind(host: "127.0.0.1", port: 0)
        let port = try listener.localAddress.port
        async let serving: Void = server.serve(listener)
        let metrics: Result<[Metric], any Error>
        do { metrics = .success(try await LoadGenerator.wrk(port: port, seconds: seconds, path: path)) } catch {
            metrics = .failure(error)
        }
        server.shutdown(gracePeriod: .seconds(2))
        await serving
        return try metrics.get()
    }

    // MARK: Hummingbird

    /// The application both Hummingbird servers serve.
    static func router() -> Router<BasicRequestContext> {
        let router = Router()
        router.get("/") { _, _ in HTTPPlaintext.body }
        router.get("/json") { _, _ in Message(message: HTTPPlaintext.body) }
        return router
    }

    static func runHummingbird(seconds: Int) async throws -> [Metric] {
        let (ports, portContinuation) = AsyncStream.makeStream(of: Int.self)
        let app = Application(
            router: router(),
            configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { channel in
                portContinuation.yield(channel.localAddress?.port ?? 0)
                portContinuation.finish()
            },
            eventLoopGroupProvider: .singleton)
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                // The service group handles the signal before `onServerRunning` is called.
                try await app.runService(gracefulShutdownSignals: [.sigusr1])
            }
            var iterator = ports.makeAsyncIterator()
            guard let port = await iterator.next(), port > 0 else {
                throw WorkloadFailure(description: "W8: Hummingbird reported no port")
            }
            let metrics: [Metric]
            do {
                metrics = try await LoadGenerator.wrk(port: port, seconds: seconds, path: path)
            } catch {
                kill(getpid(), SIGUSR1)
                throw error
            }
            kill(getpid(), SIGUSR1)
            try await group.waitForAll()
            return metrics
        }
    }

    // MARK: Hummingbird on Spindle

    static func runHummingbirdSpindle(seconds: Int) async throws -> [Metric] {
        let (ports, portContinuation) = AsyncStream.makeStream(of: Int.self)
        let app = SpindleApplication(
            router: router(),
            configuration: .init(port: 0),
            onServerRunning: { address in
                portContinuation.yield(address.port)
                portContinuation.finish()
            },
            logger: quietLogger)
        let services = ServiceGroup(configuration: .init(services: [app], logger: quietLogger))
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                defer { portContinuation.finish() }
                try await services.run()
            }
            var iterator = ports.makeAsyncIterator()
            guard let port = await iterator.next(), port > 0 else {
                try await group.waitForAll()
                throw WorkloadFailure(description: "W8: SpindleApplication reported no port")
            }
            let metrics: Result<[Metric], any Error>
            do { metrics = .success(try await LoadGenerator.wrk(port: port, seconds: seconds, path: path)) } catch {
                metrics = .failure(error)
            }
            await services.triggerGracefulShutdown()
            try await group.waitForAll()
            return try metrics.get()
        }
    }
}
