// Command line. Without `--child` this is the driver, which runs every measurement in a fresh
// child process (itself, re-executed with the hidden `--child` flag and exactly one workload,
// runtime and thread count), then reports medians. With the hidden `--echo-client PORT` it is
// W9's load, started by the child that runs the echo server.

import ArgumentParser

@main
struct SpindleBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "spindle-bench",
        abstract: "Compare Spindle with Swift's default executor, SwiftNIO, Hummingbird, a trivial executor, Tokio and Go.",
        discussion: """
            Each measurement runs in a fresh child process. Ratios compare a runtime with the \
            workload's baseline at the same thread count (swift-default; hummingbird for W8, \
            swift-nio for W9): above 1 is better.
            """)

    @Option(help: "Comma-separated workload ids (W1,W2,W3,W4,W5,W6,W7,W8,W9,W10,W11).")
    var workloads = WorkloadID.allCases.map(\.rawValue).joined(separator: ",")

    @Option(help: "Comma-separated runtimes (spindle,eventloop,swift-default,swift-nio,floor,hummingbird,hummingbird-spindle,tokio,go).")
    var runtimes = RuntimeKind.allCases.map(\.rawValue).joined(separator: ",")

    @Option(help: "Comma-separated thread counts. eventloop and floor run only at 1.")
    var threads = "1,2"

    @Option(help: "Child processes per measurement; the median is reported. (default: 5, or 3 with --quick)")
    var reps: Int?

    @Flag(help: "Counts divided by ten, 2 s of network load, 3 reps: the default run takes about two minutes.")
    var quick = false

    @Option(help: "Write the results as Markdown to this path.")
    var markdown: String?

    @Option(help: "Write an SVG bar chart of the ratios to this path.")
    var svg: String?

    @Option(help: "Seconds before a child process is killed and reported as failed.")
    var timeout: Double = 120

    @Option(help: "W8 and W9: seconds of load per run (default: 10, or 2 with --quick).")
    var loadSeconds: Int?

    @Flag(help: "W8 and W9: also count each server's syscalls per message with perf stat (slows the servers a little).")
    var serverCost = false

    @Flag(help: .hidden)
    var child = false

    @Flag(help: .hidden)
    var calibrateCPU = false

    @Option(help: .hidden)
    var echoClient: Int?

    @Option(help: .hidden)
    var echoSeconds = 10

    func validate() throws {
        _ = try selectedWorkloads()
        _ = try selectedRuntimes()
        let counts = try selectedThreads()
        if let reps, reps < 1 { throw ValidationError("--reps must be at least 1") }
        if timeout <= 0 { throw ValidationError("--timeout must be positive") }
        if let loadSeconds, loadSeconds < 1 { throw ValidationError("--load-seconds must be at least 1") }
        if child {
            guard try selectedWorkloads().count == 1, try selectedRuntimes().count == 1, counts.count == 1
            else { throw ValidationError("--child takes exactly one workload, runtime and thread count") }
        }
    }

    func run() throws {
        if let echoClient {
            try EchoClient.main(port: echoClient, seconds: echoSeconds)
            return
        }
        if calibrateCPU {
            print("iterations per ms: \(CPUWork.calibrate()) (compiled in: \(CPUWork.iterationsPerMillisecond))")
            return
        }
        var sizes = quick ? Sizes.quick : Sizes.full
        if let loadSeconds { sizes.loadSeconds = loadSeconds }
        if child {
            // Nothing may touch Swift concurrency before this call: it may install SwiftNIO as
            // the process's global executor, which has to happen before the first task.
            let code = Child(
                runtime: try selectedRuntimes()[0], workload: try selectedWorkloads()[0],
                threads: try selectedThreads()[0], sizes: sizes, quick: quick
            ).run()
            if code != 0 { throw ExitCode(code) }
            return
        }
        var driver = Driver(
            workloads: try selectedWorkloads(), runtimes: Peers.prepare(try selectedRuntimes()),
            threadCounts: try selectedThreads(), reps: reps ?? (quick ? 3 : 5), quick: quick, timeout: timeout)
        driver.serverCost = serverCost
        driver.loadSeconds = loadSeconds
        let results = driver.run()
        let report = Report(results: results, driver: driver, arguments: Array(CommandLine.arguments.dropFirst()))
        print(report.text())
        if let markdown { try report.markdown().write(toPath: markdown) }
        if let svg { try Chart(results: results, driver: driver).svg().write(toPath: svg) }
        if results.hasFailures { throw ExitCode(1) }
    }

    private func selectedWorkloads() throws -> [WorkloadID] {
        try list(workloads, "workload") { WorkloadID(rawValue: $0.uppercased()) }
    }

    private func selectedRuntimes() throws -> [RuntimeKind] {
        try list(runtimes, "runtime") { RuntimeKind(rawValue: $0.lowercased()) }
    }

    private func selectedThreads() throws -> [Int] {
        try list(threads, "thread count") { Int($0).flatMap { $0 >= 1 ? $0 : nil } }
    }

    private func list<T: Equatable>(_ text: String, _ what: String, _ parse: (String) -> T?) throws -> [T] {
        var values: [T] = []
        for item in text.split(separator: ",") {
            let item = item.trimmingCharacters(in: " ")
            guard let value = parse(item) else { throw ValidationError("unknown \(what) '\(item)'") }
            if !values.contains(value) { values.append(value) }
        }
        if values.isEmpty { throw ValidationError("no \(what) given") }
        return values
    }
}

extension Substring {
    fileprivate func trimmingCharacters(in set: Character) -> String {
        String(drop { $0 == set }.reversed().drop { $0 == set }.reversed())
    }
}
