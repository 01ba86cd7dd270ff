// The driver: runs every (workload, runtime, threads) measurement `reps` times, each in a fresh
// child process, and collects the RESULT lines.
//
// Repetitions are interleaved (rep 1 of every configuration, then rep 2, ...) so that drift in
// a shared, noisy machine hits all runtimes alike rather than whichever ran last. A child that
// fails or outlives the timeout marks its configuration failed, and its remaining reps are
// skipped rather than waited for again. shared/workloads.md asks for the median of 5 runs
// where a run is under 10 s: a configuration whose first child took longer gets at most 3.

import Foundation

/// One runtime at one thread count.
struct Configuration: Hashable, Sendable {
    let runtime: RuntimeKind
    let threads: Int

    var label: String { "\(runtime.rawValue) x\(threads)" }
}

struct ResultKey: Hashable, Sendable {
    let workload: WorkloadID
    let configuration: Configuration
}

struct Results: Sendable {
    /// Each rep's metrics, in the order the reps ran.
    var samples: [ResultKey: [[String: Double]]] = [:]
    var failures: [ResultKey: String] = [:]
    var elapsed: Duration = .zero

    var hasFailures: Bool { !failures.isEmpty }

    func values(_ key: ResultKey, _ metric: String) -> [Double] {
        (samples[key] ?? []).compactMap { $0[metric] }
    }

    func median(_ key: ResultKey, _ metric: String) -> Double? {
        let sorted = values(key, metric).sorted()
        if sorted.isEmpty { return nil }
        let middle = sorted.count / 2
        return sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
    }

    /// How many times better than the workload's baseline at the same thread count this key's
    /// median is: baseline / value for lower-is-better metrics, value / baseline for throughputs.
    func ratio(_ key: ResultKey) -> Double? {
        let workload = key.workload
        let baseline = ResultKey(
            workload: workload,
            configuration: Configuration(runtime: workload.baseline, threads: key.configuration.threads))
        guard let base = median(baseline, workload.metric), let value = median(key, workload.metric),
              base > 0, value > 0 else { return nil }
        return workload.higherIsBetter ? value / base : base / value
    }

    /// The RESULT line of this key with the median of each metric.
    func medianLine(_ key: ResultKey) -> String? {
        guard let first = samples[key]?.first else { return nil }
        let fields = first.keys.sorted().compactMap { metric in
            median(key, metric).map { "\(metric)=\(String(format: "%.3f", $0))" }
        }
        let configuration = key.configuration
        return "RESULT \(configuration.runtime.rawValue) \(key.workload.rawValue) \(configuration.threads) "
            + fields.joined(separator: " ")
    }
}

struct Driver: Sendable {
    let workloads: [WorkloadID]
    let runtimes: [RuntimeKind]
    let threadCounts: [Int]
    let reps: Int
    let quick: Bool
    let timeout: Double
    /// `--server-cost`: W8's and W9's children count their server's syscalls (ServerCost.swift).
    var serverCost = false
    /// `--load-seconds`, passed on to the children.
    var loadSeconds: Int?

    /// Runtime x threads, without single-threaded runtimes at more than one thread, and without
    /// runtimes that none of the selected workloads runs on.
    var configurations: [Configuration] {
        runtimes.filter { runtime in workloads.contains { $0.runs(on: runtime) } }.flatMap { runtime in
            threadCounts.compactMap { threads in
                runtime.isSingleThreaded && threads != 1 ? nil : Configuration(runtime: runtime, threads: threads)
            }
        }
    }

    /// The configurations `workload` is measured in.
    func configurations(for workload: WorkloadID) -> [Configuration] {
        configurations.filter { workload.runs(on: $0.runtime) }
    }

    func run() -> Results {
        var results = Results()
        var firstRunSeconds: [ResultKey: Double] = [:]
        let start = ContinuousClock.now
        let skipped = runtimes.filter(\.isSingleThreaded).filter { _ in threadCounts.contains { $0 != 1 } }
        if !skipped.isEmpty {
            note("\(skipped.map(\.rawValue).joined(separator: " and ")) are single-threaded: measured at 1 thread only")
        }
        if !threadCounts.contains(1) && runtimes.contains(where: \.isSingleThreaded) {
            note("no --threads 1: eventloop and floor are not measured")
        }
        for workload in workloads {
            let missing = runtimes.filter { !workload.runs(on: $0) }
            if !missing.isEmpty {
                note("\(workload.rawValue) has no implementation on \(missing.map(\.rawValue).joined(separator: ", ")): skipped")
            }
            for rep in 1...reps {
                for configuration in configurations(for: workload) {
                    let key = ResultKey(workload: workload, configuration: configuration)
                    if results.failures[key] != nil { continue }
                    if rep > Self.longRunReps, let first = firstRunSeconds[key], first >= Self.longRunSeconds { continue }
                    let seconds = measure(key, rep: rep, into: &results)
                    if rep == 1 { firstRunSeconds[key] = seconds }
                }
            }
        }
        results.elapsed = start.duration(to: .now)
        return results
    }

    static let longRunSeconds = 10.0
    static let longRunReps = 3

    /// Runs one child for `key` and records its metrics or its failure. Returns its wall time.
    @discardableResult
    private func measure(_ key: ResultKey, rep: Int, into results: inout Results) -> Double {
        let configuration = key.configuration
        let prefix = "\(key.workload.rawValue) \(configuration.label) rep \(rep)/\(reps)"
        let outcome: ChildOutcome
        do {
            outcome = try ChildProcess.run(childCommand(key), environment: childEnvironment(key), timeout: timeout)
        } catch {
            results.failures[key] = "could not start child: \(error)"
            note("\(prefix): could not start child: \(error)")
            return 0
        }
        let metrics = Self.parse(outcome.output, expecting: key)
        let seconds = String(format: "%.1f s", outcome.seconds)
        if outcome.timedOut {
            results.failures[key] = "killed after \(Int(timeout)) s" + (metrics == nil ? "" : " (after printing its result)")
            note("\(prefix): TIMEOUT, killed after \(Int(timeout)) s" + (metrics == nil ? "" : "; its result is kept"))
        } else if outcome.status != 0 || metrics == nil {
            results.failures[key] = "exit status \(outcome.status)" + (metrics == nil ? ", no RESULT line" : "")
            note("\(prefix): FAILED with exit status \(outcome.status) (\(seconds))")
            return outcome.seconds
        }
        guard var metrics else { return outcome.seconds }
        if key.workload == .w7, configuration.runtime == .spindle || configuration.runtime == .eventloop {
            // `Task.sleep` on the same runtime, in its own child (Timers.swift).
            var environment = childEnvironment(key)
            environment[Timers.sleepVariable] = "task"
            if let task = try? ChildProcess.run(childCommand(key), environment: environment, timeout: timeout),
               task.status == 0, !task.timedOut, let taskMetrics = Self.parse(task.output, expecting: key) {
                for (name, value) in taskMetrics { metrics["task_sleep_" + name] = value }
            } else {
                note("\(prefix): the Task.sleep child failed; its metrics are missing")
            }
        }
        results.samples[key, default: []].append(metrics)
        let shown = metrics.keys.sorted().map { "\($0)=\(String(format: "%.1f", metrics[$0]!))" }
        note("\(prefix): \(shown.joined(separator: " ")) (\(seconds))")
        return outcome.seconds
    }

    /// Re-executes this binary in child mode (a peer's W1-W7: runs the peer's binary);
    /// swift-default's width is set with taskset, because libdispatch has no knob for its
    /// number of threads.
    private func childCommand(_ key: ResultKey) -> [String] {
        let configuration = key.configuration
        if configuration.runtime.isPeer, key.workload != .w8, key.workload != .w9,
           let command = Peers.workloadCommand(configuration.runtime, key.workload, threads: configuration.threads, quick: quick) {
            return command
        }
        var command = [ChildProcess.currentExecutable, "--child",
                       "--workloads", key.workload.rawValue,
                       "--runtimes", configuration.runtime.rawValue,
                       "--threads", String(configuration.threads)]
        if quick { command.append("--quick") }
        if let loadSeconds { command += ["--load-seconds", String(loadSeconds)] }
        let cores = ProcessInfo.processInfo.activeProcessorCount
        if configuration.runtime == .swiftDefault && configuration.threads < cores {
            command = ["/usr/bin/taskset", "-c", "0-\(configuration.threads - 1)"] + command
        }
        return command
    }

    private func childEnvironment(_ key: ResultKey) -> [String: String] {
        var environment = ProcessInfo.processInfo.environment
        if serverCost { environment[ServerCost.variable] = "1" }
        switch key.configuration.runtime {
        case .swiftNIO:
            environment["NIO_SINGLETON_GROUP_LOOP_COUNT"] = String(key.configuration.threads)
        case .hummingbird:
            environment["NIO_SINGLETON_GROUP_LOOP_COUNT"] = String(key.configuration.threads)
            // Its default logger's level; keeps "server started" lines out of the driver's output.
            if environment["LOG_LEVEL"] == nil { environment["LOG_LEVEL"] = "warning" }
        default:
            break
        }
        return environment
    }

    /// The metrics of the one RESULT line for `key` in `output`, or nil if there is none.
    static func parse(_ output: String, expecting key: ResultKey) -> [String: Double]? {
        for line in output.split(separator: "\n") {
            let fields = line.split(separator: " ")
            guard fields.count >= 5, fields[0] == "RESULT",
                  fields[1] == key.configuration.runtime.rawValue,
                  fields[2] == key.workload.rawValue,
                  fields[3] == String(key.configuration.threads) else { continue }
            var metrics: [String: Double] = [:]
            for pair in fields.dropFirst(4) {
                let parts = pair.split(separator: "=", maxSplits: 1)
                guard parts.count == 2, let value = Double(parts[1]) else { return nil }
                metrics[String(parts[0])] = value
            }
            return metrics
        }
        return nil
    }

    private func note(_ message: String) {
        FileHandle.standardError.write(Data((message + "\n").utf8))
    }
}
