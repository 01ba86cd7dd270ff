// The server: accepts connections, serves each in a child task (HTTPConnection.swift), runs the
// watchdog that enforces timeouts and the shutdown deadline (ConnectionWatch.swift), and caps
// the number of connections.
//
// Shutdown. `shutdown(gracePeriod:)` stops accepting (closes the listeners), closes every
// connection idle between requests, and lets the others finish the request they are on: its
// response says `Connection: close` and the connection closes after it. At the deadline the
// watchdog closes whatever is left. `serve` returns once every connection has ended. The
// shutdown flag and a connection's phase are a Dekker pair, both sequentially consistent: a
// connection stores its idle phase then loads the flag; shutdown stores the flag then loads
// each phase; so either the connection sees the flag (and closes itself) or shutdown sees it
// idle (and closes it). Cancelling the task that runs `serve` stops at once: the accept loop
// ends and every connection's read or write throws.

import HTTPTypes
import Logging
import Spindle
import Synchronization

/// An HTTP/1.1 server over Spindle's `TCPListener` or `UnixListener`.
///
/// ```swift
/// let server = HTTPServer { request, body, response in
///     try await response.respond(HTTPResponse(status: .ok), body: Array("Hello".utf8))
/// }
/// let listener = try TCPListener.bind(host: "127.0.0.1", port: 8080)
/// await server.serve(listener)  // until `server.shutdown()` or cancellation
/// ```
///
/// Each connection is served by one task: requests on it are handled one after another (so
/// pipelined requests get their responses in order), and responses to pipelined requests that
/// are already buffered go out together in one write.
public final class HTTPServer: Sendable {
    /// Handles one request: reads its body (if it wants it) and writes one response.
    ///
    /// The body and the writer belong to this request and this call: using them after it
    /// returns throws ``HTTPServerError/Kind/requestFinished``. A handler that throws before
    /// writing its response head gets a 500 sent for it; after, the connection is closed.
    public typealias Handler = @Sendable (HTTPRequest, HTTPRequestBody, HTTPResponseWriter) async throws -> Void

    let configuration: Configuration
    let logger: Logger
    let handler: Handler
    let registry = ConnectionRegistry()
    private let shuttingDown = Atomic<Bool>(false)
    /// Monotonic nanoseconds after which shutdown closes every connection; 0 before shutdown.
    private let shutdownDeadline = Atomic<Int64>(0)
    private let listeners = Mutex<[Int: @Sendable () -> Void]>([:])
    private let nextListener = Atomic<Int>(0)
    private let refusedConnections = Atomic<Int>(0)

    /// A server handling requests with `handler`, within `configuration`'s limits. `logger`
    /// records refused requests, timeouts, handler errors, dropped connections and shutdown.
    public init(
        configuration: Configuration = Configuration(), logger: Logger = Logger(label: "spindle.http"),
        handler: @escaping Handler
    ) {
        self.configuration = configuration
        self.logger = logger
        self.handler = handler
    }

    /// The connections being served now.
    public var connectionCount: Int { registry.count }

    /// Whether `shutdown` was called.
    public var isShuttingDown: Bool { shuttingDown.load(ordering: .sequentiallyConsistent) }

    /// Serves connections from `listener` until it is closed, `shutdown` is called, or the
    /// calling task is cancelled; returns once every connection it accepted has ended.
    public func serve(_ listener: TCPListener) async {
        await serve(closeListener: { listener.close() }, listener.connections) { .tcp($0) }
    }

    /// Serves connections from a Unix-domain `listener` (see ``serve(_:)-(TCPListener)``).
    public func serve(_ listener: UnixListener) async {
        await serve(closeListener: { listener.close() }, listener.connections) { .unix($0) }
    }

    /// Starts a graceful shutdown: stops accepting, closes idle connections at once, lets
    /// requests in flight finish for up to `gracePeriod`, then closes what is left (and
    /// cancels their handlers). Calls after the first do nothing.
    public func shutdown(gracePeriod: Duration = .seconds(10)) {
        if shuttingDown.exchange(true, ordering: .sequentiallyConsistent) { return }  // the first call decides
        shutdownDeadline.store(monotonicNanoseconds() + gracePeriod.nanoseconds, ordering: .relaxed)
        let closers = listeners.withLock { Array($0.values) }
        for close in closers { close() }
        var idle = 0
        var busy = 0
        registry.forEach { watch in
            if watch.phase == .idle {
                idle += 1
                watch.transport.close()
            } else {
                busy += 1
            }
        }
        logger.notice(
            "HTTP server shutting down",
            metadata: ["idle_closed": "\(idle)", "in_flight": "\(busy)", "grace_period": "\(gracePeriod)"])
    }

    private func serve<Stream: Sendable>(
        closeListener: @escaping @Sendable () -> Void, _ connections: Connections<Stream>,
        _ transport: @escaping @Sendable (Stream) -> Transport
    ) async {
        let id = nextListener.add(1, ordering: .relaxed).newValue
        listeners.withLock { $0[id] = closeListener }
        defer { _ = listeners.withLock { $0.removeValue(forKey: id) } }
        if isShuttingDown { closeListener() }
        let acceptEnded = Flag()
        // The watchdog throws at the shutdown deadline, which cancels the connections' tasks
        // (a handler that does no I/O would not notice its stream being closed).
        try? await withThrowingDiscardingTaskGroup { group in
            group.addTask { try await self.watchdog(acceptEnded: acceptEnded) }
            do {
                for try await stream in connections {
                    let connection = transport(stream)
                    guard registry.count < configuration.maxConnections else {
                        connection.close()
                        let refused = refusedConnections.add(1, ordering: .relaxed).newValue
                        if refused == 1 || refused % 1000 == 0 {
                            logger.warning(
                                "HTTP connection refused: the connection limit is reached",
                                metadata: ["max_connections": "\(configuration.maxConnections)", "refused_total": "\(refused)"])
                        }
                        continue
                    }
                    let watch = ConnectionWatch(transport: connection)
                    registry.add(watch)
                    group.addTask {
                        await HTTPConnection(server: self, watch: watch).run()
                        self.registry.remove(watch)
                    }
                }
            } catch {
                if !(error is CancellationError) && !isShuttingDown && !Task.isCancelled
                    && (error as? SpindleIOError)?.kind != .closed {  // closed: the normal end
                    logger.error("HTTP accept loop failed", metadata: ["error": "\(error)"])
                }
            }
            acceptEnded.set()
        }
    }

    private struct ShutdownDeadlinePassed: Error {}

    /// A flag set once (by the accept loop when it ends, read by the watchdog).
    private final class Flag: Sendable {
        // Relaxed: the watchdog only needs to see it eventually, and reads nothing it guards.
        private let value = Atomic<Bool>(false)
        func set() { value.store(true, ordering: .relaxed) }
        var isSet: Bool { value.load(ordering: .relaxed) }
    }

    /// Closes connections past their deadline until accepting has ended and no connection is
    /// left, or the calling task is cancelled. At the shutdown deadline it closes every
    /// connection and throws, which cancels the connections' tasks.
    private func watchdog(acceptEnded: Flag) async throws {
        let period = configuration.watchdogPeriod
        while true {
            do {
                try await Spindle.sleep(for: acceptEnded.isSet ? .milliseconds(10) : period)
            } catch {
                return
            }
            if acceptEnded.isSet && registry.count == 0 { return }
            let now = monotonicNanoseconds()
            let shutdownAt = shutdownDeadline.load(ordering: .relaxed)
            if shutdownAt != 0 && now > shutdownAt {
                var closed = 0
                registry.forEach { watch in
                    closed += 1
                    watch.expire()
                }
                if closed > 0 {
                    logger.warning("HTTP shutdown deadline passed: closing connections still in flight",
                                   metadata: ["closed": "\(closed)"])
                    throw ShutdownDeadlinePassed()
                }
            } else {
                registry.forEach { $0.expireIfDue(now: now) }
            }
        }
    }
}
