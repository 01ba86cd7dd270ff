// Every metric the exporter reports: its name, kind, unit and where its value comes from.
// docs/metrics.md documents this list; a test checks that the two agree name for name.

import Spindle

/// One exported metric.
struct MetricDefinition: Sendable {
    enum Kind: Sendable {
        /// Monotonic: the snapshot holds a running total, the exporter reports its increase.
        case counter
        /// A current value (or a high-water mark), set as a swift-metrics `Meter`.
        case gauge
    }

    /// Which snapshot the value is read from, and so which dimensions it carries.
    enum Scope: Sendable {
        /// One series per worker (`worker` dimension); an event loop is worker 0.
        case worker(@Sendable (WorkerMetrics) -> UInt64)
        /// One series per runtime (absent for an event loop, which has no such counters).
        case runtime(@Sendable (RuntimeMetrics) -> UInt64)
        /// One series per blocking pool (`pool` dimension: the pool's name).
        case pool(@Sendable (BlockingPoolMetrics) -> UInt64)
    }

    let name: String
    let kind: Kind
    let scope: Scope

    static func worker(_ name: String, _ kind: Kind, _ value: @escaping @Sendable (WorkerMetrics) -> UInt64) -> Self {
        Self(name: name, kind: kind, scope: .worker(value))
    }

    static func runtime(_ name: String, _ kind: Kind, _ value: @escaping @Sendable (RuntimeMetrics) -> UInt64) -> Self {
        Self(name: name, kind: kind, scope: .runtime(value))
    }

    static func pool(_ name: String, _ kind: Kind, _ value: @escaping @Sendable (BlockingPoolMetrics) -> UInt64) -> Self {
        Self(name: name, kind: kind, scope: .pool(value))
    }
}

extension MetricDefinition {
    /// The catalog, in the order of docs/metrics.md.
    static let all: [MetricDefinition] = [
        // Workers
        .worker("spindle_worker_jobs_run_total", .counter) { $0.jobsRun },
        .worker("spindle_worker_steals_total", .counter) { $0.steals },
        .worker("spindle_worker_jobs_stolen_total", .counter) { $0.jobsStolen },
        .worker("spindle_worker_lifo_hits_total", .counter) { $0.lifoHits },
        .worker("spindle_worker_injector_pulls_total", .counter) { $0.injectorPulls },
        .worker("spindle_worker_parks_total", .counter) { $0.parks },
        .worker("spindle_worker_wakeups_sent_total", .counter) { $0.wakeupsSent },
        .worker("spindle_worker_overflows_total", .counter) { $0.overflows },
        .worker("spindle_worker_queue_depth_high_water", .gauge) { $0.queueDepthHighWater },
        // Timers
        .worker("spindle_worker_timers_fired_total", .counter) { $0.timersFired },
        .worker("spindle_worker_timers_pending", .gauge) { $0.timersPending },
        // io_uring
        .worker("spindle_worker_sqes_submitted_total", .counter) { $0.sqesSubmitted },
        .worker("spindle_worker_cqes_reaped_total", .counter) { $0.cqesReaped },
        .worker("spindle_worker_cqes_reaped_by_watch_total", .counter) { $0.cqesReapedByWatch },
        .worker("spindle_worker_operations_in_flight", .gauge) { $0.operationsInFlight },
        // Runtime
        .runtime("spindle_runtime_injector_depth", .gauge) { UInt64(max(0, $0.injectorDepth)) },
        .runtime("spindle_runtime_live_tasks", .gauge) { UInt64(max(0, $0.liveSpawnedTasks)) },
        .runtime("spindle_runtime_foreign_wakeups_total", .counter) { $0.foreignWakeups },
        .runtime("spindle_runtime_remote_enqueues_total", .counter) { $0.remoteEnqueues },
        .runtime("spindle_runtime_blocked_worker_reports_total", .counter) { $0.blockedWorkerReports },
        // Blocking pool
        .pool("spindle_pool_threads", .gauge) { UInt64(max(0, $0.threadsAlive)) },
        .pool("spindle_pool_threads_idle", .gauge) { UInt64(max(0, $0.threadsIdle)) },
        .pool("spindle_pool_threads_high_water", .gauge) { UInt64(max(0, $0.threadsHighWater)) },
        .pool("spindle_pool_jobs_queued", .gauge) { UInt64(max(0, $0.jobsQueued)) },
        .pool("spindle_pool_queue_depth_high_water", .gauge) { UInt64(max(0, $0.queueDepthHighWater)) },
        .pool("spindle_pool_jobs_started_total", .counter) { $0.jobsStarted },
        .pool("spindle_pool_jobs_completed_total", .counter) { $0.jobsCompleted },
        .pool("spindle_pool_jobs_cancelled_total", .counter) { $0.jobsCancelled },
        .pool("spindle_pool_jobs_abandoned_total", .counter) { $0.jobsAbandoned },
    ]
}
