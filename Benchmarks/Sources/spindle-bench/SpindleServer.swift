// The server side of W8 and W9 on Spindle (a `Runtime` or a `SpindleEventLoop`): a listener on
// 127.0.0.1 with a port the kernel picks, a multishot accept (`listener.connections`) in the
// calling task, and a child task per connection in a discarding task group, so connections
// inherit the runtime of the child's root task. The load runs meanwhile in another child
// task; when it is done the listener is closed, which ends the accept loop, and the
// connections still open are cancelled. The server stops by itself.

import Glibc
import Spindle
import Synchronization

enum SpindleServer {
    /// Serves each connection with `handle` while `load(port)` runs; returns what `load` returns.
    static func serve(
        handle: @escaping @Sendable (TCPStream) async throws -> Void,
        whileRunning load: @escaping @Sendable (Int) async throws -> [Metric]
    ) async throws -> [Metric] {
        let listener = try TCPListener.bind(host: "127.0.0.1", port: 0)
        let port = try listener.localAddress.port
        let errors = ConnectionErrors()
        let metrics = try await withThrowingTaskGroup(of: [Metric]?.self) { group in
            group.addTask {
                defer { listener.close() }
                return try await load(port)
            }
            group.addTask {
                await withDiscardingTaskGroup { connections in
                    do {
                        for try await stream in listener.connections {
                            connections.addTask {
                                do { try await handle(stream) } catch { errors.record(error) }
                                stream.close()
                            }
                        }
                    } catch {
                        errors.record(error)
                    }
                    connections.cancelAll()
                }
                return nil
            }
            var metrics: [Metric]?
            for try await result in group where result != nil { metrics = result }
            return metrics!
        }
        errors.report()
        if getenv("SPINDLE_BENCH_METRICS") != nil {
            // For looking into a run: the server's counters, on stderr.
            if let runtime = Runtime.current {
                for (index, worker) in runtime.metrics().workers.enumerated() { printError("worker \(index): \(worker)") }
            } else if let loop = SpindleEventLoop.current {
                printError("event loop: \(loop.metrics())")
            }
        }
        return metrics
    }
}

/// Errors that ended a connection (or the accept loop) other than by the peer closing it:
/// printed on stderr, since a benchmark whose server drops connections is measuring something
/// else. Resets and cancellations at the end of the load are expected and not counted.
final class ConnectionErrors: Sendable {
    private let state = Mutex<(count: Int, first: String?)>((0, nil))

    func record(_ error: any Error) {
        if error is CancellationError { return }
        if let error = error as? SpindleIOError, error.isConnectionReset || error.isBrokenPipe || error.kind == .closed { return }
        state.withLock { state in
            state.count += 1
            if state.first == nil { state.first = "\(error)" }
        }
    }

    func report() {
        let (count, first) = state.withLock { ($0.count, $0.first) }
        guard count > 0, let first else { return }
        printError("spindle-bench child: \(count) connection(s) ended with an error; the first: \(first)")
    }
}
