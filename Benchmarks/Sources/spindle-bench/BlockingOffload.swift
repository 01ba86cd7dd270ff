// W10 blocking_offload: a heartbeat task sleeps 1 ms at a time on the runtime under test and
// records how late each tick wakes, while 200 CPU jobs of ~5 ms each (W6's integer hash chain,
// a fixed iteration count) run, all started at once,
//   (a) offloaded: each awaited through the runtime's way of running blocking work elsewhere
//       (Spindle's `toThread`; `DispatchQueue.global(qos: .utility)` for Swift's default
//       executor, since plain `.global()` shares the default executor's own threads on Linux;
//       `NIOThreadPool.singleton` for SwiftNIO; Spindle's shared pool for the floor executor);
//   (b) inline: as child tasks on the runtime itself.
// Metrics: the heartbeat's p99 lateness during each phase, and each phase's wall time. The
// ideal wall time of (a) on this 2-CPU machine is jobs x 5 ms / 2.
//
// A tick belongs to a phase when its sleep overlaps the phase, so a tick held up across the
// phase's end still counts.

import Dispatch
import NIOPosix
import Spindle
import Synchronization

enum BlockingOffload {
    static let jobMilliseconds = 5

    /// How a runtime sends a job elsewhere.
    enum Offload: Sendable {
        case toThread, dispatchUtility, nioThreadPool, sharedPool

        init(_ runtime: RuntimeKind) {
            switch runtime {
            case .spindle, .eventloop, .hummingbirdSpindle: self = .toThread
            case .swiftDefault: self = .dispatchUtility
            case .swiftNIO, .hummingbird: self = .nioThreadPool
            // Tokio and Go never get here: W10 does not run on the peers (Catalog.swift).
            case .floor, .tokio, .go: self = .sharedPool
            }
        }

        func run(_ job: @escaping @Sendable () -> UInt64) async throws -> UInt64 {
            switch self {
            case .toThread:
                return try await Spindle.toThread(job)
            case .dispatchUtility:
                return await withCheckedContinuation { continuation in
                    DispatchQueue.global(qos: .utility).async { continuation.resume(returning: job()) }
                }
            case .nioThreadPool:
                return try await NIOThreadPool.singleton.runIfActive(job)
            case .sharedPool:
                return try await runInExecutor(BlockingPool.shared, job)
            }
        }
    }

    static func run(jobs: Int, runtime: RuntimeKind, executor: (any TaskExecutor)?) async throws -> [Metric] {
        let iterations = CPUWork.iterationsPerMillisecond * jobMilliseconds
        let heartbeat = Heartbeat()
        let beating = Task(executorPreference: executor) { await heartbeat.run() }
        try await Task.sleep(for: .milliseconds(50))  // the heartbeat settles

        let offload = Offload(runtime)
        let (offloadTime, offloadHashes) = try await phase { () async throws -> [UInt64] in
            try await withThrowingTaskGroup(of: (Int, UInt64).self) { group in
                for index in 0..<jobs {
                    group.addTask {
                        (index, try await offload.run { CPUWork.hash(seed: UInt64(index), iterations: iterations) })
                    }
                }
                return try await collect(&group, jobs)
            }
        }

        let (inlineTime, inlineHashes) = try await phase { () async throws -> [UInt64] in
            try await withThrowingTaskGroup(of: (Int, UInt64).self) { group in
                for index in 0..<jobs {
                    group.addTask { (index, CPUWork.hash(seed: UInt64(index), iterations: iterations)) }
                }
                return try await collect(&group, jobs)
            }
        }
        // A tick held up by a phase records itself only when it finally wakes: stop and wait for
        // the heartbeat before reading its ticks.
        heartbeat.stop()
        await beating.value
        let offloadLateness = heartbeat.lateness(during: offloadTime)
        let inlineLateness = heartbeat.lateness(during: inlineTime)

        try check(offloadHashes == inlineHashes, "W10: offloaded and inline jobs disagree")
        for index in stride(from: 0, to: jobs, by: max(1, jobs / 8)) {
            try check(offloadHashes[index] == CPUWork.hash(seed: UInt64(index), iterations: iterations),
                      "W10: job \(index) returned a wrong hash")
        }
        try check(!offloadLateness.isEmpty && !inlineLateness.isEmpty,
                  "W10: the heartbeat ticked \(offloadLateness.count) / \(inlineLateness.count) times")
        return [
            Metric(name: "offload_p99_ms", value: percentile99(offloadLateness)),
            Metric(name: "offload_total_ms", value: offloadTime.milliseconds),
            Metric(name: "inline_p99_ms", value: percentile99(inlineLateness)),
            Metric(name: "inline_total_ms", value: inlineTime.milliseconds),
            Metric(name: "ideal_total_ms", value: Double(jobs * jobMilliseconds) / 2),
        ]
    }

    private static func collect(
        _ group: inout ThrowingTaskGroup<(Int, UInt64), any Error>, _ jobs: Int
    ) async throws -> [UInt64] {
        var hashes = [UInt64](repeating: 0, count: jobs)
        for try await (index, hash) in group { hashes[index] = hash }
        return hashes
    }

    private static func phase<T>(_ body: () async throws -> T) async throws -> (Span, T) {
        let start = ContinuousClock.now
        let value = try await body()
        return (Span(start: start, end: .now), value)
    }

    /// The 99th percentile in milliseconds (nearest rank).
    static func percentile99(_ values: [Duration]) -> Double {
        let sorted = values.sorted()
        let rank = Int((Double(sorted.count) * 0.99).rounded(.up)) - 1
        return sorted[max(0, min(sorted.count - 1, rank))].milliseconds
    }
}

struct Span: Sendable {
    let start: ContinuousClock.Instant
    let end: ContinuousClock.Instant
    var milliseconds: Double { (end - start).milliseconds }
}

/// A task that sleeps 1 ms at a time and records each sleep's start and end.
final class Heartbeat: Sendable {
    private let ticks = Mutex<[Span]>([])
    private let stopped = Atomic<Bool>(false)

    func run() async {
        while !stopped.load(ordering: .relaxed) {
            let start = ContinuousClock.now
            try? await Task.sleep(for: .milliseconds(1))
            let tick = Span(start: start, end: .now)
            ticks.withLock { $0.append(tick) }
        }
    }

    func stop() { stopped.store(true, ordering: .relaxed) }

    /// How late each tick overlapping `span` woke (its sleep's length beyond 1 ms).
    func lateness(during span: Span) -> [Duration] {
        ticks.withLock { ticks in
            ticks.filter { $0.start < span.end && $0.end > span.start }
                .map { max(.zero, ($0.end - $0.start) - .milliseconds(1)) }
        }
    }
}

extension Duration {
    var milliseconds: Double { nanoseconds / 1e6 }
}
