// What a run was asked to do, after the command line has been checked.

/// The workloads the tool can mix.
enum MixKind: String, CaseIterable, Sendable {
    /// Random trees of tasks: task-group children, `async let` pairs, spawned tasks.
    case spawn
    /// Many tasks that each yield a random number of times (the most executor jobs per second).
    case yield
    /// Ping-pong pairs and many-to-many fan-in through `SpindleChannel`.
    case channel
    /// `Spindle.sleep`, `Task.sleep` and `withTimeout`, some cancelled while they wait.
    case timer
    /// Echo over TCP on 127.0.0.1.
    case tcp
    /// Echo over a Unix-domain socket.
    case unix
    /// Bursts of `toThread` and `runInExecutor` jobs, on tiny pools with short keep-alives.
    case blocking

    /// How many rounds of this workload run at once in a cycle.
    var lanes: Int {
        switch self {
        case .yield: 4
        case .spawn: 2
        default: 1
        }
    }

    /// What one unit of this workload is, for the progress line.
    var unitName: String {
        switch self {
        case .spawn: "tasks"
        case .yield: "tasks"
        case .channel: "messages"
        case .timer: "timers"
        case .tcp, .unix: "connections"
        case .blocking: "pool jobs"
        }
    }

    /// What the workload's extra counter counts, for the progress line.
    var extraName: String? {
        switch self {
        case .yield: "yields"
        case .channel: "cross-worker"
        case .timer: "max late µs"
        case .tcp, .unix: "bytes echoed"
        case .spawn, .blocking: nil
        }
    }
}

/// A deliberate break of one invariant, to prove that the checks can fail.
enum Fault: String, CaseIterable, Sendable {
    /// The first unit of the first round counts itself twice (an "exactly once" violation).
    case doubleCount = "double-count"
    /// The first round of the first workload waits for something that never comes (a hang).
    case hang
}

struct Configuration: Sendable {
    var workers: Int?
    var eventLoop: Bool
    var seed: UInt64
    /// Seconds; nil runs until `jobs`.
    var duration: Double?
    var jobs: UInt64?
    var mixes: [MixKind]
    /// Seconds a round or a shutdown may stay outstanding before the run fails as a hang.
    var watchdog: Double
    var fault: Fault?

    /// The command that replays this run's choices.
    var replayCommand: String {
        var words = ["spindle-stress", "--seed", String(seed)]
        if let workers { words += ["--workers", String(workers)] }
        if eventLoop { words.append("--event-loop") }
        if let duration { words += ["--duration", String(duration)] }
        if let jobs { words += ["--jobs", String(jobs)] }
        words += ["--mix", mixes.map(\.rawValue).joined(separator: ",")]
        if watchdog != 60 { words += ["--watchdog", String(watchdog)] }
        if let fault { words += ["--inject-fault", fault.rawValue] }
        return words.joined(separator: " ")
    }
}
