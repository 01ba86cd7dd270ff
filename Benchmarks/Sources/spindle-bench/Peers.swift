// Tokio and Go, the peers outside Swift (Benchmarks/Peers/): their binaries, built by
// Scripts/build-peers.sh, run W1-W7 themselves (the driver starts them instead of a child of
// this binary) and serve W8 and W9 in a process of their own, which a child of this binary
// starts, loads with the same wrk or echo client as every other server, and stops.

import Dispatch
import Foundation
import Glibc

enum Peers {
    /// Where the peer binaries are: `SPINDLE_BENCH_PEERS_DIR`, else Benchmarks/.build-peers-bin
    /// of the checkout this binary was built from.
    static var directory: String {
        if let directory = ProcessInfo.processInfo.environment["SPINDLE_BENCH_PEERS_DIR"] { return directory }
        return benchmarksFolder + "/.build-peers-bin"
    }

    /// Benchmarks/ of the checkout this file was compiled in.
    private static var benchmarksFolder: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().path
    }

    /// The peer's binary, if it has been built.
    static func binary(_ runtime: RuntimeKind) -> String? {
        let name: String
        switch runtime {
        case .tokio: name = "spindle-peer-tokio"
        case .go: name = "spindle-peer-go"
        default: return nil
        }
        let path = directory + "/" + name
        return FileManager.default.isExecutableFile(atPath: path) ? path : nil
    }

    /// Builds the peers among `runtimes` (Scripts/build-peers.sh, which prints one line for each
    /// peer it skips) and returns `runtimes` without the peers that have no binary.
    static func prepare(_ runtimes: [RuntimeKind]) -> [RuntimeKind] {
        guard runtimes.contains(where: \.isPeer) else { return runtimes }
        let script = benchmarksFolder + "/Scripts/build-peers.sh"
        // Whether a missing binary still needs saying (the script says why it skipped one).
        var unexplained = true
        if ProcessInfo.processInfo.environment["SPINDLE_BENCH_PEERS_DIR"] != nil {
            // Prebuilt elsewhere: nothing to build.
        } else if FileManager.default.isExecutableFile(atPath: script) {
            if let outcome = try? ChildProcess.run(
                [script, directory], environment: ProcessInfo.processInfo.environment, timeout: 1200) {
                for line in outcome.output.split(separator: "\n") { printError(String(line)) }
                unexplained = false
            } else {
                printError("skipped Tokio and Go peers: \(script) did not run")
                unexplained = false
            }
        }
        return runtimes.filter { runtime in
            guard runtime.isPeer else { return true }
            if binary(runtime) == nil {
                if unexplained { printError("skipped \(runtime.rawValue): no binary in \(directory)") }
                return false
            }
            return true
        }
    }

    /// The command that runs W1-W7 on a peer; it prints the RESULT line itself.
    static func workloadCommand(_ runtime: RuntimeKind, _ workload: WorkloadID, threads: Int, quick: Bool) -> [String]? {
        guard let binary = binary(runtime) else { return nil }
        return [binary, "--workload", workload.rawValue, "--threads", String(threads)] + (quick ? ["--quick"] : [])
    }

    /// W8 or W9 on a peer: starts its server, loads it, stops it.
    static func serve(_ context: WorkloadContext, workload: WorkloadID) async throws -> [Metric] {
        guard let binary = binary(context.runtime) else {
            throw WorkloadFailure(description: "no \(context.runtime.rawValue) binary in \(directory)")
        }
        let command = [binary, "--serve", workload.rawValue, "--threads", String(context.threads)]
        let server = try await LoadGenerator.onWaiter { try PeerServer(command) }
        defer { server.stop() }
        let seconds = context.sizes.loadSeconds
        switch workload {
        case .w8: return try await LoadGenerator.wrk(port: server.port, seconds: seconds, path: HTTPPlaintext.path, server: server.pid)
        case .w9: return try await LoadGenerator.echoClient(port: server.port, seconds: seconds, server: server.pid)
        default: throw WorkloadFailure(description: "\(workload.rawValue) has no server")
        }
    }
}

/// A peer's server process. It prints `PORT <n>` once it listens and exits when its standard
/// input reaches end of file: when `stop()` closes it, or when this process dies, however it
/// dies, so a server never outlives the child that started it.
final class PeerServer: @unchecked Sendable {
    // @unchecked Sendable: every property is set in init and never changed; `stop()` is called
    // once, by the task that started the server, after its load is done.
    let pid: pid_t
    let port: Int
    private let process: Process
    private let input: FileHandle
    private let exited = DispatchSemaphore(value: 0)

    /// Starts `command` and blocks until it says which port it listens on.
    init(_ command: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: command[0])
        process.arguments = Array(command.dropFirst())
        let input = Pipe(), output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        let exited = self.exited
        process.terminationHandler = { _ in exited.signal() }
        try process.run()
        self.process = process
        self.input = input.fileHandleForWriting
        pid = process.processIdentifier
        var text = ""
        while !text.contains("\n") {
            let data = output.fileHandleForReading.availableData
            if data.isEmpty { break }
            text += String(decoding: data, as: UTF8.self)
        }
        guard let line = text.split(separator: "\n").first, line.hasPrefix("PORT "), let port = Int(line.dropFirst(5)) else {
            try? input.fileHandleForWriting.close()
            throw WorkloadFailure(description: "\(command[0]) did not say its port (it printed \(text.debugDescription))")
        }
        self.port = port
    }

    /// Closes the server's standard input and waits for it to exit (5 s, then SIGKILL).
    func stop() {
        try? input.close()
        if exited.wait(timeout: .now() + 5) == .timedOut {
            kill(pid, SIGKILL)
            exited.wait()
        }
    }
}
