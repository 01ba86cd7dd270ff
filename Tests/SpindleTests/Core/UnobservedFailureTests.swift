import Logging
import Synchronization
import Testing
@testable import Spindle

extension SpindleTests {
    @Suite struct UnobservedFailureTests {
        struct Broken: Error {}

        /// A runtime whose records go to `recorder`, and the failure reports among them.
        static func runtime(_ recorder: LogRecorder) throws -> Runtime {
            try Runtime(workers: 2, logger: Logger(label: "test") { _ in RecordingHandler(recorder: recorder) })
        }

        static func reports(_ recorder: LogRecorder) -> [String] {
            recorder.all.filter { $0.contains("nobody can await") }
        }

        @Test func aFailureWhoseHandleWasDroppedIsLoggedWithItsName() async throws {
            let recorder = LogRecorder()
            let runtime = try Self.runtime(recorder)
            let go = SpindleChannel<Void>(capacity: 1)
            // The task fails only after `spawn` has returned and its handle has been dropped.
            _ = try runtime.spawn(name: "doomed") {
                _ = try await go.receive()
                throw Broken()
            }
            try await go.send(())
            try await eventually("the failure is reported", seconds: 20) { !Self.reports(recorder).isEmpty }
            await runtime.shutdown()
            let reports = Self.reports(recorder)
            #expect(reports.count == 1, "\(reports)")
            #expect(reports.first?.contains("'doomed'") == true && reports.first?.contains("Broken") == true)
            #expect(reports.first?.hasPrefix("error:") == true)
        }

        @Test func anAwaitedFailureIsNotLogged() async throws {
            let recorder = LogRecorder()
            let runtime = try Self.runtime(recorder)
            let go = SpindleChannel<Void>(capacity: 1)
            let task = try runtime.spawn(name: "awaited") {
                _ = try await go.receive()
                throw Broken()
            }
            try await go.send(())
            await #expect(throws: Broken.self) { try await bounded(10, "awaited") { try await task.value } }
            await runtime.shutdown()
            #expect(Self.reports(recorder).isEmpty, "\(recorder.all)")
        }

        @Test func aFailureWhoseHandleIsStillHeldIsNotLogged() async throws {
            let recorder = LogRecorder()
            let runtime = try Self.runtime(recorder)
            let go = SpindleChannel<Void>(capacity: 1)
            let task = try runtime.spawn(name: "held") {
                _ = try await go.receive()
                throw Broken()
            }
            try await go.send(())
            try await eventually("the task ends") { runtime.metrics().liveSpawnedTasks == 0 }
            #expect(Self.reports(recorder).isEmpty, "\(recorder.all)")
            withExtendedLifetime(task) {}  // held, and could still be awaited
            await runtime.shutdown()
        }

        @Test func cancellationIsNotAFailure() async throws {
            let recorder = LogRecorder()
            let runtime = try Self.runtime(recorder)
            let go = SpindleChannel<Void>(capacity: 1)
            _ = try runtime.spawn(name: "cancelled") {
                _ = try await go.receive()
                throw CancellationError()
            }
            _ = try runtime.spawn(name: "cancelled by shutdown") { try await Spindle.sleep(for: .seconds(3600)) }
            try await go.send(())
            try await eventually("the first task ends") { runtime.metrics().liveSpawnedTasks == 1 }
            await runtime.shutdown()
            #expect(Self.reports(recorder).isEmpty, "\(recorder.all)")
        }

        @Test func anEventLoopReportsThroughItsLogger() async throws {
            let recorder = LogRecorder()
            let loop = try SpindleEventLoop(logger: Logger(label: "test") { _ in RecordingHandler(recorder: recorder) })
            let go = SpindleChannel<Void>(capacity: 1)
            _ = try loop.spawn(name: "loop task") {
                _ = try await go.receive()
                throw Broken()
            }
            try await go.send(())
            try await eventually("the failure is reported", seconds: 20) { !Self.reports(recorder).isEmpty }
            await loop.shutdown()
            #expect(Self.reports(recorder).count == 1)
            #expect(Self.reports(recorder).first?.contains("'loop task'") == true)
        }
    }
}
