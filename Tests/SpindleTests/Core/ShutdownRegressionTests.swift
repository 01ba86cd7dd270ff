import Glibc
import Synchronization
import Testing
@testable import Spindle

/// A wait a test ends by hand: the task that waits ignores cancellation until `release`.
final class Hold: Sendable {
    private let state = Mutex<(continuation: CheckedContinuation<Void, Never>?, released: Bool)>((nil, false))

    /// Whether a task is waiting.
    var isWaiting: Bool { state.withLock { $0.continuation != nil } }

    func wait() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let now = state.withLock { state -> Bool in
                if state.released { return true }
                state.continuation = continuation
                return false
            }
            if now { continuation.resume() }
        }
    }

    /// Ends the wait (now or, if nobody waits yet, as soon as someone does). Idempotent.
    func release() {
        let waiting = state.withLock { state -> CheckedContinuation<Void, Never>? in
            state.released = true
            defer { state.continuation = nil }
            return state.continuation
        }
        waiting?.resume()
    }
}

/// Runs `body` on a new thread that is not a Spindle thread (so that `runBlocking` can make it
/// a loop) and returns what it returned. Wrap it in `bounded`: the thread may hang.
func onOwnThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
        onForeignThread { continuation.resume(with: Result { try body() }) }
    }
}

extension SpindleTests {
    /// Shutdowns that used to crash or hang: issue 11, findings 1, 2 and 6.
    @Suite struct ShutdownRegressionTests {
        /// `runBlocking`'s operation shuts its own loop down and then suspends again. It used to
        /// reach `fatalError("ResultBox read before it was set")`: the loop stopped under the
        /// operation, which went on elsewhere. Now the loop keeps turning until the operation
        /// returns (asyncio.run's loop runs until its main coroutine ends).
        @Test func anOperationThatShutsItsLoopDownKeepsRunningOnIt() async throws {
            let rings = { descriptorTargets().filter { $0.hasSuffix("anon_inode:[io_uring]") }.count }
            let ringsBefore = rings()
            let (onLoop, refused, report) = try await bounded(20, "runBlocking whose operation shuts its loop down") {
                try await onOwnThread {
                    let caller = spindle_test_tid()
                    return try SpindleEventLoop.runBlocking { () async throws -> (Bool, Bool, ShutdownReport) in
                        let loop = SpindleEventLoop.current!
                        let report = await loop.shutdown(gracePeriod: .seconds(5))
                        // Suspends again: a Swift timer, a yield, a Spindle timer.
                        try await Task.sleep(for: .milliseconds(5))
                        await Task.yield()
                        try await Spindle.sleep(for: .milliseconds(5))
                        let refused = (try? loop.spawn { 1 }) == nil
                        return (spindle_test_tid() == caller && SpindleEventLoop.current === loop, refused, report)
                    }
                }
            }
            #expect(onLoop, "the operation finished on the loop, on the caller's thread")
            #expect(refused, "spawn is refused after the shutdown")
            #expect(report == ShutdownReport(abandonedTasks: 0, stuckWorkers: 0))
            // The loop's ring was closed at the end of the run (it used not to be when the
            // operation had shut the loop down).
            try await eventually("io_uring descriptors back to \(ringsBefore): \(descriptorTargets())") {
                rings() <= ringsBefore
            }
        }

        /// A spawned task that never finishes (it ignores cancellation and nobody resumes it)
        /// used to hang `runBlocking` forever: with no timers, the loop parked with no timeout
        /// and never looked at the grace period's end again.
        @Test func runBlockingEndsWhenItsGracePeriodDoes() async throws {
            let hold = Hold()
            defer { hold.release() }  // lets the abandoned task finish, on Swift's global executor
            let start = ContinuousClock.now
            let (value, loop) = try await bounded(10, "runBlocking with a task that never finishes") {
                try await onOwnThread {
                    try SpindleEventLoop.runBlocking(gracePeriod: .milliseconds(200)) { () async throws -> (Int, SpindleEventLoop) in
                        let loop = SpindleEventLoop.current!
                        try loop.spawn { await hold.wait() }
                        try await eventually("the spawned task waits") { hold.isWaiting }
                        return (7, loop)
                    }
                }
            }
            #expect(value == 7)
            #expect(ContinuousClock.now - start >= .milliseconds(200), "the grace period was given")
            // The run's own shutdown left the report a later call returns.
            let report = await loop.shutdown()
            #expect(report.abandonedTasks == 1, "\(report)")
        }

        /// A spawned task that calls `shutdown` used to wait its whole grace period for itself
        /// (the drain counted it, and slept the worker thread with `usleep` once the shutdown
        /// had cancelled it), freezing a one-worker runtime meanwhile.
        @Test func shutdownFromASpawnedTaskWaitsForTheOthersNotItself() async throws {
            let runtime = try Runtime(workers: 1, name: "spindle-sds")
            let hold = Hold()
            defer { hold.release() }
            // Ignores cancellation until released, then needs the runtime's one worker.
            let other = try runtime.spawn { () async -> Bool in
                await hold.wait()
                for _ in 0..<3 { await Task.yield() }
                return Runtime.current === runtime
            }
            try await eventually("the other task waits") { hold.isWaiting }
            let start = ContinuousClock.now
            let stopper = try runtime.spawn { await runtime.shutdown(gracePeriod: .seconds(10)) }
            try await eventually("shutdown begins") { runtime.isShutDown }
            hold.release()
            let report: ShutdownReport
            do {
                report = try await bounded(5, "shutdown called from a spawned task") { await stopper.value }
            } catch {
                _ = await stopper.value  // let the runtime stop before the next test
                throw error
            }
            #expect(ContinuousClock.now - start < .seconds(5))
            #expect(report.abandonedTasks == 0, "\(report)")
            #expect(await other.value, "the other task finished on the runtime during the shutdown")
            try await eventually("the workers exit") { threadCount(prefix: "spindle-sds") == 0 }
        }

        /// The same on an event loop, where the `usleep` froze the loop's only thread.
        @Test func shutdownFromATaskOnTheLoopKeepsTheLoopTurning() async throws {
            let loop = try SpindleEventLoop(name: "spindle-sdl")
            let hold = Hold()
            defer { hold.release() }
            let other = try loop.spawn { () async -> Bool in
                await hold.wait()
                for _ in 0..<3 { await Task.yield() }
                return loop.inEventLoop
            }
            try await eventually("the other task waits") { hold.isWaiting }
            let start = ContinuousClock.now
            let stopper = try loop.spawn { await loop.shutdown(gracePeriod: .seconds(10)) }
            try await eventually("shutdown begins") { loop.isShutDown }
            hold.release()
            let report: ShutdownReport
            do {
                report = try await bounded(5, "shutdown called from a task on the loop") { await stopper.value }
            } catch {
                _ = await stopper.value
                throw error
            }
            #expect(ContinuousClock.now - start < .seconds(5))
            #expect(report.abandonedTasks == 0, "\(report)")
            #expect(await other.value, "the other task finished on the loop during the shutdown")
            try await eventually("the loop's thread exits") { threadCount(prefix: "spindle-sdl") == 0 }
        }

        /// The blocking pool's part of that shutdown: its wait for a running job used to fall
        /// back to `usleep` in a cancelled caller too, freezing the loop until the job ended.
        @Test func aSpawnedTasksShutdownWaitsForThePoolWithoutFreezingTheLoop() async throws {
            final class Job: Sendable {
                let running = Atomic<Bool>(false)
                let released = Atomic<Bool>(false)
            }
            let loop = try SpindleEventLoop(name: "spindle-sdp")
            let job = Job()
            defer { job.released.store(true, ordering: .releasing) }
            // Submitted by a task the loop does not track, so the shutdown reaches the pool
            // while the job runs (a spawned task awaiting it would be waited for first).
            let submitter = Task(executorPreference: loop) {
                try await loop.blockingPool.run {
                    job.running.store(true, ordering: .releasing)
                    while !job.released.load(ordering: .acquiring) { usleep(1_000) }
                }
            }
            try await eventually("the pool job runs") { job.running.load(ordering: .acquiring) }
            let stopper = try loop.spawn { await loop.shutdown(gracePeriod: .seconds(10)) }
            try await eventually("the shutdown waits for the pool") { loop.blockingPool.isShutDown }
            let alive: Bool
            do {
                alive = try await bounded(5, "a task on the loop while the shutdown waits for the pool") {
                    await Task(executorPreference: loop) { loop.inEventLoop }.value
                }
            } catch {
                job.released.store(true, ordering: .releasing)
                _ = await stopper.value
                throw error
            }
            #expect(alive)
            job.released.store(true, ordering: .releasing)
            let report = try await bounded(5, "the shutdown after the pool job ended") { await stopper.value }
            #expect(report.abandonedBlockingJobs == 0, "\(report)")
            _ = try? await submitter.value
            try await eventually("the loop's thread exits") { threadCount(prefix: "spindle-sdp") == 0 }
        }

        /// A child of a spawned task (a connection handler in a server task's group, say) that
        /// calls `shutdown`: the spawned task cannot finish before its child returns, so
        /// waiting for it is waiting for oneself.
        @Test func shutdownFromAChildOfASpawnedTaskDoesNotWaitForItsParent() async throws {
            let runtime = try Runtime(workers: 2, name: "spindle-sdc")
            let stopper = try runtime.spawn { () async -> ShutdownReport in
                await withTaskGroup(of: ShutdownReport.self) { group in
                    group.addTask { await runtime.shutdown(gracePeriod: .seconds(10)) }
                    return await group.next()!
                }
            }
            let report: ShutdownReport
            do {
                report = try await bounded(5, "shutdown called from a spawned task's child") { await stopper.value }
            } catch {
                _ = await stopper.value
                throw error
            }
            #expect(report.abandonedTasks == 0, "\(report)")
            try await eventually("the workers exit") { threadCount(prefix: "spindle-sdc") == 0 }
        }

        /// In `runBlocking`, a spawned task shuts the loop down while the operation awaits it:
        /// the shutdown returns without waiting for its caller, and the operation goes on.
        @Test func aSpawnedTaskShutsDownARunBlockingLoop() async throws {
            let (report, onLoop) = try await bounded(10, "runBlocking whose spawned task shuts the loop down") {
                try await onOwnThread {
                    try SpindleEventLoop.runBlocking(gracePeriod: .seconds(10)) { () async throws -> (ShutdownReport, Bool) in
                        let loop = SpindleEventLoop.current!
                        let stopper = try loop.spawn { await loop.shutdown(gracePeriod: .seconds(10)) }
                        let report = await stopper.value
                        try await Spindle.sleep(for: .milliseconds(5))
                        return (report, loop.inEventLoop)
                    }
                }
            }
            #expect(report.abandonedTasks == 0, "\(report)")
            #expect(onLoop)
        }
    }
}
