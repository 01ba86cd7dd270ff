import Glibc
import Synchronization
import Testing
@testable import Spindle

/// Bursts of tiny jobs from 8 submitters on 2 workers against a pool whose threads retire after
/// 1 ms, so that claims, keep-alive expiry, retirement and thread start race constantly. Returns
/// the sum of the jobs' results (each job returns 1). Rounds alternate `Task.sleep` (a helper
/// task through the runtime's `SchedulingExecutor`) and `Spindle.sleep` (a wheel entry); every
/// fourth round runs with a 1 ms blocked-worker threshold, so that the watch keeps handing a
/// preempted worker's queue and timers to the other.
func runKeepAliveBurst(pool: BlockingPool, round: Int) async throws -> Int {
    let runtime = try Runtime(workers: 2, blockedWorkerThreshold: round % 4 == 3 ? .milliseconds(1) : .milliseconds(100))
    do {
        let total = try await withTaskExecutorPreference(runtime) {
            try await withThrowingTaskGroup(of: Int.self) { group in
                for submitter in 0..<8 {
                    group.addTask {
                        var sum = 0
                        for burst in 0..<40 {
                            for _ in 0..<(burst % 5 + 1) { sum += try await pool.run { 1 } }
                            if (burst + submitter + round) % 3 == 0 {
                                if round % 2 == 0 {
                                    try await Task.sleep(for: .milliseconds(2))
                                } else {
                                    try await Spindle.sleep(for: .milliseconds(2))
                                }
                            }
                        }
                        return sum
                    }
                }
                return try await group.reduce(0, +)
            }
        }
        await runtime.shutdown(gracePeriod: .seconds(5))
        return total
    } catch {
        await runtime.shutdown(gracePeriod: .seconds(1))
        throw error
    }
}

let keepAliveBurstTotal = 8 * (0..<40).reduce(0) { $0 + $1 % 5 + 1 }

extension SpindleTests {
    /// The soak of the keep-alive burst race (issue: a fresh clone's suite once hung in it).
    /// `SPINDLE_BURST_SOAK=N swift test --filter BlockingPoolSoakTests` runs N rounds (each a
    /// fresh pool and runtime) with a thread spinning beside them, so that one of the two cores
    /// is kept busy, and reports the time; without it, 20 rounds and no spinner.
    @Suite struct BlockingPoolSoakTests {
        @Test func keepAliveBurstsLoseNoJobOverManyRounds() async throws {
            let soak = getenv("SPINDLE_BURST_SOAK").flatMap { Int(String(cString: $0)) }
            let rounds = soak ?? 20
            let stopHog = Gate()
            let hogDone = Gate()
            if soak != nil {
                onForeignThread {
                    while !stopHog.wait(deadline: 0) { burnCPU(milliseconds: 1) }
                    hogDone.open()
                }
            }
            defer {
                if soak != nil {
                    stopHog.open()
                    hogDone.wait()
                }
            }
            let started = ContinuousClock.now
            for round in 0..<rounds {
                let pool = try BlockingPool(name: "spindle-soak", maxThreads: 3, keepAlive: .milliseconds(1))
                try await shuttingDown(pool) {
                    let total = try await bounded(30, "keep-alive burst round \(round)") {
                        try await runKeepAliveBurst(pool: pool, round: round)
                    }
                    #expect(total == keepAliveBurstTotal, "round \(round)")
                    #expect(pool.metrics().jobsCompleted == UInt64(total), "round \(round)")
                    // With nothing to do, every thread retires within its 1 ms keep-alive (a
                    // thread that lost a retirement race once waited for a job without bound).
                    try await eventually("round \(round): every idle thread retires (\(pool.metrics()))", seconds: 10) {
                        pool.metrics().threadsAlive == 0
                    }
                }
                await pool.shutdown()
                if round % 100 == 99 {
                    print("burst soak: \(round + 1) rounds in \(ContinuousClock.now - started)")
                }
            }
            print("burst soak: \(rounds) rounds, 0 failures, \(ContinuousClock.now - started)")
        }
    }
}

extension SpindleTests.BlockingPoolSoakTests {
    /// Batches of tiny jobs against threads that go idle just as the next batch arrives: an idle
    /// thread that finds a job on its second look while a submitter has just claimed it waits
    /// for that claim's permit, and a thread going idle beside it can take the permit first.
    /// Each batch waits for all of its jobs before the next is submitted, so a job held by a
    /// thread that waits for a permit no one will post is never rescued by a later submission:
    /// the batch hangs (issue 11's fresh-clone hang). Before the fix three runs stalled after
    /// 10,560, 84,072 and 604,214 batches (about 17,000 batches a second here), so the default
    /// 20,000 catches it only sometimes: `SPINDLE_PERMIT_SOAK=2000000` (2 minutes) is the soak.
    /// A batch that makes no progress for 10 s fails the test.
    @Test func idleThreadsRacingForOnePermitStrandNoJob() async throws {
        let batches = getenv("SPINDLE_PERMIT_SOAK").flatMap { Int(String(cString: $0)) } ?? 20_000
        let pool = try BlockingPool(name: "spindle-perm", maxThreads: 3, keepAlive: .seconds(10))
        let progress = Atomic<Int>(0)
        let started = ContinuousClock.now
        let work = Task {
            for batch in 0..<batches {
                let total = try await withThrowingTaskGroup(of: Int.self) { group in
                    for _ in 0..<(batch % 3 + 2) { group.addTask { try await pool.run { 1 } } }
                    return try await group.reduce(0, +)
                }
                #expect(total == batch % 3 + 2, "batch \(batch)")
                progress.store(batch + 1, ordering: .relaxed)  // relaxed: only a progress report
            }
        }
        // A watchdog rather than `bounded`: a long soak is fine, a batch that stops is not.
        var seen = -1
        var since = ContinuousClock.now
        while progress.load(ordering: .relaxed) < batches {
            let now = progress.load(ordering: .relaxed)
            if now != seen {
                seen = now
                since = ContinuousClock.now
            } else if ContinuousClock.now - since > .seconds(10) {
                Issue.record("batch \(now) stalled for 10 s: \(pool.metrics())\nthreads:\n\(threadDump())")
                work.cancel()
                await pool.shutdown(gracePeriod: .seconds(1))  // wakes a thread stuck on a permit
                _ = await work.result
                return
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        try await work.value
        print("permit race: \(batches) batches, 0 failures, \(ContinuousClock.now - started)")
        await pool.shutdown()
    }
}
