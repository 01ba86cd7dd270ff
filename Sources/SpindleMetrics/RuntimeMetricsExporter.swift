// Spindle's counters through swift-metrics, on an interval.
//
// Spindle keeps its counters as plain atomics read by a snapshot (`runtime.metrics()`,
// `blockingPool.metrics()`): free on the hot path, and no dependency of the core on any
// metrics API. The exporter turns snapshots into swift-metrics calls: each `report()` takes a
// snapshot, increments every Counter by how much its running total grew since the previous
// report (the first report sends the totals since the runtime started), and sets every Meter
// to its current value. So a backend sees ordinary counters and gauges whatever the interval.
//
// The instruments (one per metric and worker) are made once, in init: the worker count of a
// runtime never changes. The previous totals sit behind a mutex, so concurrent `report()`
// calls (a periodic task and a final one at shutdown) each send a disjoint increase and the
// counters' sums stay exact. A total that went down (it cannot, the snapshots are monotonic;
// but a backend must never get a negative increment) is treated as a restart from zero.

import CoreMetrics
import Spindle
import Synchronization

/// Reports a Spindle `Runtime`'s (or `SpindleEventLoop`'s) counters and those of its blocking
/// pool through swift-metrics: monotonic counters as `Counter`s (their increase since the
/// last report), current values as `Meter`s. Names start with `spindle_`; per-worker series
/// carry a `worker` dimension, the pool's a `pool` dimension (docs/metrics.md lists them all,
/// with their units).
///
/// ```swift
/// let exporter = try RuntimeMetricsExporter(runtime: runtime, interval: .seconds(10))
/// let task = try runtime.spawn(name: "metrics") { await exporter.run() }
/// // ...
/// task.cancel()   // reports once more, then ends
/// ```
public final class RuntimeMetricsExporter: Sendable {
    /// What one report read: the snapshots it exported.
    public struct Sample: Sendable {
        /// The workers' counters, in worker order (one entry for an event loop).
        public var workers: [WorkerMetrics]
        /// The runtime's own counters; nil for an event loop.
        public var runtime: RuntimeMetrics?
        /// The blocking pool's counters.
        public var pool: BlockingPoolMetrics
    }

    /// Thrown by the initialisers for an interval that is not positive.
    public struct InvalidInterval: Error, CustomStringConvertible {
        /// The interval given (zero or negative).
        public let interval: Duration
        /// "metrics interval must be positive, got ...", for logs.
        public var description: String { "metrics interval must be positive, got \(interval)" }
    }

    /// How often ``run()`` reports.
    public let interval: Duration
    private let sample: @Sendable () -> Sample
    private let instruments: [Instrument]
    /// The totals each counter instrument last reported (indexed like `instruments`).
    private let reported: Mutex<[UInt64]>

    /// Exports `runtime`'s counters and its blocking pool's.
    ///
    /// - Parameters:
    ///   - runtime: the runtime whose counters are exported.
    ///   - interval: the period of ``run()``.
    ///   - dimensions: added to every metric (say `[("runtime", "io")]` to tell runtimes apart).
    ///   - factory: where the metrics go; by default the process's bootstrapped
    ///     `MetricsSystem`.
    /// - Throws: ``InvalidInterval`` when `interval` is zero or negative.
    public convenience init(
        runtime: Runtime,
        interval: Duration = .seconds(10),
        dimensions: [(String, String)] = [],
        factory: any MetricsFactory = MetricsSystem.factory
    ) throws(InvalidInterval) {
        let pool = runtime.blockingPool
        try self.init(
            workers: runtime.workerCount, hasRuntime: true, pool: pool.name, interval: interval,
            dimensions: dimensions, factory: factory
        ) {
            let metrics = runtime.metrics()
            return Sample(workers: metrics.workers, runtime: metrics, pool: pool.metrics())
        }
    }

    /// Exports `loop`'s counters (as worker 0) and its blocking pool's.
    public convenience init(
        eventLoop loop: SpindleEventLoop,
        interval: Duration = .seconds(10),
        dimensions: [(String, String)] = [],
        factory: any MetricsFactory = MetricsSystem.factory
    ) throws(InvalidInterval) {
        let pool = loop.blockingPool
        try self.init(
            workers: 1, hasRuntime: false, pool: pool.name, interval: interval, dimensions: dimensions,
            factory: factory
        ) {
            Sample(workers: [loop.metrics()], runtime: nil, pool: pool.metrics())
        }
    }

    private init(
        workers: Int, hasRuntime: Bool, pool: String, interval: Duration, dimensions: [(String, String)],
        factory: any MetricsFactory, sample: @escaping @Sendable () -> Sample
    ) throws(InvalidInterval) {
        guard interval > .zero else { throw InvalidInterval(interval: interval) }
        self.interval = interval
        self.sample = sample
        var instruments: [Instrument] = []
        for definition in MetricDefinition.all {
            switch definition.scope {
            case .worker(let value):
                for index in 0..<workers {
                    instruments.append(Instrument(
                        definition, dimensions + [("worker", "\(index)")], factory,
                        read: { value($0.workers[index]) }))
                }
            case .runtime(let value):
                guard hasRuntime else { continue }
                instruments.append(Instrument(definition, dimensions, factory, read: { value($0.runtime!) }))
            case .pool(let value):
                instruments.append(Instrument(
                    definition, dimensions + [("pool", pool)], factory, read: { value($0.pool) }))
            }
        }
        self.instruments = instruments
        reported = Mutex([UInt64](repeating: 0, count: instruments.count))
    }

    /// Takes a snapshot and exports it now; returns what it exported.
    @discardableResult
    public func report() -> Sample {
        reported.withLock { reported in
            // Under the lock: two reports must not both send the same increase.
            let sample = sample()
            for (index, instrument) in instruments.enumerated() {
                let value = instrument.read(sample)
                switch instrument.handle {
                case .counter(let counter):
                    let increase = value >= reported[index] ? value - reported[index] : value
                    if increase > 0 { counter.increment(by: Int64(clamping: increase)) }
                    reported[index] = value
                case .meter(let meter):
                    meter.set(Int64(clamping: value))
                }
            }
            return sample
        }
    }

    /// Reports every ``interval`` (the first report at once) until the task is cancelled,
    /// then reports once more and returns. Sleeps with Spindle's timers when run on a Spindle
    /// runtime or loop (`Task.sleep` elsewhere).
    public func run() async {
        while true {
            report()
            do {
                try await Spindle.sleep(for: interval)
            } catch {
                break  // cancelled
            }
        }
        report()
    }
}

/// One swift-metrics instrument and how to read its value from a sample.
private struct Instrument: Sendable {
    enum Handle: Sendable {
        case counter(Counter)
        case meter(Meter)
    }

    let handle: Handle
    let read: @Sendable (RuntimeMetricsExporter.Sample) -> UInt64

    init(
        _ definition: MetricDefinition, _ dimensions: [(String, String)], _ factory: any MetricsFactory,
        read: @escaping @Sendable (RuntimeMetricsExporter.Sample) -> UInt64
    ) {
        switch definition.kind {
        case .counter: handle = .counter(Counter(label: definition.name, dimensions: dimensions, factory: factory))
        case .gauge: handle = .meter(Meter(label: definition.name, dimensions: dimensions, factory: factory))
        }
        self.read = read
    }
}
