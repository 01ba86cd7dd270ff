// A Hummingbird application served by SpindleHTTP on Spindle's workers.
//
// `run` binds the listener, builds an `HTTPServer` whose handler is the application's
// responder (RequestBridge.swift), and serves on the chosen executor: every connection's task
// inherits its preference, so the router, the middleware and the route handlers run on
// Spindle's workers, and the sockets are Spindle's (io_uring), not SwiftNIO's.
//
// Lifecycle. The application is a ServiceLifecycle `Service`, as Hummingbird's is. On graceful
// shutdown it calls `HTTPServer.shutdown(gracePeriod:)`: the listener closes, idle keep-alive
// connections close at once, requests in flight finish (their responses say
// `Connection: close`) for up to the grace period, then what is left is closed and cancelled;
// `run` returns when every connection has ended. Cancelling `run` stops at once. The
// application's `services` run beside the server in a `ServiceGroup`, as in Hummingbird's
// `Application.run`, and are shut down after it (the group shuts down in reverse order).
//
// Executor. With a `Runtime` or `SpindleEventLoop` given, the server runs there. Without, it runs on
// the runtime or loop of the task calling `run` (`currentSpindleHost`), and if that task is not
// on Spindle, on a `Runtime` the application creates for the call (one worker per core) and
// shuts down when `run` returns.

import Hummingbird
import Logging
import NIOCore
import NIOEmbedded
import ServiceLifecycle
import Spindle
import SpindleHTTP
import UnixSignals

/// Serves a Hummingbird application (its router, middleware, request context and responses)
/// with SpindleHTTP on a Spindle runtime, in place of Hummingbird's SwiftNIO server.
///
/// ```swift
/// let router = Router()                 // Router<BasicRequestContext>
/// router.get("hello/:name") { _, context in "Hello, \(try context.parameters.require("name"))!" }
/// let app = SpindleApplication(router: router, configuration: .init(port: 8080))
/// try await app.runService()            // until SIGTERM or SIGINT
/// ```
///
/// The context type must be initialisable from an `ApplicationRequestContextSource`, as for
/// Hummingbird's `Application`; its `channel` is a stand-in (an inert, unconnected
/// `NIOAsyncTestingChannel`), since a Spindle connection is not a SwiftNIO channel.
public struct SpindleApplication<Responder: HTTPResponder>: Service, CustomStringConvertible
where Responder.Context: InitializableFromSource<ApplicationRequestContextSource> {
    /// Where the application listens and how its server behaves.
    public struct Configuration: Sendable {
        /// The address to bind, e.g. `"0.0.0.0"` or `"127.0.0.1"`.
        public var host: String
        /// The port to bind; 0 lets the kernel choose (see `onServerRunning`).
        public var port: Int
        /// The value of the `Server` header of every response, if any.
        public var serverName: String?
        /// SpindleHTTP's limits and timeouts.
        public var http: HTTPServer.Configuration
        /// How long requests in flight may take to finish once graceful shutdown begins.
        public var shutdownGracePeriod: Duration

        public init(
            host: String = "127.0.0.1", port: Int = 8080, serverName: String? = nil,
            http: HTTPServer.Configuration = HTTPServer.Configuration(), shutdownGracePeriod: Duration = .seconds(10)
        ) {
            self.host = host
            self.port = port
            self.serverName = serverName
            self.http = http
            self.shutdownGracePeriod = shutdownGracePeriod
        }
    }

    /// Answers the requests: usually `router.buildResponder()`.
    public let responder: Responder
    public let configuration: Configuration
    public let logger: Logger
    /// Services run beside the server, in the same `ServiceGroup` (database clients, ...).
    public var services: [any Service]
    private let executor: (any TaskExecutor)?
    private let onServerRunning: @Sendable (SpindleSocketAddress) async -> Void

    /// An application answering with `responder`.
    ///
    /// - Parameters:
    ///   - runtime: the `Runtime` or `SpindleEventLoop` to serve on; nil for the caller's (or, if the
    ///     caller is not on Spindle, a `Runtime` created for the run).
    ///   - onServerRunning: called with the bound address once the server accepts connections.
    public init(
        responder: Responder, configuration: Configuration = Configuration(), runtime: (any TaskExecutor)? = nil,
        services: [any Service] = [], onServerRunning: @escaping @Sendable (SpindleSocketAddress) async -> Void = { _ in },
        logger: Logger? = nil
    ) {
        self.responder = responder
        self.configuration = configuration
        self.executor = runtime
        self.services = services
        self.onServerRunning = onServerRunning
        self.logger = logger ?? Logger(label: configuration.serverName ?? "Hummingbird")
    }

    /// An application answering with `router`'s responder (see
    /// ``init(responder:configuration:runtime:services:onServerRunning:logger:)``).
    public init<Builder: HTTPResponderBuilder>(
        router: Builder, configuration: Configuration = Configuration(), runtime: (any TaskExecutor)? = nil,
        services: [any Service] = [], onServerRunning: @escaping @Sendable (SpindleSocketAddress) async -> Void = { _ in },
        logger: Logger? = nil
    ) where Builder.Responder == Responder {
        self.init(
            responder: router.buildResponder(), configuration: configuration, runtime: runtime, services: services,
            onServerRunning: onServerRunning, logger: logger)
    }

    public var description: String { "SpindleApplication(\(configuration.host):\(configuration.port))" }

    /// Serves until graceful shutdown (see the type's documentation) or cancellation, with the
    /// application's `services` beside the server.
    ///
    /// - Throws: the bind's `SpindleIOError`, or what a service throws.
    public func run() async throws {
        let server = ServerService(application: self)
        if services.isEmpty {
            try await server.run()
        } else {
            let group = ServiceGroup(configuration: .init(services: services + [server], logger: logger))
            try await group.run()
        }
    }

    /// Runs the application in a `ServiceGroup` of its own that shuts it down gracefully on
    /// `gracefulShutdownSignals`.
    public func runService(gracefulShutdownSignals: [UnixSignal] = [.sigterm, .sigint]) async throws {
        let group = ServiceGroup(
            configuration: .init(services: [self], gracefulShutdownSignals: gracefulShutdownSignals, logger: logger))
        try await group.run()
    }

    /// Binds, then serves on the chosen executor until graceful shutdown or cancellation.
    fileprivate func serve() async throws {
        let listener = try TCPListener.bind(host: configuration.host, port: configuration.port)
        defer { listener.close() }
        let bridge = RequestBridge(
            responder: responder, logger: logger, channel: NIOAsyncTestingChannel(),
            serverName: configuration.serverName)
        let server = HTTPServer(configuration: configuration.http, logger: logger) { request, body, writer in
            try await bridge.respond(to: request, body: body, writer: writer)
        }
        let address = try listener.localAddress
        logger.info("Server started and listening", metadata: ["address": "\(address)"])
        let gracePeriod = configuration.shutdownGracePeriod
        let serving: @Sendable () async -> Void = {
            await withGracefulShutdownHandler {
                await withDiscardingTaskGroup { group in
                    group.addTask { await onServerRunning(address) }
                    await server.serve(listener)
                }
            } onGracefulShutdown: {
                server.shutdown(gracePeriod: gracePeriod)
            }
        }
        if let executor {
            await withTaskExecutorPreference(executor, operation: serving)
        } else if let host = currentSpindleHost {
            await withTaskExecutorPreference(host, operation: serving)
        } else {
            let runtime = try Runtime()
            await withTaskExecutorPreference(runtime, operation: serving)
            await runtime.shutdown(gracePeriod: gracePeriod)
        }
        logger.info("Server stopped", metadata: ["address": "\(address)"])
    }
}

/// The server alone as a `Service`, for the group `run` builds when there are services too.
private struct ServerService<Responder: HTTPResponder>: Service
where Responder.Context: InitializableFromSource<ApplicationRequestContextSource> {
    let application: SpindleApplication<Responder>
    func run() async throws { try await application.serve() }
}
