// A TCP server as a ServiceLifecycle `Service`: accept, hand each connection to a handler,
// and on graceful shutdown stop accepting and drain.
//
// `run` is two child tasks on the runtime (task executor preference, which every connection's
// task inherits):
//   - serving: the accept loop over `listener.connections`, each connection in a child of a
//     discarding task group. It returns when the listener is closed *and* every connection's
//     handler has returned; that is "drained".
//   - the drain deadline: waits for graceful shutdown, then closes the listener (the kernel
//     refuses new connections from then on; ones still in the listen backlog are reset) and
//     sleeps `drainTimeout`.
// Whichever finishes first decides: drained, and the deadline is cancelled; the deadline
// passed, and serving is cancelled, which cancels every connection's task (their reads and
// writes end with `CancellationError`), and `run` returns once they have. Cancellation of
// `run` itself (the group cancelled) cancels both at once. So `run` returns no later than
// `drainTimeout` after graceful shutdown plus however long the handlers take to honour
// cancellation, which for handlers that only await Spindle I/O is at once.
//
// Graceful shutdown is a task-local of ServiceLifecycle that the connections' tasks inherit,
// so a handler that keeps a connection open across requests (HTTP keep-alive) can end it at a
// request boundary: check `Task.isShuttingDownGracefully`, or wrap the wait for the next
// request in `withGracefulShutdownHandler` / `cancelWhenGracefulShutdown`. A handler that does
// neither is drained until the deadline.

import Logging
import ServiceLifecycle
import Spindle
import Synchronization

/// A `Service` that serves the connections of a `TCPListener`: each connection runs
/// `handler` in a task of its own on the given runtime and is closed when the handler returns.
///
/// On graceful shutdown it stops accepting (closes the listener), waits up to `drainTimeout`
/// for the connections in progress to finish, then cancels the rest and returns once their
/// handlers have. The service owns the listener: it is closed when `run` returns.
///
/// The handler is anything that speaks a protocol over a `TCPStream` (a line protocol, HTTP):
///
/// ```swift
/// let listener = try TCPListener.bind(host: "127.0.0.1", port: 8080)
/// let server = TCPServerService(listener: listener, on: runtime, drainTimeout: .seconds(5)) { connection in
///     while let bytes = try await connection.read() { try await connection.write(bytes) }
/// }
/// ```
///
/// A handler that serves several requests per connection should stop between requests once
/// `Task.isShuttingDownGracefully` is true (or use `withGracefulShutdownHandler`), so that
/// idle connections end at once instead of at the deadline.
public struct TCPServerService: Service, CustomStringConvertible {
    /// Serves one connection. Its errors are logged (at debug level) and end that connection.
    public typealias Handler = @Sendable (TCPStream) async throws -> Void

    /// The listener the service accepts from.
    public let listener: TCPListener
    /// How long graceful shutdown waits for the connections in progress before cancelling them.
    public let drainTimeout: Duration
    private let executor: any TaskExecutor
    private let handler: Handler
    private let logger: Logger
    private let counts = ConnectionCounts()

    /// Serves `listener`'s connections with `handler`, on `executor` (a `Runtime` or an
    /// `SpindleEventLoop`; the accept loop and every connection's task run there).
    public init(
        listener: TCPListener,
        on executor: any TaskExecutor,
        drainTimeout: Duration = .seconds(10),
        logger: Logger = Logger(label: "spindle"),
        handler: @escaping Handler
    ) {
        self.listener = listener
        self.executor = executor
        self.drainTimeout = drainTimeout
        self.logger = logger
        self.handler = handler
    }

    /// Connections accepted whose handler has not returned yet.
    public var activeConnections: Int { counts.active.load(ordering: .relaxed) }
    /// Connections accepted since `run` started.
    public var acceptedConnections: Int { counts.accepted.load(ordering: .relaxed) }

    /// The service and its listener's address, for ServiceLifecycle's logs:
    /// "TCPServerService(127.0.0.1:8080)".
    public var description: String {
        "TCPServerService(\((try? listener.localAddress.description) ?? "closed listener"))"
    }

    /// Accepts and serves until graceful shutdown (then drains, see the type's documentation)
    /// or cancellation.
    ///
    /// - Throws: the listener's error when accepting fails for a reason other than its
    ///   closing (descriptor exhaustion is retried, not thrown: see `TCPListener.accept()`).
    public func run() async throws {
        defer { listener.close() }
        let address = (try? listener.localAddress.description) ?? "?"
        logger.info("accepting connections", metadata: ["address": "\(address)"])
        try await withTaskExecutorPreference(executor) {
            try await withThrowingTaskGroup(of: Outcome.self) { group in
                group.addTask { try await serve() }
                group.addTask { await drainDeadline() }
                let first = try await group.next()
                group.cancelAll()
                if first == .deadlinePassed {
                    logger.warning(
                        "drain deadline passed, cancelling connections",
                        metadata: ["connections": "\(activeConnections)", "drain_timeout": "\(drainTimeout)"])
                }
                while try await group.next() != nil {}
            }
        }
        logger.info(
            "stopped serving", metadata: ["address": "\(address)", "accepted": "\(acceptedConnections)"])
    }

    private enum Outcome: Sendable { case drained, deadlinePassed, cancelled }

    /// The accept loop and the connections' tasks; returns once the listener is closed and
    /// every connection is done.
    private func serve() async throws -> Outcome {
        do {
            try await withThrowingDiscardingTaskGroup { connections in
                for try await connection in listener.connections {
                    counts.opened()
                    connections.addTask {
                        defer {
                            connection.close()
                            counts.closed()
                        }
                        do {
                            try await handler(connection)
                        } catch is CancellationError {
                            // Cancelled at the drain deadline or with the service: not a failure.
                        } catch {
                            logger.debug("connection ended with an error", metadata: ["error": "\(error)"])
                        }
                    }
                }
            }
        } catch is CancellationError {
            return .cancelled
        }
        return .drained
    }

    /// Waits for graceful shutdown, stops accepting, then waits `drainTimeout`.
    private func drainDeadline() async -> Outcome {
        do {
            try await gracefulShutdown()
        } catch {
            return .cancelled
        }
        listener.close()
        logger.info(
            "graceful shutdown: stopped accepting, draining connections",
            metadata: ["connections": "\(activeConnections)", "drain_timeout": "\(drainTimeout)"])
        do {
            try await Spindle.sleep(for: drainTimeout)
        } catch {
            return .cancelled
        }
        return .deadlinePassed
    }
}

/// The server's connection counts, shared by its copies (the struct is copied into tasks).
private final class ConnectionCounts: Sendable {
    // Relaxed: statistics for logs and callers; they order nothing (the task group is what
    // waits for the connections).
    let active = Atomic<Int>(0)
    let accepted = Atomic<Int>(0)

    func opened() {
        active.add(1, ordering: .relaxed)
        accepted.add(1, ordering: .relaxed)
    }

    func closed() { active.subtract(1, ordering: .relaxed) }
}
