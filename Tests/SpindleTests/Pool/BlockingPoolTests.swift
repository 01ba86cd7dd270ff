import CSpindle
import Glibc
import Synchronization
import Testing
@testable import Spindle

extension SpindleTests {
    @Suite struct BlockingPoolTests {
        @Test func valuesAndErrorsComeBack() async throws {
            let threads = ThreadBaseline()  // leak checks count only this test's threads
            struct Boom: Error, Equatable { let code: Int }
            let pool = try BlockingPool(name: "spindle-val", maxThreads: 2)
            let value = try await pool.run { 6 * 7 }
            #expect(value == 42)
            await #expect(throws: Boom(code: 7)) { try await pool.run { () throws -> Int in throw Boom(code: 7) } }
            let onPoolThread = try await runInExecutor(pool) { currentThreadName().hasPrefix("spindle-val-") }
            #expect(onPoolThread)
            await pool.shutdown()
            #expect(threads.count(prefix: "spindle-val") == 0)
        }

        @Test func invalidThreadLimitsAreRejected() {
            #expect(throws: SpindleError.invalidThreadLimit(0)) { try BlockingPool(maxThreads: 0) }
            #expect(throws: SpindleError.invalidThreadLimit(-3)) { try BlockingPool(maxThreads: -3) }
        }

        @Test func tenThousandJobsThroughFourThreadsNeverUseAFifth() async throws {
            let threads = ThreadBaseline()  // leak checks count only this test's threads
            let pool = try BlockingPool(name: "spindle-cap4", maxThreads: 4)
            let sampler = ThreadSampler(prefix: "spindle-cap4")
            let sum = try await bounded(60, "10,000 jobs through 4 threads") {
                try await withThrowingTaskGroup(of: Int.self) { group in
                    for i in 0..<10_000 {
                        group.addTask {
                            try await pool.run {
                                if i % 100 == 0 { usleep(200) }  // keep some threads busy so the queue builds up
                                return i
                            }
                        }
                    }
                    return try await group.reduce(0, +)
                }
            }
            let seen = sampler.stop()
            let metrics = pool.metrics()
            #expect(sum == 10_000 * 9_999 / 2)
            #expect(metrics.jobsCompleted == 10_000 && metrics.jobsStarted == 10_000)
            #expect(metrics.threadsHighWater <= 4, "\(metrics)")
            #expect(seen <= 4, "saw \(seen) threads named spindle-cap4*")
            #expect(seen >= 1)
            #expect(metrics.queueDepthHighWater > 4, "jobs beyond the limit should have queued: \(metrics)")
            #expect(metrics.jobsQueued == 0)
            let report = await pool.shutdown()
            #expect(report == BlockingPoolShutdownReport(cancelledJobs: 0, abandonedJobs: 0))
            #expect(threads.count(prefix: "spindle-cap4") == 0)
        }

        /// 40 CPU-bound jobs at once must not become 40 runnable threads (PoolGrowth.swift),
        /// also when other threads keep the CPUs busy (the jobs then get little CPU time but
        /// are not blocked).
        @Test(arguments: [0, 4])
        func aBurstOfCPUJobsRunsOnAboutAsManyThreadsAsCPUs(backgroundHogs: Int) async throws {
            let threads = ThreadBaseline()  // leak checks count only this test's threads
            let stopHogs = Gate()
            let hogsDone = Lock(0)
            for _ in 0..<backgroundHogs {
                onForeignThread {
                    while !stopHogs.wait(deadline: 0) { burnCPU(milliseconds: 1) }
                    hogsDone.withLock { $0 += 1 }
                }
            }
            defer {
                stopHogs.open()
                while hogsDone.withLock({ $0 }) < backgroundHogs { usleep(1_000) }
            }
            let pool = try BlockingPool(name: "spindle-cpu", maxThreads: 64)
            try await bounded(60, "40 CPU jobs") {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for _ in 0..<40 { group.addTask { try await pool.run { burnCPU(milliseconds: 10) } } }
                    try await group.waitForAll()
                }
            }
            let metrics = pool.metrics()
            #expect(metrics.jobsCompleted == 40)
            #expect(metrics.threadsHighWater <= pool.cpuBudget + 4,
                    "\(metrics.threadsHighWater) threads for \(pool.cpuBudget) CPUs")
            await pool.shutdown()
            #expect(threads.count(prefix: "spindle-cpu") == 0)
        }

        /// 100 jobs that sleep get their threads within milliseconds, though past the CPU count
        /// a submitter starts none itself.
        @Test func aBurstOfBlockingJobsGetsItsThreadsQuickly() async throws {
            let threads = ThreadBaseline()  // leak checks count only this test's threads
            let pool = try BlockingPool(name: "spindle-slp", maxThreads: 512)
            let start = ContinuousClock.now
            try await bounded(60, "100 sleeping jobs") {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for _ in 0..<100 { group.addTask { try await pool.run { _ = usleep(200_000) } } }
                    try await group.waitForAll()
                }
            }
            let took = ContinuousClock.now - start
            let metrics = pool.metrics()
            // On as many threads as CPUs this would take 100 x 0.2 s / CPUs: 10 s on 2. 0.2 s
            // when every job gets its thread at once; 5 s leaves a loaded machine room to start
            // 100 threads and is still half the CPU-bound time.
            #expect(took < .seconds(5), "100 x 200 ms sleeps took \(took) on \(metrics.threadsHighWater) threads")
            #expect(metrics.threadsHighWater >= 50)
            // The monitor leaves once the queue has been empty a while.
            try await eventually("the monitor exits", seconds: 5) { threads.count(prefix: "spindle-slp-mon") == 0 }
            await pool.shutdown()
            #expect(threads.count(prefix: "spindle-slp") == 0)
        }

        @Test func jobsBeyondTheLimitRunInFIFOOrder() async throws {
            let pool = try BlockingPool(name: "spindle-fifo", maxThreads: 1)
            let release = Gate()
            let order = Lock<[Int]>([])
            let blocker = Task { try await pool.run { _ = release.wait() } }
            try await eventually("the blocker runs") { pool.metrics().jobsStarted == 1 }
            var tasks: [Task<Void, any Error>] = []
            for i in 0..<50 {
                tasks.append(Task { try await pool.run { order.withLock { $0.append(i) } } })
                // Submit strictly one after the other.
                try await eventually("job \(i) is queued") { pool.metrics().jobsQueued == i + 1 }
            }
            release.open()
            try await blocker.value
            for task in tasks { try await task.value }
            #expect(order.withLock { $0 } == Array(0..<50))
            await pool.shutdown()
        }

        @Test func idleThreadsExitAfterTheKeepAlive() async throws {
            let threads = ThreadBaseline()  // leak checks count only this test's threads
            let pool = try BlockingPool(name: "spindle-idle", maxThreads: 8, keepAlive: .milliseconds(200))
            let start = Gate()
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<3 { group.addTask { try await pool.run { _ = start.wait() } } }
                try await eventually("3 threads run") { pool.metrics().jobsStarted == 3 }
                start.open()
                try await group.waitForAll()
            }
            #expect(pool.metrics().threadsAlive == 3)
            try await Task.sleep(for: .milliseconds(50))
            let early = pool.metrics()
            #expect(early.threadsAlive == 3 && early.threadsIdle == 3, "\(early)")
            try await eventually("idle threads exit", seconds: 5) { pool.metrics().threadsAlive == 0 }
            try await eventually("their OS threads are gone", seconds: 5) { threads.count(prefix: "spindle-idle") == 0 }
            // The pool starts threads again when work comes back.
            #expect(try await pool.run { 5 } == 5)
            #expect(pool.metrics().threadsAlive == 1)
            await pool.shutdown()
            #expect(threads.count(prefix: "spindle-idle") == 0)
        }

        @Test func aJobCancelledBeforeItStartsIsRemovedAndNeverRuns() async throws {
            let pool = try BlockingPool(name: "spindle-cnl", maxThreads: 1)
            let release = Gate()
            let ranSecond = Atomic<Bool>(false)
            let blocker = Task { try await pool.run { release.wait(); return 1 } }
            try await eventually("the blocker runs") { pool.metrics().jobsStarted == 1 }
            let queued = Task { try await pool.run { ranSecond.store(true, ordering: .relaxed); return 2 } }
            try await eventually("the second job is queued") { pool.metrics().jobsQueued == 1 }
            let cancelledAt = ContinuousClock.now
            queued.cancel()
            await #expect(throws: CancellationError.self) { try await queued.value }
            // Answered at once, while the only thread is still blocked.
            #expect(ContinuousClock.now - cancelledAt < .seconds(2))
            #expect(pool.metrics().jobsQueued == 0 && pool.metrics().jobsCancelled == 1)
            release.open()
            #expect(try await blocker.value == 1)
            let ranSecondValue = ranSecond.load(ordering: .relaxed)
            #expect(!ranSecondValue)
            await pool.shutdown()
        }

        @Test func aTaskAlreadyCancelledNeverStartsItsJob() async throws {
            let pool = try BlockingPool(name: "spindle-pre", maxThreads: 1)
            let ran = Atomic<Bool>(false)
            let task = Task {
                withUnsafeCurrentTask { $0?.cancel() }
                return try await pool.run { ran.store(true, ordering: .relaxed) }
            }
            await #expect(throws: CancellationError.self) { try await task.value }
            let ranValue = ran.load(ordering: .relaxed)
            #expect(!ranValue)
            #expect(pool.metrics().jobsStarted == 0)
            await pool.shutdown()
        }

        @Test func aJobCancelledWhileRunningFinishesAndItsResultIsDropped() async throws {
            let pool = try BlockingPool(name: "spindle-run", maxThreads: 1)
            let release = Gate()
            let finished = Atomic<Bool>(false)
            let returned = Atomic<Bool>(false)
            let task = Task {
                defer { returned.store(true, ordering: .releasing) }
                return try await pool.run {
                    release.wait()
                    finished.store(true, ordering: .releasing)
                    return 9
                }
            }
            try await eventually("the job runs") { pool.metrics().jobsStarted == 1 }
            task.cancel()
            // The awaiting task does not return while its closure still runs.
            try await Task.sleep(for: .milliseconds(100))
            let returnedEarly = returned.load(ordering: .acquiring)
            #expect(!returnedEarly)
            release.open()
            await #expect(throws: CancellationError.self) { try await task.value }
            let didFinish = finished.load(ordering: .acquiring)
            #expect(didFinish)
            #expect(pool.metrics().jobsCompleted == 1 && pool.metrics().jobsCancelled == 0)
            await pool.shutdown()
        }

        /// Cancellations racing with threads picking jobs up: every job is run or cancelled,
        /// exactly once, and every task gets an answer that matches.
        @Test func cancellationRacingWithPickupDecidesExactlyOnce() async throws {
            let pool = try BlockingPool(name: "spindle-race", maxThreads: 2)
            let runs = Lock([Int](repeating: 0, count: 2_000))
            let outcome = try await bounded(60, "2,000 racing cancellations") { () -> (ran: Int, cancelledUnrun: Int) in
                var ran = 0, cancelledUnrun = 0
                for round in 0..<20 {
                    let tasks = (0..<100).map { k in
                        let index = round * 100 + k
                        return Task {
                            try await pool.run {
                                runs.withLock { $0[index] += 1 }
                                if index % 7 == 0 { usleep(50) }  // let a queue form
                                return index
                            }
                        }
                    }
                    // Cancel every other task at varied moments: before it submits, while its
                    // job is queued, while it runs, after it ran.
                    for (k, task) in tasks.enumerated() where k % 2 == 0 {
                        if k % 8 == 0 { await Task.yield() }
                        if k % 16 == 0 { usleep(UInt32(round * 10)) }
                        task.cancel()
                    }
                    for (k, task) in tasks.enumerated() {
                        let index = round * 100 + k
                        do {
                            #expect(try await task.value == index)
                            ran += 1
                        } catch is CancellationError {
                            if runs.withLock({ $0[index] }) == 0 { cancelledUnrun += 1 }
                        } catch {
                            Issue.record("unexpected error \(error)")
                        }
                    }
                }
                return (ran, cancelledUnrun)
            }
            let counts = runs.withLock { $0 }
            let totalRuns = counts.reduce(0, +)
            #expect(counts.allSatisfy { $0 <= 1 }, "a job ran twice")
            #expect(outcome.ran >= 1_000)  // the uncancelled half always runs
            #expect(outcome.cancelledUnrun + totalRuns == 2_000)
            let metrics = pool.metrics()
            #expect(Int(metrics.jobsStarted) == totalRuns)
            #expect(Int(metrics.jobsCancelled) == outcome.cancelledUnrun)
            await pool.shutdown()
        }

        /// Threads retire after 1 ms idle and are restarted by the next burst: claims, keep-alive
        /// timeouts and thread starts race constantly. Every job must still run exactly once.
        @Test func burstsAgainstATinyKeepAliveLoseNoJob() async throws {
            let threads = ThreadBaseline()  // leak checks count only this test's threads
            let pool = try BlockingPool(name: "spindle-brst", maxThreads: 3, keepAlive: .milliseconds(1))
            let total = try await shuttingDown(pool) {
                try await bounded(60, "bursts with a 1 ms keep-alive") { try await runKeepAliveBurst(pool: pool, round: 0) }
            }
            #expect(total == keepAliveBurstTotal)
            let metrics = pool.metrics()
            #expect(metrics.threadsHighWater <= 3)
            #expect(metrics.jobsCompleted == UInt64(total))
            await pool.shutdown()
            #expect(threads.count(prefix: "spindle-brst") == 0)
        }

        /// Submissions racing with shutdown: every task gets an answer (a value, a cancellation,
        /// or shutDown), nothing hangs, and no thread is left.
        @Test func submissionsRacingWithShutdownAllGetAnAnswer() async throws {
            let threads = ThreadBaseline()  // leak checks count only this test's threads
            for round in 0..<20 {
                let pool = try BlockingPool(name: "spindle-shr", maxThreads: 2)
                let answered = try await bounded(30, "shutdown race round \(round)") { () -> Int in
                    try await withThrowingTaskGroup(of: Int.self) { group in
                        for i in 0..<200 {
                            group.addTask {
                                do {
                                    _ = try await pool.run { if i % 10 == 0 { usleep(100) } }
                                } catch is CancellationError {
                                } catch SpindleError.shutDown {
                                }
                                return 1
                            }
                        }
                        if round % 2 == 0 { await Task.yield() }
                        await pool.shutdown(gracePeriod: .seconds(5))
                        return try await group.reduce(0, +)
                    }
                }
                #expect(answered == 200)
                let metrics = pool.metrics()
                #expect(metrics.jobsStarted == metrics.jobsCompleted)
                #expect(metrics.threadsAlive == 0)
                #expect(threads.count(prefix: "spindle-shr") == 0, "round \(round)")
            }
        }

        @Test func shutdownWithAJobThatNeverReturnsEndsWithinTheGracePeriod() async throws {
            let threads = ThreadBaseline()  // leak checks count only this test's threads
            let pool = try BlockingPool(name: "spindle-stk", maxThreads: 1)
            let release = Gate()  // opened at the end, so the abandoned thread does not leak
            let stuck = Task { try await pool.run { release.wait(); return "late" } }
            try await eventually("the stuck job runs") { pool.metrics().jobsStarted == 1 }
            let queued = Task { try await pool.run { "never" } }
            try await eventually("a job is queued") { pool.metrics().jobsQueued == 1 }
            let start = ContinuousClock.now
            let report = await pool.shutdown(gracePeriod: .milliseconds(200))
            let took = ContinuousClock.now - start
            // Not before the grace period; after it, at once (a shutdown that waited for the
            // stuck job would never end: it is released only below). 2 s of slack for load.
            #expect(took >= .milliseconds(200) && took < .seconds(2), "shutdown took \(took)")
            #expect(report == BlockingPoolShutdownReport(cancelledJobs: 1, abandonedJobs: 1))
            #expect(pool.metrics().jobsAbandoned == 1)
            await #expect(throws: CancellationError.self) { try await queued.value }
            await #expect(throws: SpindleError.shutDown) { try await pool.run { 0 } }
            // A second shutdown returns the first one's report.
            #expect(await pool.shutdown(gracePeriod: .zero) == report)
            // The abandoned job still answers its task when it finally returns, and its thread exits.
            release.open()
            #expect(try await stuck.value == "late")
            try await eventually("the detached thread exits", seconds: 5) { threads.count(prefix: "spindle-stk") == 0 }
        }

        @Test func shutdownWaitsForRunningJobsWithinTheGracePeriod() async throws {
            let threads = ThreadBaseline()  // leak checks count only this test's threads
            let pool = try BlockingPool(name: "spindle-grc", maxThreads: 4)
            let started = Gate()
            let task = Task { try await pool.run { started.open(); usleep(100_000); return 3 } }
            started.wait()
            let report = pool.shutdownBlocking(gracePeriod: .seconds(5))
            #expect(report == BlockingPoolShutdownReport(cancelledJobs: 0, abandonedJobs: 0))
            #expect(try await task.value == 3)
            #expect(threads.count(prefix: "spindle-grc") == 0)
        }

        @Test func toThreadOnARuntimeUsesItsPoolAndResumesOnTheRuntime() async throws {
            let threads = ThreadBaseline()  // leak checks count only this test's threads
            let result = try await bounded(30, "toThread on a runtime") {
                try await Runtime.run(workers: 2) { () -> (Bool, Bool, UInt64) in
                    let runtime = Runtime.current!
                    var sameRuntime = true, onPoolThread = true
                    for i in 0..<200 {
                        let (value, name, poolRuntime) = try await toThread {
                            (i, currentThreadName(), Runtime.current)
                        }
                        sameRuntime = sameRuntime && value == i && Runtime.current === runtime && poolRuntime == nil
                        onPoolThread = onPoolThread && name.hasPrefix("spindle-blk-")
                    }
                    return (sameRuntime, onPoolThread, runtime.blockingPool.metrics().jobsCompleted)
                }
            }
            #expect(result.0, "a toThread caller resumed off its runtime")
            #expect(result.1, "a job ran off the runtime's pool threads")
            #expect(result.2 == 200)
            // Runtime.run shut the pool down with the runtime.
            #expect(threads.count(prefix: "spindle-blk") == 0)
        }

        @Test func toThreadOnAnEventLoopUsesItsPoolAndResumesOnTheLoop() async throws {
            let threads = ThreadBaseline()  // leak checks count only this test's threads
            let result = try await bounded(30, "toThread on a loop") {
                try await SpindleEventLoop.run { () -> (Bool, Bool, UInt64) in
                    let loop = SpindleEventLoop.current!
                    let loopThread = spindle_test_tid()
                    var onLoop = true, offLoop = true
                    for i in 0..<200 {
                        let (value, tid) = try await toThread { (i, spindle_test_tid()) }
                        onLoop = onLoop && value == i && loop.inEventLoop && spindle_test_tid() == loopThread
                        offLoop = offLoop && tid != loopThread
                    }
                    return (onLoop, offLoop, loop.blockingPool.metrics().jobsCompleted)
                }
            }
            #expect(result.0 && result.1)
            #expect(result.2 == 200)
            #expect(threads.count(prefix: "spindle-blk") == 0)
        }

        @Test func toThreadInsideRunBlockingLoop() throws {
            let threads = ThreadBaseline()  // leak checks count only this test's threads
            let caller = spindle_test_tid()
            let ok = try SpindleEventLoop.runBlocking { () async throws -> Bool in
                let tid = try await toThread { spindle_test_tid() }
                return tid != caller && spindle_test_tid() == caller
            }
            #expect(ok)
            #expect(threads.count(prefix: "spindle-blk") == 0)
        }

        @Test func toThreadFromAPlainTaskUsesTheSharedPool() async throws {
            let threads = ThreadBaseline()  // leak checks count only this test's threads
            let before = BlockingPool.shared.metrics().jobsCompleted
            let value = try await Task.detached { try await toThread { currentThreadName() } }.value
            #expect(value.hasPrefix("spindle-blk-"))
            #expect(BlockingPool.shared.metrics().jobsCompleted == before + 1)
            // Leave no spindle-* thread behind for the leak tests. (The thread may not be idle
            // yet when the task resumes: ask again until it is gone.)
            try await eventually("the shared pool's idle threads exit", seconds: 5) {
                BlockingPool.shared.releaseIdleThreads()
                return BlockingPool.shared.metrics().threadsAlive == 0 && threads.count(prefix: "spindle-blk") == 0
            }
        }

        @Test func runtimeShutdownReportsAnAbandonedBlockingJobWithoutHanging() async throws {
            let threads = ThreadBaseline()  // leak checks count only this test's threads
            let release = Gate()
            let runtime = try Runtime(workers: 1)
            let task = try runtime.spawn { try await toThread { release.wait(); return 1 } }
            try await eventually("the job runs") { runtime.blockingPool.metrics().jobsStarted == 1 }
            let start = ContinuousClock.now
            let report = await runtime.shutdown(gracePeriod: .milliseconds(200))
            let took = ContinuousClock.now - start
            // A grace period of 0.2 s; a shutdown that waited for the job would never end (it
            // is released only below). 5 s of slack for a loaded machine.
            #expect(took < .seconds(5), "runtime shutdown took \(took)")
            #expect(report.abandonedTasks == 1 && report.abandonedBlockingJobs == 1, "\(report)")
            #expect(runtime.blockingPool.isShutDown)
            release.open()
            // The task was cancelled while its job ran: the job's value is dropped.
            await #expect(throws: CancellationError.self) { try await task.value }
            try await eventually("the detached pool thread exits", seconds: 5) { threads.count(prefix: "spindle-blk") == 0 }
        }
    }
}

// MARK: Helpers

/// Runs `body`; if it throws (a failed or timed-out test), shuts `pool` down before passing the
/// error on, so that its threads cannot outlive the test and fail a later leak check.
func shuttingDown<T>(_ pool: BlockingPool, _ body: () async throws -> T) async throws -> T {
    do {
        return try await body()
    } catch {
        await pool.shutdown(gracePeriod: .seconds(1))
        throw error
    }
}

/// Spins until the calling thread has used `milliseconds` of CPU time (CPU-bound in any build).
func burnCPU(milliseconds: Int) {
    var spec = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &spec)
    let end = Int(spec.tv_sec) * 1_000_000_000 + spec.tv_nsec + milliseconds * 1_000_000
    repeat { clock_gettime(CLOCK_THREAD_CPUTIME_ID, &spec) } while Int(spec.tv_sec) * 1_000_000_000 + spec.tv_nsec < end
}

/// The calling thread's name.
func currentThreadName() -> String {
    guard let file = fopen("/proc/thread-self/comm", "r") else { return "" }
    defer { fclose(file) }
    var buffer = [CChar](repeating: 0, count: 64)
    fgets(&buffer, 64, file)
    return String(decoding: buffer.prefix { $0 != 0 && $0 != 10 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

/// A thread that counts the process's pool threads named `prefix*` every millisecond and keeps
/// the largest count seen.
final class ThreadSampler: Sendable {
    private let stopped = Atomic<Bool>(false)
    private let most = Atomic<Int>(0)
    private let done = Gate()

    init(prefix: String) {
        onForeignThread { [self] in
            while !stopped.load(ordering: .acquiring) {
                let seen = threadCount(prefix: prefix, poolThreadsOnly: true)
                if seen > most.load(ordering: .relaxed) { most.store(seen, ordering: .relaxed) }
                usleep(1_000)
            }
            done.open()
        }
    }

    /// Stops sampling; returns the most threads seen at once.
    func stop() -> Int {
        stopped.store(true, ordering: .releasing)
        done.wait()
        return most.load(ordering: .relaxed)
    }
}
