// An SVG bar chart of every ratio against the workload's baseline (swift-default; hummingbird for
// W8, swift-nio for W9): one group of bars per workload, one bar per configuration, on a log2
// axis centred on 1x so that "2x better" and "2x worse" are bars of the same length up and down.

import Foundation

struct Chart {
    let results: Results
    let driver: Driver

    private static let palette: [RuntimeKind: [String]] = [
        .spindle: ["#8fb8e8", "#1f5fa8", "#0b2f5c"],
        .eventloop: ["#6cbf84"],
        .swiftDefault: ["#bbbbbb", "#777777"],
        .swiftNIO: ["#f2b36b", "#c46a12", "#7a3e05"],
        .floor: ["#c49bd6"],
        .hummingbird: ["#e89bb5", "#b03a6a"],
        .hummingbirdSpindle: ["#9bd6d0", "#2a8a80"],
        .tokio: ["#e8a08f", "#a83a1f"],
        .go: ["#8fd6e8", "#1f8aa8"],
    ]

    /// Configurations drawn as bars: those measured in some workload whose baseline (the 1x
    /// line itself) they are not.
    private var configurations: [Configuration] {
        driver.configurations.filter { configuration in
            driver.workloads.contains { drawn($0, configuration) }
        }
    }

    private func drawn(_ workload: WorkloadID, _ configuration: Configuration) -> Bool {
        workload.runs(on: configuration.runtime) && workload.baseline != configuration.runtime
    }

    private func color(_ configuration: Configuration) -> String {
        let shades = Self.palette[configuration.runtime] ?? ["#444444"]
        let rank = driver.threadCounts.sorted().firstIndex(of: configuration.threads) ?? 0
        return shades[min(rank, shades.count - 1)]
    }

    func svg() -> String {
        let workloads = driver.workloads
        let bars = configurations
        let ratios = workloads.flatMap { workload in
            bars.compactMap { results.ratio(ResultKey(workload: workload, configuration: $0)) }
        }
        // Axis: whole powers of two covering every ratio and at least 0.25x...4x.
        let low = min(-2, (ratios.map { log2($0) }.min() ?? 0).rounded(.down))
        let high = max(2, (ratios.map { log2($0) }.max() ?? 0).rounded(.up))

        let left = 60.0, top = 70.0, plotHeight = 300.0, barWidth = 14.0, gap = 26.0
        // At least wide enough for the workload's name under the group.
        let groupWidth = max(Double(max(bars.count, 1)) * barWidth + gap, 90)
        // Wide enough for the title lines and the legend when few workloads are drawn.
        let width = max(left + Double(workloads.count) * groupWidth + 20, 900)
        let height = top + plotHeight + 60
        func y(_ exponent: Double) -> Double { top + (high - exponent) / (high - low) * plotHeight }

        var svg = [
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" "
                + "font-family=\"sans-serif\" font-size=\"11\">",
            "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>",
            text(left, 18, "Spindle vs each workload's baseline at the same thread count (\(driver.quick ? "quick" : "full") sizes, "
                + "median of \(driver.reps))", size: 14, weight: "bold"),
            text(left, 34, "bar = times better than the baseline, \(Report.baselines(workloads)) (log scale): "
                + "above 1x is better; ✕ = failed", size: 11),
        ]
        // Legend.
        var legendX = left
        for bar in bars {
            svg.append("<rect x=\"\(legendX)\" y=\"44\" width=\"10\" height=\"10\" fill=\"\(color(bar))\"/>")
            svg.append(text(legendX + 14, 53, bar.label))
            legendX += 14 + Double(bar.label.count) * 6.5 + 12
        }
        // Grid.
        for exponent in stride(from: low, through: high, by: 1) {
            let value = pow(2, exponent)
            let label = value >= 1 ? "\(Int(value))x" : String(format: "%gx", value)
            let stroke = exponent == 0 ? "#000000" : "#dddddd"
            svg.append("<line x1=\"\(left)\" x2=\"\(width - 20)\" y1=\"\(y(exponent))\" y2=\"\(y(exponent))\" stroke=\"\(stroke)\"/>")
            svg.append(text(left - 6, y(exponent) + 4, label, anchor: "end"))
        }
        // Bars.
        for (groupIndex, workload) in workloads.enumerated() {
            let groupX = left + gap / 2 + Double(groupIndex) * groupWidth
            for (barIndex, bar) in bars.enumerated() {
                let key = ResultKey(workload: workload, configuration: bar)
                let x = groupX + Double(barIndex) * barWidth
                if !drawn(workload, bar) { continue }
                if results.failures[key] != nil {
                    svg.append(text(x + barWidth / 2, y(0) - 3, "✕", anchor: "middle", size: 12, fill: "#c00000"))
                    continue
                }
                guard let ratio = results.ratio(key) else { continue }
                let exponent = log2(ratio)
                let barTop = min(y(exponent), y(0)), barHeight = max(abs(y(exponent) - y(0)), 1)
                svg.append("<rect x=\"\(x)\" y=\"\(barTop)\" width=\"\(barWidth - 2)\" height=\"\(barHeight)\" "
                    + "fill=\"\(color(bar))\"><title>\(workload.rawValue) \(bar.label): \(String(format: "%.2f", ratio))x</title></rect>")
                let labelY = exponent >= 0 ? barTop - 3 : barTop + barHeight + 10
                svg.append(text(x + barWidth / 2 - 1, labelY, String(format: "%.1f", ratio), anchor: "middle", size: 8))
            }
            svg.append(text(groupX + Double(bars.count) * barWidth / 2, top + plotHeight + 20,
                            workload.rawValue, anchor: "middle", size: 12, weight: "bold"))
            svg.append(text(groupX + Double(bars.count) * barWidth / 2, top + plotHeight + 34,
                            workload.name, anchor: "middle", size: 10))
        }
        svg.append("</svg>")
        return svg.joined(separator: "\n") + "\n"
    }

    private func text(
        _ x: Double, _ y: Double, _ content: String, anchor: String = "start", size: Int = 11,
        weight: String = "normal", fill: String = "#222222"
    ) -> String {
        let escaped = content.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
        return "<text x=\"\(x)\" y=\"\(y)\" text-anchor=\"\(anchor)\" font-size=\"\(size)\" "
            + "font-weight=\"\(weight)\" fill=\"\(fill)\">\(escaped)</text>"
    }
}
