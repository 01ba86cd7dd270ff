// Turning results into a readable table (stdout) and a Markdown file: medians, spread, ratios
// against swift-default at the same thread count, W6's multi-thread speedups, and the median
// RESULT lines.

import Foundation

struct Report {
    let results: Results
    let driver: Driver
    let arguments: [String]

    static let ratioExplanation =
        "ratio = swift-default's median / this median, at the same thread count; above 1 is better than swift-default"

    var command: String {
        (["swift run -c release --package-path Benchmarks spindle-bench"] + arguments).joined(separator: " ")
    }

    var summary: String {
        let seconds = Int(results.elapsed.nanoseconds / 1e9)
        let cap = driver.reps > Driver.longRunReps
            ? " (at most \(Driver.longRunReps) where the first took over \(Int(Driver.longRunSeconds)) s)" : ""
        let runs = driver.reps == 1 ? "1 run" : "\(driver.reps) runs"
        return "\(driver.quick ? "quick" : "full") sizes, \(runs) per measurement\(cap), "
            + "median shown, \(seconds) s in all"
    }

    // MARK: Text

    func text() -> String {
        var lines = ["", "spindle-bench: \(summary)", Self.ratioExplanation]
        for workload in driver.workloads {
            lines.append("")
            lines.append("\(workload.rawValue) \(workload.name): \(workload.metric)")
            lines.append(row(["runtime", "threads", "runs", "median", "min", "max", "ratio"]))
            for configuration in driver.configurations {
                lines.append(row(cells(ResultKey(workload: workload, configuration: configuration))))
            }
        }
        let speedups = speedupLines()
        if !speedups.isEmpty {
            lines.append("")
            lines.append(contentsOf: speedups)
        }
        lines.append("")
        lines.append("Median RESULT lines:")
        lines.append(contentsOf: medianLines())
        return lines.joined(separator: "\n")
    }

    private func row(_ cells: [String]) -> String {
        let widths = [16, 8, 5, 12, 12, 12, 9]
        return "  " + zip(cells, widths).enumerated().map { index, pair in
            let (cell, width) = pair
            let padding = String(repeating: " ", count: max(0, width - cell.count))
            return index == 0 ? cell + padding : padding + cell
        }.joined(separator: " ") + (cells.count > widths.count ? "  " + cells[widths.count...].joined(separator: " ") : "")
    }

    /// runtime, threads, runs, median, min, max, ratio, then the failure if there was one.
    private func cells(_ key: ResultKey) -> [String] {
        let configuration = key.configuration
        let values = results.values(key, key.workload.metric)
        let head = [configuration.runtime.rawValue, String(configuration.threads), String(values.count)]
        var tail = values.isEmpty
            ? ["-", "-", "-", "-"]
            : [number(results.median(key, key.workload.metric)!), number(values.min()!), number(values.max()!),
               results.ratio(key).map { String(format: "%.2fx", $0) } ?? "-"]
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

    func medianLines() -> [String] {
        driver.workloads.flatMap { workload in
            driver.configurations.compactMap { results.medianLine(ResultKey(workload: workload, configuration: $0)) }
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
            "## Ratios vs swift-default",
            "",
        ]
        let configurations = driver.configurations
        lines.append("| workload | metric | " + configurations.map(\.label).joined(separator: " | ") + " |")
        lines.append("|---|---|" + configurations.map { _ in "---:|" }.joined())
        for workload in driver.workloads {
            let ratios = configurations.map { configuration -> String in
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
            lines.append("### \(workload.rawValue) \(workload.name): \(workload.metric)")
            lines.append("")
            lines.append("| runtime | threads | runs | median | min | max | ratio |")
            lines.append("|---|---:|---:|---:|---:|---:|---:|")
            for configuration in configurations {
                var cells = cells(ResultKey(workload: workload, configuration: configuration))
                if cells.count > 7 { cells[6] += " " + cells[7...].joined(separator: " "); cells.removeLast(cells.count - 7) }
                lines.append("| " + cells.joined(separator: " | ") + " |")
            }
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
