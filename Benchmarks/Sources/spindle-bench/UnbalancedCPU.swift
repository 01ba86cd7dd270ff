// W6 unbalanced_cpu: one task starts 2,000 CPU-bound children whose costs follow a geometric
// distribution (fixed seed, mean ~0.5 ms), then awaits them all. Measures how well a runtime
// spreads uneven work over its threads: ideal 2-thread speedup over 1 thread is 2.
//
// The cost is a fixed iteration count of a dependent integer hash chain, not a calibrated time,
// so every process and every runtime does exactly the same work; `iterationsPerMillisecond`
// was measured on the benchmark machine with `spindle-bench --calibrate-cpu`.

import Synchronization

enum CPUWork {
    /// Iterations of `hash` per millisecond on the 2-vCPU benchmark machine.
    static let iterationsPerMillisecond = 455_000

    /// A chain of dependent multiply-xorshift steps: cannot be vectorised or skipped.
    @inline(never)
    static func hash(seed: UInt64, iterations: Int) -> UInt64 {
        var x = seed
        for _ in 0..<iterations {
            x ^= x >> 31
            x &*= 0x9E37_79B9_7F4A_7C15
            x ^= x >> 29
        }
        return x
    }

    /// Iterations per millisecond on this machine now (best of 5 runs of ~50 ms).
    static func calibrate() -> Int {
        let iterations = 20_000_000
        var best = Duration.seconds(1000)
        var sink: UInt64 = 0
        for run in 0..<5 {
            let start = ContinuousClock.now
            sink &+= hash(seed: UInt64(run), iterations: iterations)
            best = min(best, start.duration(to: .now))
        }
        if sink == 42 { print("") }  // keeps the result observable
        return Int(Double(iterations) / (best.nanoseconds / 1e6))
    }
}

/// SplitMix64: a tiny seeded generator, so the cost plan is the same in every process.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

enum UnbalancedCPU {
    /// Cost unit and success probability of the geometric distribution: mean 10 units of 50 µs.
    static let unitMicroseconds = 50
    static let probability = 0.1

    /// The iteration count of each task, from a fixed seed.
    static func plan(tasks: Int) -> [Int] {
        var random = SplitMix64(state: 0x5EED_0006)
        let iterationsPerUnit = CPUWork.iterationsPerMillisecond * unitMicroseconds / 1000
        return (0..<tasks).map { _ in
            var units = 1
            while Double.random(in: 0..<1, using: &random) >= probability { units += 1 }
            return units * iterationsPerUnit
        }
    }

    static func run(tasks: Int) async throws -> [Metric] {
        let plan = plan(tasks: tasks)
        let start = ContinuousClock.now
        let results = await withTaskGroup(of: (Int, UInt64).self) { group in
            for (index, iterations) in plan.enumerated() {
                group.addTask { (index, CPUWork.hash(seed: UInt64(index), iterations: iterations)) }
            }
            var results = [UInt64?](repeating: nil, count: tasks)
            for await (index, hash) in group { results[index] = hash }
            return results
        }
        let elapsed = start.duration(to: .now)
        try check(!results.contains(nil), "W6: \(results.filter { $0 == nil }.count) tasks reported no result")
        // Recompute a sample of 32 spread over the plan: cheap, and catches a task that ran
        // with the wrong input or whose result went to the wrong slot.
        for index in stride(from: 0, to: tasks, by: max(1, tasks / 32)) {
            let expected = CPUWork.hash(seed: UInt64(index), iterations: plan[index])
            try check(results[index] == expected, "W6: task \(index) returned a wrong hash")
        }
        return [Metric(name: "total_ms", value: elapsed.nanoseconds / 1e6)]
    }
}
