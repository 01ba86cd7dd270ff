import Glibc
import Testing
@testable import Spindle

extension SpindleTests {
    @Suite struct BadInputTests {
        /// Reflection of a runtime or loop must not touch their noncopyable timer wheels
        /// (default reflection copies every field, and copying a noncopyable one traps).
        @Test func dumpingARuntimeOrAnEventLoopDoesNotTrap() async throws {
            let runtime = try Runtime(workers: 1)
            let loop = try SpindleEventLoop()
            var text = ""
            dump(runtime, to: &text)
            dump(loop, to: &text)
            #expect(text.contains("workerCount: 1"))
            #expect(String(reflecting: loop).contains("SpindleEventLoop"))
            await loop.shutdown()
            await runtime.shutdown()
        }

        @Test(arguments: [0, -1, -100])
        func nonPositiveWorkerCountsAreRejected(count: Int) {
            #expect(throws: SpindleError.invalidWorkerCount(count)) { try Runtime(workers: count) }
        }

        @Test func spawnAfterShutdownThrows() async throws {
            let runtime = try Runtime(workers: 1)
            await runtime.shutdown()
            #expect(throws: SpindleError.shutDown) { try runtime.spawn { 1 } }
            // A second shutdown is harmless.
            let report = await runtime.shutdown()
            #expect(report.abandonedTasks == 0)
        }

        @Test func enqueueAfterShutdownStillRunsTheTask() async throws {
            let runtime = try Runtime(workers: 1)
            await runtime.shutdown()
            // Work that reaches a stopped runtime is handed to Swift's global executor
            // instead of being lost or hanging its awaiter.
            let value = try await bounded(10, "task on a stopped runtime") {
                await Task(executorPreference: runtime) { 5 }.value
            }
            #expect(value == 5)
        }

        @Test func runInsideARunningRuntimeIsRefused() async throws {
            let error = try await Runtime.run(workers: 1) { () -> SpindleError? in
                do {
                    _ = try await Runtime.run(workers: 1) { 1 }
                    return nil
                } catch let error as SpindleError {
                    return error
                }
            }
            #expect(error == .nestedRun)
            let loopError = try await SpindleEventLoop.run { () -> SpindleError? in
                do {
                    _ = try await Runtime.run(workers: 1) { 1 }
                    return nil
                } catch let error as SpindleError {
                    return error
                }
            }
            #expect(loopError == .nestedRun)
        }

        @Test func ringRefusalsBecomeTypedErrorsThatSayWhatToDo() {
            for code in [EPERM, ENOSYS, ENOMEM] {
                let error = Ring.diagnose(errno: code)
                guard case .ioUringUnavailable(let errno, let reason) = error else {
                    Issue.record("unexpected \(error)")
                    continue
                }
                #expect(errno == code)
                #expect(!reason.isEmpty)
            }
            #expect(Ring.diagnose(errno: EPERM).description.contains("io_uring_disabled"))
        }
    }
}
