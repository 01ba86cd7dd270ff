// The executor a cycle runs on: a multi-threaded `Runtime` or, with `--event-loop`, a
// single-threaded `SpindleEventLoop`. Both have the same surface; this puts it behind one type.

import Spindle

enum Host: Sendable {
    case runtime(Runtime)
    case loop(SpindleEventLoop)

    /// Starts a runtime with `workers` workers or a loop, with threads named from `name`.
    static func start(eventLoop: Bool, workers: Int?, name: String) throws(SpindleError) -> Host {
        eventLoop ? .loop(try SpindleEventLoop(name: name)) : .runtime(try Runtime(workers: workers, name: name))
    }

    var executor: any TaskExecutor {
        switch self {
        case .runtime(let runtime): runtime
        case .loop(let loop): loop
        }
    }

    /// Executor jobs this runtime or loop has run so far (its `metrics().jobsRun`).
    var jobsRun: UInt64 {
        switch self {
        case .runtime(let runtime): runtime.metrics().jobsRun
        case .loop(let loop): loop.metrics().jobsRun
        }
    }

    /// The prefixes of the names of every thread this host may start: its workers or loop,
    /// the blocked-worker watch and its blocking pool.
    static func threadPrefixes(eventLoop: Bool, name: String) -> [String] {
        // An event loop's pool is always named `spindle-blk`; a runtime's is `<name>-blk`.
        eventLoop ? [name, "spindle-blk"] : [name]
    }

    /// Starts a task that shutdown cancels if it is still running.
    func spawn<T: Sendable>(_ operation: @escaping @Sendable () async -> T) throws(SpindleError) -> Task<T, Never> {
        switch self {
        case .runtime(let runtime): try runtime.spawn(operation)
        case .loop(let loop): try loop.spawn(operation)
        }
    }

    func shutdown(gracePeriod: Duration) async -> ShutdownReport {
        switch self {
        case .runtime(let runtime): await runtime.shutdown(gracePeriod: gracePeriod)
        case .loop(let loop): await loop.shutdown(gracePeriod: gracePeriod)
        }
    }

    /// The counters, for a diagnostic.
    var diagnostics: String {
        switch self {
        case .runtime(let runtime):
            let metrics = runtime.metrics()
            let pool = runtime.blockingPool.metrics()
            let workers = metrics.workers.enumerated().map { index, worker in
                "  worker \(index): jobs \(worker.jobsRun), steals \(worker.steals), parks \(worker.parks), "
                    + "timers pending \(worker.timersPending), sqes \(worker.sqesSubmitted), cqes \(worker.cqesReaped)"
            }
            return (["runtime: live spawned tasks \(metrics.liveSpawnedTasks), injector depth \(metrics.injectorDepth), "
                + "blocked-worker reports \(metrics.blockedWorkerReports), shut down \(runtime.isShutDown)"]
                + workers + ["  pool: \(pool)"]).joined(separator: "\n")
        case .loop(let loop):
            let metrics = loop.metrics()
            return "event loop: jobs \(metrics.jobsRun), parks \(metrics.parks), timers pending \(metrics.timersPending), "
                + "sqes \(metrics.sqesSubmitted), cqes \(metrics.cqesReaped), shut down \(loop.isShutDown)\n"
                + "  pool: \(loop.blockingPool.metrics())"
        }
    }
}
