import Glibc
import Logging
import ServiceLifecycle
import SpindleServiceLifecycle
import Synchronization
import Testing
@testable import Spindle

/// Connects, sends `begin NAME` and waits for `started NAME`: a request of the example's line
/// protocol now in progress in the server.
private func beginRequest(port: Int, name: String) async throws -> TCPStream {
    let stream = try await TCPStream.connect(host: "127.0.0.1", port: port, timeout: .seconds(5))
    try await stream.write("begin \(name)\n")
    let answer = try await withTimeout(.seconds(10)) { try await stream.readExactly("started \(name)\n".utf8.count) }
    #expect(String(decoding: answer, as: UTF8.self) == "started \(name)\n")
    return stream
}

/// Reads until the server closes the connection.
private func readToEnd(_ stream: TCPStream) async throws -> String {
    var received: [UInt8] = []
    while let bytes = try await withTimeout(.seconds(10), operation: { try await stream.read() }) {
        received += bytes
    }
    return String(decoding: received, as: UTF8.self)
}

extension SpindleTests {
    /// `spindle-service-example`: a ServiceGroup with RuntimeService and TCPServerService.
    @Suite struct ServiceLifecycleTests {
        @Test func sigtermMidRequestFinishesItStopsAcceptingAndExitsZero() async throws {
            // A drain timeout far beyond the exit bound below: the child must exit because the
            // request finished, not because the deadline passed.
            let server = try ServerProcess("spindle-service-example", ["--workers", "2", "--drain-timeout-ms", "60000"])
            let port = server.port
            try await bounded(30, "request across SIGTERM") {
                let request = try await beginRequest(port: port, name: "a")
                defer { request.close() }
                kill(server.pid, SIGTERM)
                _ = try await server.waitForOutput(containing: "stopped accepting")
                // The listener is closed: a new connection is refused.
                await #expect(throws: SpindleIOError.self) {
                    let late = try await TCPStream.connect(host: "127.0.0.1", port: port, timeout: .seconds(5))
                    late.close()
                }
                try await request.write("second line\n")
                #expect(try await readToEnd(request) == "done a second line\n")
            }
            let (status, output) = server.stop(signal: nil)  // waits up to 10 s, then kills
            #expect(status == 0, "\(output)")
            #expect(output.contains("stopped serving"), "\(output)")
            #expect(output.contains("spindle runtime stopped"), "\(output)")
            #expect(output.contains("spindle-service-example stopped"), "\(output)")
            #expect(!output.contains("drain deadline passed"), "\(output)")
            // The runtime service ran after the server had drained (it is listed first).
            let lines = output.split(separator: "\n")
            let serverStopped = try #require(lines.firstIndex { $0.contains("stopped serving") })
            let runtimeStopped = try #require(lines.firstIndex { $0.contains("spindle runtime stopped") })
            #expect(serverStopped < runtimeStopped, "\(output)")
        }

        @Test func drainDeadlineCancelsAnUnfinishedRequestAndStillExitsZero() async throws {
            let server = try ServerProcess("spindle-service-example", ["--workers", "2", "--drain-timeout-ms", "300"])
            let port = server.port
            let rest = try await bounded(30, "request past the drain deadline") { () -> String in
                let request = try await beginRequest(port: port, name: "slow")
                defer { request.close() }
                kill(server.pid, SIGTERM)
                // The client never sends its second line: the server closes the connection at
                // the deadline instead of answering.
                return try await readToEnd(request)
            }
            #expect(rest == "")
            let (status, output) = server.stop(signal: nil)
            #expect(status == 0, "\(output)")
            #expect(output.contains("drain deadline passed"), "\(output)")
            #expect(output.contains("spindle runtime stopped"), "\(output)")
        }

        @Test func runtimeServiceStopsWithinItsGracePeriodWhenWorkOutlivesIt() async throws {
            let runtime = try Runtime(workers: 2)
            let started = Atomic<Bool>(false)
            // A blocking job cannot be interrupted: it outlives the 100 ms grace period.
            try runtime.spawn(name: "stubborn") { () async throws -> Void in
                try await toThread {
                    started.store(true, ordering: .releasing)
                    usleep(3_000_000)
                }
            }
            try await eventually("the blocking job runs") { started.load(ordering: .acquiring) }
            let group = ServiceGroup(
                services: [RuntimeService(runtime, gracePeriod: .milliseconds(100))],
                gracefulShutdownSignals: [], logger: Logger(label: "test"))
            let clock = ContinuousClock()
            let elapsed = try await bounded(20, "service group with stubborn work") { () -> Duration in
                let run = Task { try await group.run() }
                let start = clock.now
                await group.triggerGracefulShutdown()
                try await run.value
                return clock.now - start
            }
            #expect(runtime.isShutDown)
            #expect(elapsed < .milliseconds(2_500), "\(elapsed)")  // did not wait for the 3 s job
        }
    }
}
