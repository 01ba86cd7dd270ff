import Glibc
import Synchronization
import Testing
@testable import Spindle

// How workers stop (Worker.swift, "Stopping"): a stopping worker runs jobs for a bounded drain,
// then leaves whatever remains or keeps arriving to the after-stop path (Afterlife.swift), so
// shutdown returns with none of the runtime's threads alive unless a job truly never returns.

extension SpindleTests {
    @Suite struct WorkerStopTests {
        @Test func shutdownLeavesNoWorkerThreadBehindTasksThatIgnoreCancellation() async throws {
            // A name of its own: only this test's threads are counted.
            let name = "stopdrain"
            let runtime = try Runtime(workers: 2, name: name)
            final class Control: Sendable {
                let release = Atomic<Bool>(false)
                let spins = Atomic<Int>(0)
            }
            let control = Control()
            // Tasks that ignore cancellation and re-enqueue themselves for ever (until released),
            // one per worker.
            let stubborn = try (0..<2).map { _ in
                try runtime.spawn(name: "stubborn") {
                    while !control.release.load(ordering: .acquiring) {
                        control.spins.add(1, ordering: .relaxed)
                        await Task.yield()
                    }
                }
            }
            defer { control.release.store(true, ordering: .releasing) }  // even if a check fails
            try await eventually("the stubborn tasks run") { control.spins.load(ordering: .relaxed) > 1_000 }
            let report = await runtime.shutdown(gracePeriod: .milliseconds(50))
            #expect(report.abandonedTasks == 2, "\(report)")
            #expect(report.stuckWorkers == 0, "\(report)")
            // The workers were joined, so they are gone; /proc may list a joined thread for a
            // moment after the join (the kernel wakes the joiner before it unlists the
            // thread), hence a short bound. The tasks are still spinning, elsewhere.
            try await eventually("no \(name) thread after shutdown: \(threadNames().filter { $0.hasPrefix(name) })", seconds: 2) {
                threadCount(prefix: "\(name)-") == 0
            }
            let spinsAfterShutdown = control.spins.load(ordering: .relaxed)
            try await eventually("the abandoned tasks go on after shutdown (on Swift's global executor)") {
                control.spins.load(ordering: .relaxed) > spinsAfterShutdown + 100
            }
            control.release.store(true, ordering: .releasing)
            for task in stubborn {
                try await bounded(10, "an abandoned task finishes once released") { await task.value }
            }
        }

        @Test func aWorkerStuckInAJobIsReportedPromptlyAndTheOthersAreJoined() async throws {
            let name = "stopstuck"
            let runtime = try Runtime(workers: 2, name: name, blockedWorkerThreshold: nil)
            final class Control: Sendable { let entered = Atomic<Bool>(false) }
            let control = Control()
            // Blocks one worker well past the stuck budget (1 s).
            let stuck = try runtime.spawn(name: "stuck") {
                control.entered.store(true, ordering: .releasing)
                usleep(2_500_000)
            }
            try await eventually("the stuck job started") { control.entered.load(ordering: .acquiring) }
            let start = ContinuousClock.now
            let report = await runtime.shutdown(gracePeriod: .milliseconds(50))
            let took = ContinuousClock.now - start
            #expect(report.stuckWorkers == 1, "\(report)")
            // The stuck budget (1 s) after the grace period, not the ring's drain on top.
            #expect(took < .milliseconds(2_000), "shutdown took \(took)")
            // The stuck worker exits once its job returns.
            try await bounded(10, "the stuck task ends") { await stuck.value }
            try await eventually("the stuck worker exits after its job", seconds: 5) { threadCount(prefix: "\(name)-") == 0 }
        }
    }
}
