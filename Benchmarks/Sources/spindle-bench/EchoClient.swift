// W9's load: 64 TCP connections to the echo server, each doing 64-byte request/response round
// trips (write 64 bytes, read the 64 echoed back, compare) until the time is up. The same
// client, in a process of its own (`spindle-bench --echo-client PORT --echo-seconds S`), loads
// every server: Spindle's, SwiftNIO's, Tokio's and Go's.
//
// The client itself is C on epoll (Sources/EchoLoad): one thread drives the 64 connections
// with plain non-blocking send/recv, about one core, leaving the other to the server. It runs
// on no runtime under test (this process never starts a Spindle runtime), so a change in
// Spindle cannot slow down or speed up the load it puts on the others; until issue 12 it ran
// on one Spindle worker. Connections are all opened before the clock starts; the count is of
// completed round trips, and the time runs to the last one.

import EchoLoad

enum EchoClient {
    static let connections = 64
    static let messageBytes = 64

    /// Runs the client and prints its one report line:
    /// `ECHO round_trips=<n> seconds=<s> cpu_seconds=<s> connections=64`.
    static func main(port: Int, seconds: Int) throws {
        var report = echo_load_report()
        if echo_load_run(Int32(port), Int32(connections), Int32(messageBytes), Int32(seconds), &report) != 0 {
            let message = withUnsafeBytes(of: &report.error) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            throw WorkloadFailure(description: message)
        }
        print("ECHO round_trips=\(report.round_trips) seconds=\(report.seconds) cpu_seconds=\(report.cpu_seconds) "
            + "connections=\(connections)")
    }

    /// The `round_trips` field of the report line.
    static func reportedRoundTrips(_ output: String) -> Double? {
        guard let line = output.split(separator: "\n").first(where: { $0.hasPrefix("ECHO ") }) else { return nil }
        for pair in line.split(separator: " ") where pair.hasPrefix("round_trips=") {
            return Double(pair.dropFirst("round_trips=".count))
        }
        return nil
    }

    /// msgs_per_s (round trips per second, all connections together) and the client's CPU
    /// time per round trip (client_cpu_us_per_msg) from the report line.
    static func parseReport(_ output: String) throws -> [Metric] {
        guard let line = output.split(separator: "\n").first(where: { $0.hasPrefix("ECHO ") }) else {
            throw WorkloadFailure(description: "W9: the echo client printed no report:\n\(output)")
        }
        var fields: [String: Double] = [:]
        for pair in line.split(separator: " ").dropFirst() {
            let parts = pair.split(separator: "=", maxSplits: 1)
            if parts.count == 2, let value = Double(parts[1]) { fields[String(parts[0])] = value }
        }
        guard let roundTrips = fields["round_trips"], let seconds = fields["seconds"], roundTrips > 0, seconds > 0 else {
            throw WorkloadFailure(description: "W9: the echo client's report says no round trips: \(line)")
        }
        var metrics = [Metric(name: "msgs_per_s", value: roundTrips / seconds)]
        if let cpu = fields["cpu_seconds"] {
            metrics.append(Metric(name: "client_cpu_us_per_msg", value: cpu * 1e6 / roundTrips))
        }
        return metrics
    }
}
