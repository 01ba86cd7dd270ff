// Turning results into a readable table (stdout) and a Markdown file: medians, spread, ratios
// against each workload's baseline at the same thread count (swift-default; hummingbird for W8,
// swift-nio for W9), W6's multi-thread speedups, and the median RESULT lines.

import Foundation

struct Report {
    let results: Results
    let driver: Driver
    let arguments: [String]

    static let ratioExplanation =
        "ratio = how many times better this median is than the workload's baseline at the same thread count "
        + "(baseline / median; median / baseline for throughputs); above 1 is better than the baseline"

    /// "W7 timers: total_ms (lower is better; ratio vs swift-default)".
    static func heading(_ workload: WorkloadID) -> String {
        "\(workload.rawValue) \(workload.name): \(workload.metric) "
            + "(\(workload.higherIsBetter ? "higher" : "lower") is better; ratio vs \(workload.baseline.rawValue))"
    }

    var command: String {
        (["swift run -c release --package-path Benchmarks spindle-bench"] + arguments).joined(separator: " ")
    }

    var summary: String {
        let seconds = Int(results.elapsed.nanoseconds / 1e9)
        let cap = driver.reps > Driver.longRunReps
            ? " (at most \(Driver.longRunReps) where the first took over \(Int(Driver.longRunSeconds)) s)" : ""
        let runs = driver.reps == 1 ? "1 run" : "\(driver.reps) runs"
        let load = driver.loadSeconds.map { ", \($0) s of W8/W9 load" } ?? ""
        return "\(driver.quick ? "quick" : "full") sizes\(load), \(runs) per measurement\(cap), "
            + "median shown, \(seconds) s in all"
    }

    // MARK: Text

    func text() -> String {
        var lines = ["", "spindle-bench: \(summary)", Self.ratioExplanation]
        for workload in driver.workloads {
            lines.append("")
            lines.append(Self.heading(workload))
            let titles = columns(workload)
            lines.append(row(titles, columns: titles.count))
            for configuration in driver.configurations(for: workload) {
                lines.append(row(cells(ResultKey(workload: workload, configuration: configuration)), columns: titles.count))
            }
        }
        let speedups = speedupLines()
        if !speedups.isEmpty {
            lines.append("")
            lines.append(contentsOf: speedups)
        }
        let cost = costLines()
        if !cost.isEmpty {
            lines.append("")
            lines.append(contentsOf: cost)
        }
        lines.append("")
        lines.append("Median RESULT lines:")
        lines.append(contentsOf: medianLines())
        return lines.joined(separator: "\n")
    }

    /// The column titles: runtime, threads, runs, median, min, max, ratio, then the median of
    /// the workload's second metric if it has one.
    private func columns(_ workload: WorkloadID) -> [String] {
        ["runtime", "threads", "runs", "median", "min", "max", "ratio"] + (workload.secondaryMetric.map { [$0] } ?? [])
    }

    /// The first `columns` cells padded to their widths, then any others (a failure).
    private func row(_ cells: [String], columns: Int) -> String {
        let widths = Array([19, 8, 5, 12, 12, 12, 9, 16].prefix(columns))  // 19: "hummingbird-spindle"
        return "  " + zip(cells, widths).enumerated().map { index, pair in
            let (cell, width) = pair
            let padding = String(repeating: " ", count: max(0, width - cell.count))
            return index == 0 ? cell + padding : padding + cell
        }.joined(separator: " ") + (cells.count > widths.count ? "  " + cells[widths.count...].joined(separator: " ") : "")
    }

    /// The cells of `columns`, then the failure if there was one.
    private func cells(_ key: ResultKey) -> [String] {
        let configuration = key.configuration
        let values = results.values(key, key.workload.metric)
        let head = [configuration.runtime.rawValue, String(configuration.threads), String(values.count)]
        var tail = values.isEmpty
            ? ["-", "-", "-", "-"]
            : [number(results.median(key, key.workload.metric)!), number(values.min()!), number(values.max()!),
               results.ratio(key).map { String(format: "%.2fx", $0) } ?? "-"]
        if let secondary = key.workload.secondaryMetric {
            tail.append(results.median(key, secondary).map(number) ?? "-")
        }
        if let failure = results.failures[key] { tail.append("FAILED: \(failure)") }
        return head + tail
    }

    private func number(_ value: Double) -> String {
        String(format: value >= 100 ? "%.0f" : "%.1f", value)
    }

    /// W6: total_ms at 1 thread / total_ms at the most threads measured, per runtime.
    func speedupLines() -> [String] {
        guard driver.workloads.contains(.w6), let most = driver.threadCounts.max(), most > 1,
              driver.threadCounts.contains(1) else { return [] }
        var parts: [String] = []
        for runtime in driver.runtimes where !runtime.isSingleThreaded {
            let one = results.median(ResultKey(workload: .w6, configuration: Configuration(runtime: runtime, threads: 1)), "total_ms")
            let many = results.median(ResultKey(workload: .w6, configuration: Configuration(runtime: runtime, threads: most)), "total_ms")
            if let one, let many, many > 0 {
                parts.append("\(runtime.rawValue) \(String(format: "%.2f", one / many))x")
            }
        }
        if parts.isEmpty { return [] }
        return ["W6 speedup of \(most) threads over 1 (total_ms x1 / x\(most)): " + parts.joined(separator: ", ")]
    }

    /// "swift-default (W1-W7, W10, W11), hummingbird (W8), swift-nio (W9)" for `workloads`.
    static func baselines(_ workloads: [WorkloadID]) -> String {
        var order: [RuntimeKind] = []
        var ids: [RuntimeKind: [String]] = [:]
        for workload in workloads {
            if ids[workload.baseline] == nil { order.append(workload.baseline) }
            ids[workload.baseline, default: []].append(workload.rawValue)
        }
        return order.map { "\($0.rawValue) (\(ids[$0]!.joined(separator: ", ")))" }.joined(separator: ", ")
    }

    /// W8's and W9's servers, per message (request or round trip; medians over the runs):
    /// CPU time, the cores that makes at the measured rate, context switches, and with
    /// `--server-cost` syscalls (the total and the most frequent), as a Markdown table.
    func costLines() -> [String] {
        var lines: [String] = []
        for workload in driver.workloads where workload == .w8 || workload == .w9 {
            let keys = driver.configurations(for: workload).map { ResultKey(workload: workload, configuration: $0) }
                .filter { results.median($0, "server_cpu_us_per_msg") != nil }
            if keys.isEmpty { continue }
            let client = workload == .w9 ? " client CPU µs/msg |" : ""
            if !lines.isEmpty { lines.append("") }
            lines.append("\(workload.rawValue) \(workload.name), per \(workload == .w8 ? "request" : "round trip"):")
            lines.append("")
            lines.append("| server | threads | \(workload.metric) | server CPU µs/msg | server cores | context switches/msg "
                + "| syscalls/msg | most frequent syscalls per msg |\(client)")
            lines.append("|---|---:|---:|---:|---:|---:|---:|---|" + (client.isEmpty ? "" : "---:|"))
            for key in keys {
                func median(_ metric: String, _ format: String) -> String {
                    results.median(key, metric).map { String(format: format, $0) } ?? "-"
                }
                let rate = results.median(key, workload.metric) ?? 0
                let cores = (results.median(key, "server_cpu_us_per_msg") ?? 0) * rate / 1e6
                let names = Set((results.samples[key] ?? []).flatMap(\.keys)).filter { $0.hasPrefix("sys_") }
                let top = names.compactMap { name in results.median(key, name).map { (name, $0) } }
                    .sorted { $0.1 > $1.1 }.prefix(4)
                    .map { "\($0.0.dropFirst(4).dropLast(8)) \(String(format: "%.2f", $0.1))" }
                var row = "| \(key.configuration.runtime.rawValue) | \(key.configuration.threads) | \(number(rate)) "
                    + "| \(median("server_cpu_us_per_msg", "%.2f")) | \(String(format: "%.2f", cores)) "
                    + "| \(median("server_csw_per_msg", "%.3f")) | \(median("server_syscalls_per_msg", "%.2f")) "
                    + "| \(top.isEmpty ? "-" : top.joined(separator: ", ")) |"
                if !client.isEmpty { row += " \(median("client_cpu_us_per_msg", "%.2f")) |" }
                lines.append(row)
            }
        }
        return lines
    }

    func medianLines() -> [String] {
        driver.workloads.flatMap { workload in
            driver.configurations(for: workload).compactMap { results.medianLine(ResultKey(workload: workload, configuration: $0)) }
        }
    }

    // MARK: Markdown

    func markdown() -> String {
        var lines = [
            "# Spindle benchmark results (raw)",
            "",
            "Written by `spindle-bench`; see `Benchmarks/README.md` for what each workload does.",
            "",
            "- Command: `\(command)`",
            "- When: \(ISO8601DateFormatter().string(from: Date()))",
            "- Machine: \(Self.machine())",
            "- Run: \(summary); every measurement in a fresh child process",
            "- \(Self.ratioExplanation)",
            "",
            "## Ratios vs each workload's baseline",
            "",
            "Baselines: " + Self.baselines(driver.workloads) + ". An empty cell: the workload has no "
                + "implementation on that runtime.",
            "",
        ]
        let configurations = driver.configurations
        lines.append("| workload | metric | " + configurations.map(\.label).joined(separator: " | ") + " |")
        lines.append("|---|---|" + configurations.map { _ in "---:|" }.joined())
        for workload in driver.workloads {
            let ratios = configurations.map { configuration -> String in
                if !workload.runs(on: configuration.runtime) { return "" }
                let key = ResultKey(workload: workload, configuration: configuration)
                if results.failures[key] != nil { return "failed" }
                return results.ratio(key).map { String(format: "%.2f", $0) } ?? "-"
            }
            lines.append("| \(workload.rawValue) \(workload.name) | \(workload.metric) | " + ratios.joined(separator: " | ") + " |")
        }
        let speedups = speedupLines()
        if !speedups.isEmpty {
            lines.append("")
            lines.append(contentsOf: speedups)
        }
        lines.append("")
        lines.append("## Medians")
        for workload in driver.workloads {
            lines.append("")
            lines.append("### " + Self.heading(workload))
            lines.append("")
            let titles = columns(workload)
            lines.append("| " + titles.joined(separator: " | ") + " |")
            lines.append("|---|" + titles.dropFirst().map { _ in "---:|" }.joined())
            for configuration in driver.configurations(for: workload) {
                var cells = cells(ResultKey(workload: workload, configuration: configuration))
                let count = titles.count
                if cells.count > count {
                    cells[count - 1] += " " + cells[count...].joined(separator: " ")
                    cells.removeLast(cells.count - count)
                }
                lines.append("| " + cells.joined(separator: " | ") + " |")
            }
        }
        let cost = costLines()
        if !cost.isEmpty {
            lines.append("")
            lines.append("## Cost per message")
            lines.append("")
            lines.append(contentsOf: cost)
        }
        lines.append("")
        lines.append("## Median RESULT lines")
        lines.append("")
        lines.append("```")
        lines.append(contentsOf: medianLines())
        lines.append("```")
        return lines.joined(separator: "\n") + "\n"
    }

    /// CPU model, online CPUs and kernel release.
    static func machine() -> String {
        let cpuinfo = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        let model = cpuinfo.split(separator: "\n").first { $0.hasPrefix("model name") }
            .map { $0.split(separator: ":", maxSplits: 1).last.map { $0.trimmingCharacters(in: .whitespaces) } ?? "" } ?? "unknown CPU"
        var name = utsname()
        uname(&name)
        let release = withUnsafeBytes(of: &name.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        return "\(model), \(ProcessInfo.processInfo.activeProcessorCount) CPUs, Linux \(release)"
    }
}

extension String {
    func write(toPath path: String) throws {
        try write(toFile: path, atomically: true, encoding: .utf8)
    }
}
