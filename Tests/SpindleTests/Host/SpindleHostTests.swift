import Glibc
import Testing
@testable import Spindle

extension SpindleTests {
    /// The free `spawn` and `currentSpindleHost` (Host/SpindleHost.swift) on real runtimes and
    /// loops: a task lands on the host of the thread that spawns it, is listed by that host's
    /// task dump and cancelled by its shutdown; off Spindle's threads, spawning throws.
    @Suite struct SpindleHostTests {
        /// Where a spawned task ran: the runtime and the loop current on its thread.
        struct Landing: Sendable {
            let onRuntime: ObjectIdentifier?
            let onLoop: ObjectIdentifier?
            let cancelled: Bool

            static func here(cancelled: Bool) -> Landing {
                Landing(
                    onRuntime: Runtime.current.map { ObjectIdentifier($0) },
                    onLoop: SpindleEventLoop.current.map { ObjectIdentifier($0) },
                    cancelled: cancelled)
            }
        }

        /// A task that records where it runs, waits until it is cancelled, and says so.
        static func waitForCancellation(started: Gate) async -> Landing {
            started.open()
            let cancelled: Bool
            do {
                try await Spindle.sleep(for: .seconds(3600))
                cancelled = false
            } catch {
                cancelled = error is CancellationError
            }
            return Landing.here(cancelled: cancelled)
        }

        @Test func spawnOnAWorkerLandsOnItsRuntimeIsDumpedAndShutdownCancelsIt() async throws {
            let runtime = try Runtime(workers: 2, blockedWorkerThreshold: nil)
            let started = Gate()
            let child = try await Task(executorPreference: runtime) { () async throws -> Task<Landing, Never> in
                try spawn(name: "child") { await Self.waitForCancellation(started: started) }
            }.value
            started.wait()
            #expect(runtime.taskDump().contains { $0.name == "child" })
            let report = await runtime.shutdown(gracePeriod: .seconds(10))
            let landing = await child.value
            #expect(landing.onRuntime == ObjectIdentifier(runtime))
            #expect(landing.onLoop == nil)
            #expect(landing.cancelled)
            #expect(report.abandonedTasks == 0)
        }

        @Test func spawnOnALoopLandsOnThatLoopIsDumpedAndShutdownCancelsIt() async throws {
            let loop = try SpindleEventLoop()
            let started = Gate()
            let child = try await Task(executorPreference: loop) { () async throws -> Task<Landing, any Error> in
                // The throwing overload, this time.
                try spawn(name: "child") { () async throws -> Landing in await Self.waitForCancellation(started: started) }
            }.value
            started.wait()
            #expect(loop.taskDump().contains { $0.name == "child" })
            let report = await loop.shutdown(gracePeriod: .seconds(10))
            let landing = try await child.value
            #expect(landing.onLoop == ObjectIdentifier(loop))
            #expect(landing.onRuntime == nil)
            #expect(landing.cancelled)
            #expect(report.abandonedTasks == 0)
        }

        @Test func currentHostIsTheRuntimeOrLoopOfTheThread() async throws {
            let runtime = try Runtime(workers: 1, blockedWorkerThreshold: nil)
            let loop = try SpindleEventLoop()
            let onRuntime = await Task(executorPreference: runtime) { currentSpindleHost.map { ObjectIdentifier($0) } }.value
            let onLoop = await Task(executorPreference: loop) { currentSpindleHost.map { ObjectIdentifier($0) } }.value
            let offSpindle = currentSpindleHost == nil
            #expect(onRuntime == ObjectIdentifier(runtime))
            #expect(onLoop == ObjectIdentifier(loop))
            #expect(offSpindle)
            // Through `any SpindleHost`: the short overload spawns on the same host.
            let viaExistential = try await Task(executorPreference: loop) { () async throws -> Bool in
                guard let host = currentSpindleHost else { return false }
                return try await host.spawn(name: "existential") { SpindleEventLoop.current === loop }.value
            }.value
            #expect(viaExistential)
            await runtime.shutdown()
            await loop.shutdown()
        }

        @Test func spawnOffSpindleThrowsNotOnSpindle() async throws {
            // A test runs on Swift's global executor: no runtime worker, no loop.
            #expect(throws: SpindleError.notOnSpindle) { try spawn { 1 } }
            #expect(throws: SpindleError.notOnSpindle) { try spawn { () async throws -> Int in 1 } }
            // A plain thread of its own.
            let outcome = Lock<SpindleError?>(nil)
            let thread = try OSThread.spawn(name: "plain") {
                do throws(SpindleError) { try spawn { 1 } } catch { outcome.withLock { $0 = error } }
            }
            thread.join()
            #expect(outcome.withLock { $0 } == .notOnSpindle)
        }

        /// A task of a runtime inside `toThread` is on a blocking-pool thread: there is no
        /// current host there (spawn throws), and a host taken before still works.
        @Test func insideToThreadThereIsNoCurrentHostButACapturedOneWorks() async throws {
            let runtime = try Runtime(workers: 1, blockedWorkerThreshold: nil)
            let (inside, captured) = try await Task(executorPreference: runtime) {
                () async throws -> (SpindleError?, ObjectIdentifier?) in
                let host = currentSpindleHost
                return try await toThread { () -> (SpindleError?, ObjectIdentifier?) in
                    var inside: SpindleError?
                    do throws(SpindleError) { try spawn { 1 } } catch { inside = error }
                    let task = try host?.spawn(name: "from-pool") { Runtime.current.map { ObjectIdentifier($0) } }
                    let landed = Lock<ObjectIdentifier?>(nil)
                    let done = Gate()
                    Task {
                        let value = await task?.value ?? nil
                        landed.withLock { $0 = value }
                        done.open()
                    }
                    done.wait()
                    return (currentSpindleHost == nil ? inside : nil, landed.withLock { $0 })
                }
            }.value
            #expect(inside == .notOnSpindle)
            #expect(captured == ObjectIdentifier(runtime))
            await runtime.shutdown()
        }

        /// Spawning on a host whose shutdown has begun throws `shutDown`, not `notOnSpindle`:
        /// a `runBlocking` loop keeps turning after a shutdown until its operation returns.
        @Test func spawnOnAHostShuttingDownThrowsShutDown() throws {
            let error = try SpindleEventLoop.runBlocking { () async -> SpindleError? in
                await SpindleEventLoop.current?.shutdown(gracePeriod: .seconds(1))
                do throws(SpindleError) { try spawn { 1 } } catch { return error }
                return nil
            }
            #expect(error == .shutDown)
        }
    }
}
