// Starting one child process with a time limit. The child's stdout goes to a temporary file
// (read when it exits, so a chatty child can never block on a full pipe); its stderr is the
// driver's, so its diagnostics show as they happen.

import Foundation

struct ChildOutcome {
    let output: String
    let status: Int32
    let timedOut: Bool
    let seconds: Double
}

enum ChildProcess {
    /// Absolute path of the running binary, for re-executing it.
    static let currentExecutable: String =
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]

    /// Runs `command` (program path first). Past `timeout` seconds the child is killed with
    /// SIGKILL and the outcome says so.
    static func run(_ command: [String], environment: [String: String], timeout: Double) throws -> ChildOutcome {
        let outputPath = FileManager.default.temporaryDirectory
            .appendingPathComponent("spindle-bench-\(getpid())-\(UUID().uuidString).out")
        guard FileManager.default.createFile(atPath: outputPath.path, contents: nil) else {
            throw CocoaError(.fileWriteUnknown)
        }
        defer { try? FileManager.default.removeItem(at: outputPath) }
        let output = try FileHandle(forWritingTo: outputPath)
        defer { try? output.close() }

        let process = Process()
        process.executableURL = URL(fileURLWithPath: command[0])
        process.arguments = Array(command.dropFirst())
        process.environment = environment
        process.standardOutput = output
        let exited = DispatchSemaphore(value: 0)
        process.terminationHandler = { _ in exited.signal() }

        let start = ContinuousClock.now
        try process.run()
        var timedOut = false
        if exited.wait(timeout: .now() + timeout) == .timedOut {
            timedOut = true
            kill(process.processIdentifier, SIGKILL)
            exited.wait()
        }
        let seconds = start.duration(to: .now).nanoseconds / 1e9
        let text = (try? String(contentsOf: outputPath, encoding: .utf8)) ?? ""
        return ChildOutcome(output: text, status: process.terminationStatus, timedOut: timedOut, seconds: seconds)
    }
}
