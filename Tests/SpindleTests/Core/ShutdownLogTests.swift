import Logging
import Testing
@testable import Spindle

extension SpindleTests {
    /// What a shutdown logs (Core/ShutdownReport.swift): a warning naming the spawned tasks
    /// that outlived the grace period, nothing above debug when nothing was left behind.
    @Suite struct ShutdownLogTests {
        enum Kind: String, CaseIterable, Sendable { case runtime, loop }

        @Test(arguments: Kind.allCases)
        func aTaskThatOutlivesTheGracePeriodIsNamedInAWarning(kind: Kind) async throws {
            let recorder = LogRecorder()
            let host: any SpindleHost = switch kind {
            case .runtime: try Runtime(workers: 1, blockedWorkerThreshold: nil, logger: recorder.logger)
            case .loop: try SpindleEventLoop(logger: recorder.logger)
            }
            let release = Flag()
            let started = Gate()
            // Ignores its cancellation until released (yielding, so the executor stays free).
            _ = try host.spawn(name: "stubborn") { () async -> Void in
                started.open()
                while !release.isSet { await Task.yield() }
            }
            _ = try host.spawn(name: "polite") { () async -> Void in try? await Spindle.sleep(for: .seconds(3600)) }
            started.wait()
            let report = await host.shutdown(gracePeriod: .milliseconds(50))
            release.set()
            #expect(report.abandonedTasks == 1)
            let warnings = recorder.entries(containing: "spindle shut down leaving work behind")
            #expect(warnings.count == 1, "\(recorder.all)")
            #expect(warnings.first?.level == .warning)
            #expect(warnings.first?.metadata["abandoned_tasks"] == "1")
            let tasks = "\(warnings.first?.metadata["tasks"] ?? "")"
            #expect(tasks.contains("stubborn") && !tasks.contains("polite"), "\(tasks)")
        }

        @Test func aCleanShutdownLogsNothingAboveDebug() async throws {
            let recorder = LogRecorder()
            let runtime = try Runtime(workers: 1, blockedWorkerThreshold: nil, logger: recorder.logger)
            _ = try runtime.spawn(name: "polite") { () async -> Void in try? await Spindle.sleep(for: .seconds(3600)) }
            let report = await runtime.shutdown(gracePeriod: .seconds(10))
            #expect(report.abandonedTasks == 0)
            let entries = recorder.entries.withLock { $0 }
            #expect(entries.contains { $0.message.contains("shut down cleanly") && $0.level == .debug }, "\(recorder.all)")
            #expect(entries.allSatisfy { $0.level <= .debug }, "\(recorder.all)")
        }
    }
}
