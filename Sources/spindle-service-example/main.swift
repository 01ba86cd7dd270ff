// A line-protocol server run by a ServiceLifecycle `ServiceGroup` on a Spindle runtime.
//
//     swift run spindle-service-example --port 7001 --workers 2 [--drain-timeout-ms 5000]
//
// Each connection is one request of two lines: the client sends `begin NAME`, the server
// answers `started NAME`, the client sends any second line, the server answers
// `done NAME LINE` and closes. SIGTERM or SIGINT starts a graceful shutdown: the server stops
// accepting, lets the requests in progress finish (up to the drain timeout), then the runtime
// stops and the process exits 0. ServiceGroup owns the signals; Spindle's `Signals` is not used
// (docs/service-lifecycle.md, "Signals").
//
// `--spindle-signals` adds a service that also waits with Spindle's `Signals.wait` once the
// group has registered its signal sources: it shows the conflict that section describes (its
// handler replaces libdispatch's, so SIGTERM no longer reaches the group and the process goes
// on serving until it is killed).

import Glibc
import Logging
import ServiceLifecycle
import Spindle
import SpindleServiceLifecycle

struct Options {
    var host = "127.0.0.1"
    var port = 7001
    var workers: Int? = nil
    var drainTimeout = Duration.seconds(5)
    var spindleSignals = false

    init(_ arguments: [String]) throws {
        var rest = arguments.dropFirst()
        func number(_ flag: String, atLeast minimum: Int) throws -> Int {
            guard let text = rest.popFirst(), let value = Int(text), value >= minimum else {
                throw UsageError(message: "\(flag) needs a number of at least \(minimum)")
            }
            return value
        }
        while let flag = rest.popFirst() {
            switch flag {
            case "--host":
                guard let value = rest.popFirst() else { throw UsageError(message: "--host needs a value") }
                host = value
            case "--port": port = try number(flag, atLeast: 0)
            case "--workers": workers = try number(flag, atLeast: 1)
            case "--drain-timeout-ms": drainTimeout = .milliseconds(try number(flag, atLeast: 0))
            case "--spindle-signals": spindleSignals = true
            default: throw UsageError(message: "unknown option \(flag)")
            }
        }
        if port > 65535 { throw UsageError(message: "--port needs a number from 0 to 65535") }
    }
}

struct UsageError: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}

/// Reads `\n`-terminated lines from a connection.
struct LineReader {
    let connection: TCPStream
    private var pending: [UInt8] = []

    init(_ connection: TCPStream) { self.connection = connection }

    /// The next line without its terminator; nil at the end of the stream. A line longer than
    /// 4 KiB ends the connection with an error.
    mutating func next() async throws -> String? {
        while true {
            if let end = pending.firstIndex(of: UInt8(ascii: "\n")) {
                let line = String(decoding: pending[..<end], as: UTF8.self)
                pending.removeSubrange(...end)
                return line
            }
            guard pending.count <= 4096 else { throw UsageError(message: "line too long") }
            guard let bytes = try await connection.read() else { return nil }
            pending += bytes
        }
    }
}

/// The wrong way, kept to show the conflict: Spindle's `Signals.wait` in a process whose
/// `ServiceGroup` owns the same signals.
struct SpindleSignalsService: Service {
    let runtime: Runtime
    let logger: Logger

    func run() async throws {
        try await withTaskExecutorPreference(runtime) {
            do {
                try await cancelWhenGracefulShutdown {
                    try Signals.watch([SIGINT, SIGTERM])  // from here on the handler is Spindle's
                    logger.warning("Spindle's Signals is watching SIGINT and SIGTERM")
                    let signal = try await Signals.wait(for: [SIGINT, SIGTERM])
                    logger.warning("Spindle's Signals.wait took signal \(signal); the service group will not see it")
                    try await gracefulShutdown()
                }
            } catch is CancellationError {
                // The group's graceful shutdown (it got the signal this time) or cancellation.
            }
        }
    }
}

/// One request: `begin NAME` / `started NAME` / any line / `done NAME LINE`.
@Sendable func serveRequest(_ connection: TCPStream) async throws {
    var lines = LineReader(connection)
    guard let first = try await lines.next() else { return }
    guard first.hasPrefix("begin ") else {
        try await connection.write("error: expected begin NAME\n")
        return
    }
    let name = first.dropFirst("begin ".count)
    try await connection.write("started \(name)\n")
    guard let second = try await lines.next() else { return }
    try await connection.write("done \(name) \(second)\n")
}

LoggingSystem.bootstrap { label in
    var handler = StreamLogHandler.standardOutput(label: label)
    handler.logLevel = .info
    return handler
}
let logger = Logger(label: "spindle-service-example")
let options: Options
do {
    options = try Options(CommandLine.arguments)
} catch {
    print("\(error)\nusage: spindle-service-example [--host H] [--port P] [--workers N] "
        + "[--drain-timeout-ms MS] [--spindle-signals]")
    exit(2)
}

do {
    let runtime = try Runtime(workers: options.workers, logger: logger)
    let listener = try TCPListener.bind(host: options.host, port: options.port)
    let server = TCPServerService(
        listener: listener, on: runtime, drainTimeout: options.drainTimeout, logger: logger,
        handler: serveRequest)
    var services: [ServiceGroupConfiguration.ServiceConfiguration] = [
        // First: shut down last, after the server has drained (docs/service-lifecycle.md).
        .init(service: RuntimeService(runtime, gracePeriod: .seconds(2), logger: logger)),
        .init(service: server),
    ]
    if options.spindleSignals { services.append(.init(service: SpindleSignalsService(runtime: runtime, logger: logger))) }
    let group = ServiceGroup(
        configuration: .init(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
    let address = try listener.localAddress
    logger.info("listening on \(address)")
    try await group.run()
    logger.info("spindle-service-example stopped")
} catch {
    logger.error("spindle-service-example failed", metadata: ["error": "\(error)"])
    exit(1)
}
