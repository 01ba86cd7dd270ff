// The scheduling workloads W1-W5 of shared/workloads.md, written once for every runtime: they
// run inside a root task that prefers the runtime's executor, and structured children inherit
// that preference. Unstructured tasks (W4, W11) pass `context.executor` explicitly; nil means
// Swift's global executor.
//
// Each workload times itself with ContinuousClock and checks its own result: a wrong sum
// throws, and the child exits non-zero.

import AsyncAlgorithms
import Glibc
import Spindle

struct WorkloadContext: Sendable {
    let runtime: RuntimeKind
    let threads: Int
    let executor: (any TaskExecutor)?
    let sizes: Sizes
}

struct Metric: Sendable {
    let name: String
    let value: Double
}

struct WorkloadFailure: Error, CustomStringConvertible {
    let description: String
}

func check(_ condition: Bool, _ message: @autoclosure () -> String) throws {
    if !condition { throw WorkloadFailure(description: message()) }
}

/// Writes one line on stderr, which the driver shows as it comes.
func printError(_ message: String) {
    let line = Array((message + "\n").utf8)
    _ = line.withUnsafeBytes { write(STDERR_FILENO, $0.baseAddress, $0.count) }
}

extension Duration {
    var nanoseconds: Double {
        Double(components.seconds) * 1e9 + Double(components.attoseconds) / 1e9
    }
}

extension WorkloadID {
    func run(_ context: WorkloadContext) async throws -> [Metric] {
        let sizes = context.sizes
        switch self {
        case .w1: return try await SchedulingWorkloads.spawnMany(tasks: sizes.spawnManyTasks)
        case .w2: return try await SchedulingWorkloads.yieldMany(tasks: sizes.yieldTasks, yields: sizes.yieldsPerTask)
        case .w3:
            // The bar compares each runtime with its natural channel: Spindle's own SpindleChannel on
            // Spindle runtimes, AsyncChannel elsewhere. Both channels are also measured on every
            // runtime, so like-for-like figures are in the RESULT lines too.
            let native = try await SchedulingWorkloads.pingPong(
                pairs: sizes.pingPongPairs, trips: sizes.roundTripsPerPair, channel: .spindle)
            let async = try await SchedulingWorkloads.pingPong(
                pairs: sizes.pingPongPairs, trips: sizes.roundTripsPerPair, channel: .asyncChannel)
            let isSpindle = context.executor is Runtime || context.executor is SpindleEventLoop
            return [
                Metric(name: "ns_per_roundtrip", value: isSpindle ? native : async),
                Metric(name: "spindle_channel_ns", value: native),
                Metric(name: "async_channel_ns", value: async),
            ]
        case .w4: return try await SchedulingWorkloads.chainedSpawn(
            depth: sizes.chainDepth, repeats: sizes.chainRepeats, executor: context.executor)
        case .w5: return try await SchedulingWorkloads.skynet(leaves: sizes.skynetLeaves)
        case .w6: return try await UnbalancedCPU.run(tasks: sizes.cpuTasks)
        case .w7:
            let isSpindle = context.executor is Runtime || context.executor is SpindleEventLoop
            guard isSpindle else {
                return try await Timers.run(tasks: sizes.timerTasks, executor: context.executor, sleep: .task)
            }
            // The driver measures `Task.sleep` on Spindle in a child of its own (a second run in
            // one process would find the first one's heap already grown): Driver.w7TaskSleep.
            let sleep: Timers.Sleep = getenv(Timers.sleepVariable).map { String(cString: $0) } == "task" ? .task : .spindle
            return try await Timers.run(tasks: sizes.timerTasks, executor: context.executor, sleep: sleep)
        case .w8: return try await HTTPPlaintext.run(context)
        case .w9: return try await TCPEcho.run(context)
        case .w10: return try await BlockingOffload.run(
            jobs: sizes.offloadJobs, runtime: context.runtime, executor: context.executor)
        case .w11: return try await IdleTasksMemory.run(tasks: sizes.idleTasks, executor: context.executor)
        }
    }
}

enum SchedulingWorkloads {
    /// W1: one task group with all the children at once, so that a runtime which lets children
    /// finish far out of creation order hits the task-group hazard of shared/design.md.
    static func spawnMany(tasks: Int) async throws -> [Metric] {
        let start = ContinuousClock.now
        let sum = await withTaskGroup(of: Int.self) { group in
            for index in 0..<tasks { group.addTask { index } }
            var sum = 0
            for await value in group { sum &+= value }
            return sum
        }
        let elapsed = start.duration(to: .now)
        try check(sum == tasks * (tasks - 1) / 2, "W1 sum \(sum), expected \(tasks * (tasks - 1) / 2)")
        return [Metric(name: "ns_per_task", value: elapsed.nanoseconds / Double(tasks))]
    }

    /// W2: every task yields `yields` times, all tasks runnable at once.
    static func yieldMany(tasks: Int, yields: Int) async throws -> [Metric] {
        let start = ContinuousClock.now
        let total = await withTaskGroup(of: Int.self) { group in
            for _ in 0..<tasks {
                group.addTask {
                    var done = 0
                    for _ in 0..<yields {
                        await Task.yield()
                        done += 1
                    }
                    return done
                }
            }
            return await group.reduce(0, +)
        }
        let elapsed = start.duration(to: .now)
        try check(total == tasks * yields, "W2 counted \(total) yields, expected \(tasks * yields)")
        return [Metric(name: "ns_per_yield", value: elapsed.nanoseconds / Double(total))]
    }

    enum PingPongChannel { case spindle, asyncChannel }

    /// W3: each pair owns two channels (one per direction); the pinger sends i and waits for
    /// the ponger's i + 1. `.asyncChannel` uses swift-async-algorithms' unbuffered AsyncChannel,
    /// `.spindle` Spindle's `SpindleChannel` with capacity 1. Returns ns per round trip.
    static func pingPong(pairs: Int, trips: Int, channel: PingPongChannel) async throws -> Double {
        let start = ContinuousClock.now
        let total = try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<pairs {
                switch channel {
                case .asyncChannel:
                    let ping = AsyncChannel<Int>()
                    let pong = AsyncChannel<Int>()
                    group.addTask {
                        for await value in ping { await pong.send(value &+ 1) }
                        return 0
                    }
                    group.addTask {
                        defer { ping.finish() }  // also on a wrong reply, so the ponger ends
                        var replies = pong.makeAsyncIterator()
                        var sum = 0
                        for trip in 0..<trips {
                            await ping.send(trip)
                            guard let reply = await replies.next(), reply == trip + 1 else { return -1 }
                            sum += reply
                        }
                        return sum
                    }
                case .spindle:
                    let ping = SpindleChannel<Int>(capacity: 1)
                    let pong = SpindleChannel<Int>(capacity: 1)
                    group.addTask {
                        for try await value in ping { try await pong.send(value &+ 1) }
                        return 0
                    }
                    group.addTask {
                        defer { ping.close() }
                        var sum = 0
                        for trip in 0..<trips {
                            try await ping.send(trip)
                            guard let reply = try await pong.receive(), reply == trip + 1 else { return -1 }
                            sum += reply
                        }
                        return sum
                    }
                }
            }
            return try await group.reduce(0, +)
        }
        let elapsed = start.duration(to: .now)
        let expected = pairs * trips * (trips + 1) / 2
        try check(total == expected, "W3 replies summed to \(total), expected \(expected)")
        return elapsed.nanoseconds / Double(pairs * trips)
    }

    /// W4: each task starts the next (unstructured, same executor) and returns; the last one
    /// resumes the waiting root. `repeats` chains, one after another.
    static func chainedSpawn(depth: Int, repeats: Int, executor: (any TaskExecutor)?) async throws -> [Metric] {
        let start = ContinuousClock.now
        var spawned = 0
        for _ in 0..<repeats {
            let length = await withUnsafeContinuation { (done: UnsafeContinuation<Int, Never>) in
                spawnLink(number: 1, depth: depth, executor: executor, done: done)
            }
            try check(length == depth, "W4 chain ended after \(length) tasks, expected \(depth)")
            spawned += length
        }
        let elapsed = start.duration(to: .now)
        return [Metric(name: "ns_per_spawn", value: elapsed.nanoseconds / Double(spawned))]
    }

    private static func spawnLink(
        number: Int, depth: Int, executor: (any TaskExecutor)?, done: UnsafeContinuation<Int, Never>
    ) {
        Task(executorPreference: executor) {
            if number == depth {
                done.resume(returning: number)
            } else {
                spawnLink(number: number + 1, depth: depth, executor: executor, done: done)
            }
        }
    }

    /// W5: a 10-ary tree of task groups; leaf `i` returns `i`.
    static func skynet(leaves: Int) async throws -> [Metric] {
        let start = ContinuousClock.now
        let sum = await skynetNode(first: 0, size: leaves)
        let elapsed = start.duration(to: .now)
        try check(sum == leaves * (leaves - 1) / 2, "W5 sum \(sum), expected \(leaves * (leaves - 1) / 2)")
        return [Metric(name: "total_ms", value: elapsed.nanoseconds / 1e6)]
    }

    private static func skynetNode(first: Int, size: Int) async -> Int {
        if size == 1 { return first }
        let childSize = size / 10
        return await withTaskGroup(of: Int.self) { group in
            for child in 0..<10 {
                let childFirst = first + child * childSize
                group.addTask { await skynetNode(first: childFirst, size: childSize) }
            }
            return await group.reduce(0, +)
        }
    }
}
