// The load of the network workloads, as a process of its own: W8's `wrk` and W9's echo client
// (this binary in `--echo-client` mode). The server's child process starts it once it listens,
// waits for it on a Dispatch thread (never on a thread of the runtime under test, which would
// stall the server it measures), and turns its report into metrics. The load process inherits
// the child's CPU affinity, which is every CPU: both share the machine's two cores.

import Dispatch
import Foundation
import Glibc

enum LoadGenerator {
    /// Extra seconds a load process may take beyond its nominal duration before it is killed.
    static let slack = 30.0

    private static let waiter = DispatchQueue(label: "spindle-bench.load")

    /// W8: `wrk -t1 -c64 -d<seconds>s --latency` against `GET <path>` on 127.0.0.1:`port`,
    /// and what the server (process `server`) cost per request meanwhile (ServerCost.swift).
    static func wrk(port: Int, seconds: Int, path: String = "/", server: pid_t = getpid()) async throws -> [Metric] {
        let (output, cost) = try await run(
            [wrkPath, "-t1", "-c64", "-d\(seconds)s", "--latency", "http://127.0.0.1:\(port)\(path)"],
            timeout: Double(seconds) + slack, server: server, messages: wrkRequests)
        return try parseWrk(output) + cost
    }

    /// W9: the echo client of EchoClient.swift, 64 connections for `seconds`, and what the
    /// server (process `server`) cost per round trip meanwhile (ServerCost.swift). On 2 cores
    /// shared with the client, msgs_per_s depends on what both sides cost; the cost metrics say
    /// what the server's share is.
    static func echoClient(port: Int, seconds: Int, server: pid_t = getpid()) async throws -> [Metric] {
        let (output, cost) = try await run(
            [ChildProcess.currentExecutable, "--echo-client", String(port), "--echo-seconds", String(seconds)],
            timeout: Double(seconds) + slack, server: server, messages: EchoClient.reportedRoundTrips)
        return try EchoClient.parseReport(output) + cost
    }

    /// Runs `work` on the waiter's Dispatch thread, never on a thread of the runtime under test.
    static func onWaiter<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            waiter.async { continuation.resume(with: Result { try work() }) }
        }
    }

    /// Runs `command` to completion and returns its standard output, with the cost per message
    /// of process `server` meanwhile (`messages` reads the count from the output); throws if
    /// the command fails or outlives `timeout` seconds.
    static func run(
        _ command: [String], timeout: Double, server: pid_t,
        messages: @escaping @Sendable (String) -> Double?
    ) async throws -> (output: String, cost: [Metric]) {
        try await onWaiter {
            let window = ServerCost.Window.start(pid: server)
            let outcome = try ChildProcess.run(
                command, environment: ProcessInfo.processInfo.environment, timeout: timeout)
            let cost = window.finish(messages: messages(outcome.output) ?? 0)
            let name = (command[0] as NSString).lastPathComponent
            if outcome.timedOut {
                throw WorkloadFailure(description: "\(name) killed after \(Int(timeout)) s")
            }
            if outcome.status != 0 {
                throw WorkloadFailure(description: "\(name) exited with status \(outcome.status)")
            }
            return (outcome.output, cost)
        }
    }

    /// wrk's count of completed requests ("123456 requests in 10.00s, ...").
    static func wrkRequests(_ output: String) -> Double? {
        output.split(separator: "\n").first { $0.contains("requests in") }
            .flatMap { $0.split(separator: " ").first }.flatMap { Double($0) }
    }

    /// `wrk` from PATH, else /usr/bin/wrk (where Debian installs it).
    static var wrkPath: String {
        let directories = (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":")
        for directory in directories {
            let path = "\(directory)/wrk"
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        return "/usr/bin/wrk"
    }

    /// req_per_s, p50_ms and p99_ms (from `--latency`'s distribution) and socket_errors (the
    /// sum of wrk's connect, read, write and timeout errors). Non-2xx responses fail the check.
    static func parseWrk(_ output: String) throws -> [Metric] {
        var requestsPerSecond: Double?
        var percentiles: [String: Double] = [:]
        var socketErrors = 0.0
        var requests = 0.0
        for line in output.split(separator: "\n") {
            let fields = line.split(separator: " ")
            guard let first = fields.first else { continue }
            if first == "Requests/sec:", fields.count >= 2 {
                requestsPerSecond = Double(fields[1])
            } else if first == "50%" || first == "99%", fields.count >= 2 {
                percentiles[String(first)] = milliseconds(String(fields[1]))
            } else if line.contains("requests in"), let count = Double(first) {
                requests = count
            } else if first == "Socket" {
                // "Socket errors: connect 0, read 0, write 0, timeout 0"
                socketErrors = fields.compactMap { Double($0.filter(\.isNumber)) }.reduce(0, +)
            } else if first == "Non-2xx" {
                throw WorkloadFailure(description: "W8: wrk saw non-2xx responses: \(line)")
            }
        }
        guard let requestsPerSecond, let p50 = percentiles["50%"], let p99 = percentiles["99%"], requests > 0 else {
            throw WorkloadFailure(description: "W8: cannot read wrk's report:\n\(output)")
        }
        return [
            Metric(name: "req_per_s", value: requestsPerSecond),
            Metric(name: "p50_ms", value: p50),
            Metric(name: "p99_ms", value: p99),
            Metric(name: "socket_errors", value: socketErrors),
        ]
    }

    /// wrk's "797.00us", "1.07ms", "2.01s" or "1.00m", in milliseconds.
    private static func milliseconds(_ text: String) -> Double? {
        let units: [(String, Double)] = [("us", 0.001), ("ms", 1), ("s", 1000), ("m", 60_000)]
        for (suffix, scale) in units where text.hasSuffix(suffix) {
            return Double(text.dropLast(suffix.count)).map { $0 * scale }
        }
        return nil
    }
}
