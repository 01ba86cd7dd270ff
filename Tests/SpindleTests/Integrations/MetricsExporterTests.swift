import CoreMetrics
import Glibc
import MetricsTestKit
import Testing
@testable import Spindle
@testable import SpindleMetrics

/// The metric names and kinds of docs/metrics.md's table (rows starting with "| `spindle_").
private func documentedMetrics() throws -> [String: String] {
    let docs = packageRoot() + "/docs/metrics.md"
    guard let file = fopen(docs, "r") else { throw SpindleIOError(.open, errno: errno) }
    defer { fclose(file) }
    var result: [String: String] = [:]
    var line = [CChar](repeating: 0, count: 4096)
    while fgets(&line, 4096, file) != nil {
        let text = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        guard text.hasPrefix("| `spindle_") else { continue }
        let cells = text.split(separator: "|").map { String($0).trimming(" \n`") }
        result[cells[0]] = cells[1]
    }
    return result
}

extension String {
    fileprivate func trimming(_ set: String) -> String {
        String(drop { set.contains($0) }.reversed().drop { set.contains($0) }.reversed())
    }
}

/// Runs on `runtime`: `tasks` spawned tasks, `blockingJobs` pool jobs, `roundTrips` TCP echo
/// round trips and `sleeps` 1 ms Spindle sleeps.
private func workload(on runtime: Runtime, tasks: Int, blockingJobs: Int, roundTrips: Int, sleeps: Int) async throws {
    try await runtime.spawn { () async throws -> Void in
        let spawned = try (0..<tasks).map { i in try runtime.spawn { i } }
        for task in spawned { _ = await task.value }
        for i in 0..<blockingJobs { #expect(try await toThread { i } == i) }
        for _ in 0..<sleeps { try await Spindle.sleep(for: .milliseconds(1)) }
        let listener = try TCPListener.bind(host: "127.0.0.1", port: 0)
        let echo = try runtime.spawn { () async throws -> Void in
            let connection = try await listener.accept()
            defer { connection.close() }
            while let bytes = try await connection.read() { try await connection.write(bytes) }
        }
        let client = try await TCPStream.connect(to: try listener.localAddress, timeout: .seconds(5))
        for _ in 0..<roundTrips {
            try await client.write([1, 2, 3])
            #expect(try await withTimeout(.seconds(10)) { try await client.readExactly(3) } == [1, 2, 3])
        }
        client.close()
        try await echo.value
        listener.close()
    }.value
}

extension SpindleTests {
    @Suite struct MetricsExporterTests {
        @Test func everyDocumentedMetricIsExportedAndEveryExportedOneDocumented() throws {
            let documented = try documentedMetrics()
            let exported = Dictionary(uniqueKeysWithValues: MetricDefinition.all.map {
                ($0.name, $0.kind == .counter ? "counter" : "gauge")
            })
            #expect(documented == exported)
            #expect(exported.keys.allSatisfy { $0.hasPrefix("spindle_") })
        }

        @Test func countersReportTheirIncreaseAndGaugesTheirValuePerWorker() async throws {
            let metrics = TestMetrics()
            let runtime = try Runtime(workers: 2)
            let exporter = try RuntimeMetricsExporter(
                runtime: runtime, interval: .seconds(3600), dimensions: [("runtime", "test")], factory: metrics)
            try await bounded(60, "metrics workload") {
                // Something to count before the first report, so that a report of totals
                // instead of increases would show in the sums below.
                try await workload(on: runtime, tasks: 10, blockingJobs: 1, roundTrips: 1, sleeps: 1)
                let before = exporter.report()
                try await workload(on: runtime, tasks: 200, blockingJobs: 5, roundTrips: 20, sleeps: 10)
                // A sleep still pending when the snapshot is taken: timers_pending and live_tasks.
                let sleeper = try runtime.spawn { try? await Spindle.sleep(for: .seconds(3600)) }
                try await eventually("the sleeper's timer is set") {
                    runtime.metrics().workers.reduce(0) { $0 + $1.timersPending } >= 1
                }
                let after = exporter.report()
                sleeper.cancel()
                await sleeper.value

                let workers = [("runtime", "test"), ("worker", "0")], workers1 = [("runtime", "test"), ("worker", "1")]
                let pool = [("runtime", "test"), ("pool", runtime.blockingPool.name)]
                // Counters: the sums of the increments are the snapshot's totals, and the last
                // report sent only the increase since the one before.
                let dimensions = [workers, workers1]
                for definition in MetricDefinition.all where definition.kind == .counter {
                    guard case .worker(let value) = definition.scope else { continue }
                    for index in 0..<2 {
                        let counter = try metrics.expectCounter(definition.name, dimensions[index])
                        let total = value(after.workers[index]), earlier = value(before.workers[index])
                        #expect(counter.totalValue == Int64(total), "\(definition.name) \(index)")
                        if total > earlier {
                            #expect(counter.values.last == Int64(total - earlier), "\(definition.name) \(index)")
                        }
                    }
                }
                // The increases cover the workload.
                func increase(_ value: (WorkerMetrics) -> UInt64) -> UInt64 {
                    (0..<2).reduce(0) { $0 + value(after.workers[$1]) - value(before.workers[$1]) }
                }
                let jobs = increase(\.jobsRun)
                #expect(jobs >= 200 + 20, "\(jobs)")  // the spawned tasks, and a resumption per round trip
                let sqes = increase(\.sqesSubmitted), cqes = increase(\.cqesReaped)
                #expect(sqes >= 2 * 20, "\(sqes)")  // a write and a read per round trip, at least
                #expect(cqes >= 2 * 20, "\(cqes)")
                #expect(increase(\.timersFired) >= 10)
                // The pool's counters are exact: only this test's jobs ran on it.
                #expect(try metrics.expectCounter("spindle_pool_jobs_started_total", pool).totalValue == 6)
                #expect(try metrics.expectCounter("spindle_pool_jobs_started_total", pool).values.last == 5)
                #expect(try metrics.expectCounter("spindle_pool_jobs_completed_total", pool).totalValue == 6)
                #expect(try metrics.expectCounter("spindle_pool_jobs_cancelled_total", pool).totalValue == 0)

                // Gauges: the snapshot's values, per worker.
                let pending = try (metrics.expectMeter("spindle_worker_timers_pending", workers).lastValue ?? -1)
                    + (metrics.expectMeter("spindle_worker_timers_pending", workers1).lastValue ?? -1)
                #expect(pending == Double(after.workers.reduce(0) { $0 + $1.timersPending }))
                #expect(pending >= 1)
                #expect(try metrics.expectMeter("spindle_runtime_live_tasks", [("runtime", "test")]).lastValue
                    == Double(after.runtime!.liveSpawnedTasks))
                #expect(try metrics.expectMeter("spindle_runtime_live_tasks", [("runtime", "test")]).lastValue ?? 0 >= 1)
                #expect(try metrics.expectMeter("spindle_pool_threads_high_water", pool).lastValue ?? 0 >= 1)
                #expect(try metrics.expectMeter("spindle_pool_jobs_queued", pool).lastValue == 0)
                for index in 0..<2 {
                    let high = try metrics.expectMeter(
                        "spindle_worker_queue_depth_high_water", [("runtime", "test"), ("worker", "\(index)")])
                    #expect(high.lastValue == Double(after.workers[index].queueDepthHighWater))
                }
                // Every metric of the catalog exists, with its dimensions.
                for definition in MetricDefinition.all {
                    let series: [(String, String)]
                    switch definition.scope {
                    case .worker: series = workers
                    case .runtime: series = [("runtime", "test")]
                    case .pool: series = pool
                    }
                    switch definition.kind {
                    case .counter: _ = try metrics.expectCounter(definition.name, series)
                    case .gauge: _ = try metrics.expectMeter(definition.name, series)
                    }
                }
            }
            await runtime.shutdown(gracePeriod: .seconds(5))
        }

        @Test func runReportsOnItsIntervalAndOnceMoreWhenCancelled() async throws {
            let metrics = TestMetrics()
            let runtime = try Runtime(workers: 2)
            let exporter = try RuntimeMetricsExporter(runtime: runtime, interval: .milliseconds(5), factory: metrics)
            try await bounded(30, "periodic exporter") {
                let task = try runtime.spawn(name: "metrics") { await exporter.run() }
                try await eventually("several reports") {
                    (try? metrics.expectMeter("spindle_runtime_live_tasks").values.count) ?? 0 >= 3
                }
                task.cancel()
                await task.value
                let reports = try metrics.expectMeter("spindle_runtime_live_tasks").values.count
                // Stopped: no more reports come.
                try await Spindle.sleep(for: .milliseconds(50))
                #expect(try metrics.expectMeter("spindle_runtime_live_tasks").values.count == reports)
            }
            await runtime.shutdown(gracePeriod: .seconds(5))
        }

        @Test func eventLoopExportsOneWorkerAndNoRuntimeSeries() async throws {
            let metrics = TestMetrics()
            let loop = try SpindleEventLoop()
            let exporter = try RuntimeMetricsExporter(eventLoop: loop, factory: metrics)
            try await loop.spawn { try? await Spindle.sleep(for: .milliseconds(1)) }.value
            let sample = exporter.report()
            #expect(sample.runtime == nil)
            #expect(try metrics.expectCounter("spindle_worker_jobs_run_total", [("worker", "0")]).totalValue
                == Int64(sample.workers[0].jobsRun))
            #expect(sample.workers[0].jobsRun >= 1)
            #expect(metrics.meters(label: "spindle_runtime_live_tasks").isEmpty)
            #expect(metrics.counters(label: "spindle_worker_jobs_run_total").count == 1)
            await loop.shutdown(gracePeriod: .seconds(5))
        }

        @Test func aNonPositiveIntervalIsATypedError() throws {
            let runtime = try Runtime(workers: 1)
            defer { runtime.shutdownBlocking(gracePeriod: .seconds(5)) }
            #expect(throws: RuntimeMetricsExporter.InvalidInterval.self) {
                try RuntimeMetricsExporter(runtime: runtime, interval: .zero, factory: TestMetrics())
            }
        }
    }
}
