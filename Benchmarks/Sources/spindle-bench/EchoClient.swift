// W9's load: 64 TCP connections to the echo server, each doing 64-byte request/response round
// trips (write 64 bytes, read the 64 echoed back, compare) until the time is up. The same
// client, in a process of its own (`spindle-bench --echo-client PORT --echo-seconds S`), loads
// every server.
//
// It runs on one Spindle worker: one thread with one io_uring keeps 64 connections busy for
// about a core, leaving the other core to the server. The alternative, 64 threads doing
// blocking send/recv, loaded every server less (quick runs: SwiftNIO's 1-loop server did 84k
// round trips/s under it, 119k under this client; Spindle's 1-worker server 87k and 124k).
// Connections are all opened before the clock starts; the count is of completed round trips,
// and the time runs to the last one.

import Glibc
import Spindle

enum EchoClient {
    static let connections = 64
    static let messageBytes = 64

    /// Runs the client and prints its one report line:
    /// `ECHO round_trips=<n> seconds=<s> connections=64`.
    static func main(port: Int, seconds: Int) throws {
        let (roundTrips, elapsed, cpu) = try Runtime.runBlocking(workers: 1) {
            try await load(port: port, seconds: seconds)
        }
        print("ECHO round_trips=\(roundTrips) seconds=\(elapsed) cpu_seconds=\(cpu) connections=\(connections)")
    }

    /// Round trips, seconds, and the CPU seconds this process used meanwhile.
    private static func load(port: Int, seconds: Int) async throws -> (Int, Double, Double) {
        var opened: [TCPStream] = []
        for _ in 0..<connections {
            let stream = try await TCPStream.connect(host: "127.0.0.1", port: port, timeout: .seconds(5))
            try stream.setNoDelay()
            opened.append(stream)
        }
        let streams = opened
        let start = ContinuousClock.now
        let cpuAtStart = processCPUSeconds()
        let deadline = start + .seconds(seconds)
        let roundTrips = try await withThrowingTaskGroup(of: Int.self) { group in
            for (index, stream) in streams.enumerated() {
                group.addTask {
                    var message = [UInt8](repeating: UInt8(truncatingIfNeeded: index), count: messageBytes)
                    var reply: [UInt8] = []
                    var trips = 0
                    while ContinuousClock.now < deadline {
                        message[1] = UInt8(truncatingIfNeeded: trips)
                        try await stream.write(message)
                        // One reused array (the common case: the 64 bytes arrive together), so
                        // that the client's own cost per round trip stays small next to the
                        // server's.
                        var count = try await stream.read(into: &reply, maxBytes: messageBytes)
                        if count < messageBytes && count > 0 {
                            var whole = reply
                            while whole.count < messageBytes {
                                count = try await stream.read(into: &reply, maxBytes: messageBytes - whole.count)
                                if count == 0 { break }
                                whole += reply
                            }
                            reply = whole
                        }
                        try check(reply == message, "W9: connection \(index) got back different bytes")
                        trips += 1
                    }
                    return trips
                }
            }
            return try await group.reduce(0, +)
        }
        let elapsed = start.duration(to: .now)
        let cpu = processCPUSeconds() - cpuAtStart
        for stream in streams { stream.close() }
        return (roundTrips, elapsed.nanoseconds / 1e9, cpu)
    }

    /// The `seconds` field of the report line (the load's duration).
    static func reportedSeconds(_ output: String) -> Double? {
        guard let line = output.split(separator: "\n").first(where: { $0.hasPrefix("ECHO ") }) else { return nil }
        for pair in line.split(separator: " ") where pair.hasPrefix("seconds=") {
            return Double(pair.dropFirst("seconds=".count))
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

/// User plus system CPU seconds this process has used so far (all its threads).
func processCPUSeconds() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    func seconds(_ time: timeval) -> Double { Double(time.tv_sec) + Double(time.tv_usec) / 1e6 }
    return seconds(usage.ru_utime) + seconds(usage.ru_stime)
}
