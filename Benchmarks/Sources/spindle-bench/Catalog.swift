// What can be measured: the runtimes under test, the workloads (shared/workloads.md), and the
// sizes of each workload in full and quick mode. Everything else refers to these names.

/// A runtime under test. The raw value is the name printed in RESULT lines.
enum RuntimeKind: String, CaseIterable, Sendable {
    case spindle
    case eventloop
    case swiftDefault = "swift-default"
    case swiftNIO = "swift-nio"
    case floor
    /// Hummingbird 2's HTTP server; only W8 runs on it.
    case hummingbird
    /// The same Hummingbird application served by SpindleHTTP on a Spindle runtime
    /// (Integrations/HummingbirdSpindle); only W8 runs on it.
    case hummingbirdSpindle = "hummingbird-spindle"
    /// Tokio 1.x (hyper 0.14 for W8): Benchmarks/Peers/tokio, a process of its own.
    case tokio
    /// Go's runtime and standard library: Benchmarks/Peers/go, a process of its own.
    case go

    /// Runtimes with exactly one thread are measured only at threads = 1.
    var isSingleThreaded: Bool { self == .eventloop || self == .floor }

    /// The HTTP frameworks, which only W8 runs on.
    var isHTTPFramework: Bool { self == .hummingbird || self == .hummingbirdSpindle }

    /// The runtimes outside Swift (Peers.swift): their workloads run in their own binaries.
    var isPeer: Bool { self == .tokio || self == .go }
}

/// A workload of shared/workloads.md. The raw value is the id printed in RESULT lines.
enum WorkloadID: String, CaseIterable, Sendable {
    case w1 = "W1", w2 = "W2", w3 = "W3", w4 = "W4", w5 = "W5", w6 = "W6"
    case w7 = "W7", w8 = "W8", w9 = "W9", w10 = "W10", w11 = "W11"

    var name: String {
        switch self {
        case .w1: "spawn_many"
        case .w2: "yield_many"
        case .w3: "ping_pong"
        case .w4: "chained_spawn"
        case .w5: "skynet"
        case .w6: "unbalanced_cpu"
        case .w7: "timers"
        case .w8: "http_plaintext"
        case .w9: "tcp_echo"
        case .w10: "blocking_offload"
        case .w11: "idle_tasks_memory"
        }
    }

    /// The metric the tables and the chart compare.
    var metric: String {
        switch self {
        case .w1: "ns_per_task"
        case .w2: "ns_per_yield"
        case .w3: "ns_per_roundtrip"
        case .w4: "ns_per_spawn"
        case .w5, .w6, .w7: "total_ms"
        case .w8: "req_per_s"
        case .w9: "msgs_per_s"
        case .w10: "offload_p99_ms"
        case .w11: "rss_bytes_per_task"
        }
    }

    /// A second metric the tables show beside the first (its median), where the workload has
    /// two that matter: W7's p99 lateness, W8's p99 latency.
    var secondaryMetric: String? {
        switch self {
        case .w7: "lateness_p99_ms"
        case .w8: "p99_ms"
        default: nil
        }
    }

    /// Throughputs (W8, W9) are higher-is-better; every other metric is lower-is-better.
    var higherIsBetter: Bool { self == .w8 || self == .w9 }

    /// The runtime every other one is compared with: the server each network workload is
    /// usually measured against, Swift's default executor for the rest.
    var baseline: RuntimeKind {
        switch self {
        case .w8: .hummingbird
        case .w9: .swiftNIO
        default: .swiftDefault
        }
    }

    /// Whether the workload has an implementation on `runtime`. The servers of W8 and W9 exist
    /// for Spindle, for the Swift peer they are compared with, and for Tokio and Go; W7 skips
    /// floor, whose executor has no timers of its own (its sleeps would measure Dispatch's);
    /// Tokio and Go have no W10 or W11.
    func runs(on runtime: RuntimeKind) -> Bool {
        switch self {
        case .w7: runtime != .floor && !runtime.isHTTPFramework
        case .w8: runtime == .spindle || runtime == .eventloop || runtime.isHTTPFramework || runtime.isPeer
        case .w9: runtime == .spindle || runtime == .eventloop || runtime == .swiftNIO || runtime.isPeer
        case .w10, .w11: !runtime.isHTTPFramework && !runtime.isPeer
        default: !runtime.isHTTPFramework
        }
    }
}

/// Workload sizes. Quick mode divides the counts by ten (W3's round trips by twenty, to keep
/// the whole quick run near a minute; W10's jobs by five, so its phases stay long enough for a
/// p99; W8's and W9's load lasts 2 s instead of 10) and keeps each shape: the number of
/// concurrent tasks, the tree's fan-out, the CPU cost distribution, W7's 1-100 ms sleeps,
/// W10's 5 ms jobs, W8's and W9's 64 connections.
struct Sizes: Sendable {
    var spawnManyTasks: Int
    var yieldTasks: Int
    var yieldsPerTask: Int
    var pingPongPairs: Int
    var roundTripsPerPair: Int
    var chainDepth: Int
    var chainRepeats: Int
    var skynetLeaves: Int
    var cpuTasks: Int
    var offloadJobs: Int
    var idleTasks: Int
    var timerTasks: Int
    /// How long W8's wrk and W9's echo client load the server.
    var loadSeconds: Int

    static let full = Sizes(
        spawnManyTasks: 1_000_000,
        yieldTasks: 1_000, yieldsPerTask: 1_000,
        pingPongPairs: 1_000, roundTripsPerPair: 1_000,
        chainDepth: 1_000, chainRepeats: 1_000,
        skynetLeaves: 1_000_000,
        cpuTasks: 2_000,
        offloadJobs: 200,
        idleTasks: 1_000_000,
        timerTasks: 100_000,
        loadSeconds: 10)

    static let quick = Sizes(
        spawnManyTasks: 100_000,
        yieldTasks: 1_000, yieldsPerTask: 100,
        pingPongPairs: 1_000, roundTripsPerPair: 50,
        chainDepth: 1_000, chainRepeats: 100,
        skynetLeaves: 100_000,
        cpuTasks: 200,
        offloadJobs: 40,
        idleTasks: 100_000,
        timerTasks: 10_000,
        loadSeconds: 2)
}
