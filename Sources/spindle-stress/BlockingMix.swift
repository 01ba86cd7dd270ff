// Blocking-pool bursts: 4-64 spawned tasks at once each hand one job to a thread, half through
// `toThread` (the host's pool) and half through `runInExecutor` on a pool made for the round
// with 1-4 threads and a keep-alive of 0.2-5 ms, so threads expire, are claimed and start
// while jobs arrive (the race of issue 11's fresh-clone failure). A job sleeps 0-300 µs or
// returns at once. A quarter of the tasks are cancelled at a random point.
//
// Invariants: no job runs twice; a task whose call returned got its own job's value and that
// job ran exactly once; a call throws only `CancellationError`, and only in a cancelled task
// (a job cancelled before it started never runs; one that had started ran once); and the
// round's pool shuts down with nothing abandoned. The cycle's thread check then proves the
// pool's threads exited.

import Glibc
import Spindle

enum BlockingMix {
    struct Job: Sendable {
        let micros: Int
        let onRoundPool: Bool
        let cancelled: Bool
    }

    static func run(_ round: Round) async {
        var rng = round.rng()
        let jobs = (0..<rng.int(4...64)).map { _ in
            Job(micros: rng.oneIn(2) ? rng.int(0...300) : 0, onRoundPool: rng.oneIn(2), cancelled: rng.oneIn(4))
        }
        let threads = rng.int(1...4)
        let keepAlive = Duration.microseconds(rng.int(200...5_000))
        let pool: BlockingPool
        do {
            pool = try BlockingPool(name: "s\(round.cycle.number % 100_000)xq", maxThreads: threads, keepAlive: keepAlive)
        } catch {
            round.fail("cannot make a pool of \(threads) threads: \(error)")
        }
        let ledger = Ledger(count: jobs.count, round: round)
        round.phase("\(jobs.count) jobs, round pool of \(threads) threads, keep-alive \(keepAlive)")
        var tasks: [Task<Void, Never>] = []
        var cancellers: [Task<Void, Never>] = []
        for (index, job) in jobs.enumerated() {
            guard let task = round.spawn({ await submit(index, job, pool, ledger, round) }) else { break }
            tasks.append(task)
            if job.cancelled, let canceller = round.cancelLater(task, &rng) { cancellers.append(canceller) }
        }
        for task in tasks { await task.value }
        for canceller in cancellers { await canceller.value }
        round.phase("shutting the round's pool down")
        let report = await pool.shutdown(gracePeriod: .seconds(10))
        if report.abandonedJobs != 0 || report.cancelledJobs != 0 {
            round.fail("the round's pool, idle, shut down with \(report)")
        }
        round.counters.add(units: tasks.count, cancelled: jobs.filter(\.cancelled).count)
    }

    private static func submit(_ index: Int, _ job: Job, _ pool: BlockingPool, _ ledger: Ledger, _ round: Round) async {
        let body: @Sendable () -> Int = {
            ledger.mark(index)
            if job.micros > 0 { usleep(UInt32(job.micros)) }
            return index
        }
        do {
            let value = job.onRoundPool ? try await runInExecutor(pool, body) : try await toThread(body)
            if value != index { round.fail("job \(index) returned job \(value)'s value") }
            if ledger.runs(index) != 1 { round.fail("job \(index) returned but ran \(ledger.runs(index)) times") }
        } catch is CancellationError where job.cancelled || round.cycleEndsAbruptly {
            return
        } catch let error as SpindleError where error == .shutDown && round.cycleEndsAbruptly && !job.onRoundPool {
            return  // the host's pool closed under the cycle's shutdown
        } catch {
            round.fail("job \(index) (\(job.onRoundPool ? "runInExecutor" : "toThread")) threw \(error)"
                + (job.cancelled ? "" : " in a task nobody cancelled"))
        }
    }
}
