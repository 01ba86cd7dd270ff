// What the example servers share: their command line and their life cycle (bind, serve until
// SIGINT or SIGTERM, then stop accepting, cancel the connections and exit).

import CSpindle
import Glibc
import Logging
import Spindle

/// `--host H --port P (--workers N | --event-loop) [--reactor auto|io_uring|epoll]
/// [--deny-io-uring] [--max-open-files N]`.
public struct ServerOptions: Sendable {
    public var host = "127.0.0.1"
    public var port = 8080
    public var workers: Int? = nil
    public var eventLoop = false
    /// Lowers RLIMIT_NOFILE (used by the tests to exhaust descriptors on purpose).
    public var maxOpenFiles: Int? = nil
    /// Prints the runtime's counters when the server stops.
    public var printMetrics = false
    /// The reactor to ask for (`--reactor`; default automatic, which honours SPINDLE_REACTOR).
    public var reactor = ReactorChoice.automatic
    /// Installs a seccomp filter that refuses io_uring with EPERM before anything starts, as
    /// Docker's default profile does (`--deny-io-uring`; for the tests).
    public var denyIoUring = false

    public init(arguments: [String], defaultPort: Int) throws {
        port = defaultPort
        var rest = arguments.dropFirst()
        func value(_ flag: String) throws -> String {
            guard let value = rest.popFirst() else { throw UsageError(message: "\(flag) needs a value") }
            return value
        }
        while let flag = rest.popFirst() {
            switch flag {
            case "--host": host = try value(flag)
            case "--port":
                guard let number = Int(try value(flag)), (0...65535).contains(number) else {
                    throw UsageError(message: "--port needs a number from 0 to 65535")
                }
                port = number
            case "--workers":
                guard let number = Int(try value(flag)), number >= 1 else {
                    throw UsageError(message: "--workers needs a number of at least 1")
                }
                workers = number
            case "--event-loop": eventLoop = true
            case "--metrics": printMetrics = true
            case "--deny-io-uring": denyIoUring = true
            case "--reactor":
                switch try value(flag) {
                case "auto": reactor = .automatic
                case "io_uring": reactor = .ioUring
                case "epoll": reactor = .epoll
                default: throw UsageError(message: "--reactor needs auto, io_uring or epoll")
                }
            case "--max-open-files":
                guard let number = Int(try value(flag)), number >= 8 else {
                    throw UsageError(message: "--max-open-files needs a number of at least 8")
                }
                maxOpenFiles = number
            case "--help", "-h":
                throw UsageError(message: "")
            default:
                throw UsageError(message: "unknown option \(flag)")
            }
        }
        if eventLoop && workers != nil { throw UsageError(message: "--workers and --event-loop exclude each other") }
    }
}

public struct UsageError: Error, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}

/// Parses the options, then serves with `serve` on the runtime they choose until SIGINT or
/// SIGTERM. Operational messages go through swift-log, bootstrapped here to standard output
/// (info and above): among them `listening on ADDRESS` once the listener is bound (tests wait
/// for it). Exits the process with status 2 on a usage error and 1 on a failure.
public func runServer(
    name: String, defaultPort: Int, _ serve: @escaping @Sendable (TCPListener) async -> Void
) -> Never {
    LoggingSystem.bootstrap { label in
        var handler = StreamLogHandler.standardOutput(label: label)
        handler.logLevel = .info
        return handler
    }
    let logger = Logger(label: name)
    let options: ServerOptions
    do {
        options = try ServerOptions(arguments: CommandLine.arguments, defaultPort: defaultPort)
    } catch {
        print("\(error)\nusage: \(name) [--host H] [--port P] [--workers N | --event-loop] [--reactor auto|io_uring|epoll] [--deny-io-uring] [--metrics]")
        exit(2)
    }
    if options.denyIoUring {
        let result = spindle_seccomp_deny_io_uring()
        if result != 0 {
            logger.critical("could not install the seccomp filter", metadata: ["errno": "\(-result)"])
            exit(1)
        }
        logger.notice("seccomp filter installed: io_uring_setup fails with EPERM")
    }
    if let limit = options.maxOpenFiles {
        var value = rlimit(rlim_cur: rlim_t(limit), rlim_max: rlim_t(limit))
        setrlimit(Int32(RLIMIT_NOFILE.rawValue), &value)
    }
    let body: @Sendable () async throws -> Void = {
        try Signals.watch([SIGINT, SIGTERM])
        let listener = try TCPListener.bind(host: options.host, port: options.port, logger: logger)
        let reactor = currentSpindleHost.map { String(describing: $0.reactorBackend) } ?? "?"
        logger.info("\(name) runs on \(reactor)", metadata: ["reactor": "\(reactor)"])
        let address = try listener.localAddress
        logger.notice("\(name) listening on \(address)", metadata: ["address": "\(address)"])
        fflush(nil)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await serve(listener) }
            let signal = try await Signals.wait(for: [SIGINT, SIGTERM])
            logger.notice("\(name) received signal \(signal), stopping", metadata: ["signal": "\(signal)"])
            fflush(nil)
            listener.close()
            group.cancelAll()
            try await group.waitForAll()
            if options.printMetrics, let runtime = Runtime.current {
                for (index, worker) in runtime.metrics().workers.enumerated() {
                    print("worker \(index): \(worker)")
                }
            }
        }
    }
    do {
        if options.eventLoop {
            try SpindleEventLoop.runBlocking(reactor: options.reactor, gracePeriod: .seconds(2), body)
        } else {
            try Runtime.runBlocking(workers: options.workers, reactor: options.reactor, gracePeriod: .seconds(2), body)
        }
    } catch {
        logger.critical("\(name) failed", metadata: ["error": "\(error)"])
        fflush(nil)
        exit(1)
    }
    logger.notice("\(name) stopped")
    fflush(nil)
    exit(0)
}

/// Accepts connections until the listener closes, each served by `handle` in a child task
/// (children inherit the runtime; cancelling the caller cancels them all), which runs it as a
/// task spawned with the peer's address as its name, so the task dump lists the connections.
public func acceptLoop(
    _ listener: TCPListener, _ handle: @escaping @Sendable (TCPStream) async -> Void
) async {
    await withDiscardingTaskGroup { group in
        do {
            for try await connection in listener.connections {
                group.addTask {
                    defer { connection.close() }
                    let peer = (try? connection.peerAddress).map { "\($0)" } ?? "?"
                    await runSpawned(name: "connection \(peer)") { await handle(connection) }
                }
            }
        } catch {
            // Cancelled (shutdown) or a listener error: stop accepting.
        }
    }
}
