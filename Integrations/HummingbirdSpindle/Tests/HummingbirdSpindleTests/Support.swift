import Hummingbird
import HummingbirdSpindle
import Logging
import ServiceLifecycle
import Spindle

/// Where a test's application runs: a 2-worker `Runtime` or a `SpindleEventLoop`.
enum TestHost: String, CaseIterable, Sendable, CustomStringConvertible {
    case runtime, eventLoop
    var description: String { rawValue }

    func run<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) async throws -> T {
        switch self {
        case .runtime: try await Runtime.run(workers: 2, gracePeriod: .seconds(5), body)
        case .eventLoop: try await SpindleEventLoop.run(gracePeriod: .seconds(5), body)
        }
    }
}

struct TimedOut: Error, CustomStringConvertible {
    let what: String
    var description: String { "timed out: \(what)" }
}

struct NotStarted: Error {}

/// Polls `condition` (every millisecond) until it holds, failing after `seconds`.
func eventually(_ what: String, seconds: Double = 20, _ condition: () -> Bool) async throws {
    let deadline = ContinuousClock.now + .seconds(seconds)
    while !condition() {
        if ContinuousClock.now > deadline { throw TimedOut(what: what) }
        try await Spindle.sleep(for: .milliseconds(1))
    }
}

/// Runs ``TestApplication`` as a `SpindleApplication` on 127.0.0.1 (a port the kernel picks)
/// in a `ServiceGroup` on `host`, runs `client` with the port, then shuts the group down
/// gracefully (unless `client` did) and waits for it to return.
func withApplication<T: Sendable>(
    _ host: TestHost = .runtime, http: HTTPServer.Configuration = HTTPServer.Configuration(),
    _ client: @escaping @Sendable (Int, TestApplication, ServiceGroup) async throws -> T
) async throws -> T {
    try await host.run {
        let test = TestApplication()
        var logger = Logger(label: "test.hummingbird-spindle")
        logger.logLevel = .warning
        let (ports, portContinuation) = AsyncStream.makeStream(of: Int.self)
        let app = SpindleApplication(
            router: test.router(),
            configuration: .init(port: 0, serverName: "spindle-test", http: http, shutdownGracePeriod: .seconds(5)),
            onServerRunning: { address in
                portContinuation.yield(address.port)
                portContinuation.finish()
            },
            logger: logger)
        let group = ServiceGroup(configuration: .init(services: [app], logger: logger))
        return try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask {
                defer { portContinuation.finish() }
                try await group.run()
            }
            var iterator = ports.makeAsyncIterator()
            guard let port = await iterator.next() else {
                try await tasks.waitForAll()  // rethrows why the application did not start
                throw NotStarted()
            }
            let result: Result<T, any Error>
            do { result = .success(try await client(port, test, group)) } catch { result = .failure(error) }
            test.gate.open()
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
            return try result.get()
        }
    }
}
