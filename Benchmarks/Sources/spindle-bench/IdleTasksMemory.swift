// W11 idle_tasks_memory: N tasks, each suspended on a continuation nobody resumes. The growth of
// the resident set (VmRSS) from before the first spawn to after the last suspension, divided by
// N, is what an idle task costs. swift-default's figure is Swift's own task allocation; a
// runtime's excess over it is its own per-task overhead. The child exits without resuming them.

import Glibc
import Synchronization

enum IdleTasksMemory {
    static func run(tasks: Int, executor: (any TaskExecutor)?) async throws -> [Metric] {
        let suspended = Counter()
        let before = try residentBytes()
        for _ in 0..<tasks {
            Task(executorPreference: executor) {
                await withUnsafeContinuation { (_: UnsafeContinuation<Void, Never>) in
                    suspended.increment()
                }
            }
        }
        let deadline = ContinuousClock.now + .seconds(60)
        while suspended.value < tasks {
            try check(ContinuousClock.now < deadline, "W11: only \(suspended.value) of \(tasks) tasks suspended after 60 s")
            // Yield rather than sleep: a single-threaded runtime runs every queued spawn before
            // the poller again, and no runtime's timer path is involved in the measurement.
            await Task.yield()
        }
        let after = try residentBytes()
        try check(suspended.value == tasks, "W11: \(suspended.value) suspensions, expected \(tasks)")
        return [Metric(name: "rss_bytes_per_task", value: Double(after - before) / Double(tasks))]
    }

    /// VmRSS of this process, from /proc/self/status.
    static func residentBytes() throws -> Int {
        guard let file = fopen("/proc/self/status", "r") else {
            throw WorkloadFailure(description: "cannot open /proc/self/status")
        }
        defer { fclose(file) }
        var line = [CChar](repeating: 0, count: 256)
        while fgets(&line, Int32(line.count), file) != nil {
            let text = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            guard text.hasPrefix("VmRSS:") else { continue }
            let kilobytes = text.dropFirst(6).split(whereSeparator: { $0 == " " || $0 == "\t" }).first.flatMap { Int($0) }
            guard let kilobytes else { break }
            return kilobytes * 1024
        }
        throw WorkloadFailure(description: "no VmRSS line in /proc/self/status")
    }
}

final class Counter: Sendable {
    private let count = Atomic<Int>(0)
    func increment() { count.add(1, ordering: .relaxed) }
    var value: Int { count.load(ordering: .relaxed) }
}
