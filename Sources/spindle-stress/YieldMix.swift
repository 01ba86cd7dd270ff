// Yields: 8-64 tasks, task-group children, that each yield a random 200-2,000 times (every
// yield is one executor job, so this is the workload with the most jobs per second; the long
// runs use it). One round in eight is cancelled at a random point; a cancelled task stops
// yielding.
//
// Invariants: every task runs exactly once; a task that was not cancelled yielded exactly as
// often as planned, and the yields the round counts are the yields its tasks made.

enum YieldMix {
    static func run(_ round: Round) async {
        var rng = round.rng()
        let plans = (0..<rng.int(8...64)).map { _ in rng.int(200...2_000) }
        let ledger = Ledger(count: plans.count, round: round)
        round.phase("\(plans.count) tasks, \(plans.reduce(0, +)) yields")
        guard let root = round.spawn({ await yieldAll(plans, ledger, round) }) else { return }
        let cancelRequested = rng.oneIn(8)
        let canceller = cancelRequested ? round.cancelLater(root, &rng) : nil
        let yields = await root.value
        await canceller?.value
        let cancelled = cancelRequested || round.cycleEndsAbruptly
        ledger.expectAllRanOnce("\(plans.count) yielding tasks")
        if !cancelled && yields != plans.reduce(0, +) {
            round.fail("the tasks yielded \(yields) times, not the \(plans.reduce(0, +)) planned")
        }
        round.counters.add(units: plans.count, cancelled: cancelled ? 1 : 0, extra: UInt64(yields))
    }

    private static func yieldAll(_ plans: [Int], _ ledger: Ledger, _ round: Round) async -> Int {
        await withTaskGroup(of: Int.self) { group in
            for (index, planned) in plans.enumerated() {
                group.addTask {
                    var done = 0
                    while done < planned && !Task.isCancelled {
                        await Task.yield()
                        done += 1
                    }
                    if done != planned && !Task.isCancelled {
                        round.fail("task \(index) stopped after \(done) of \(planned) yields without being cancelled")
                    }
                    ledger.mark(index)
                    return done
                }
            }
            return await group.reduce(0, +)
        }
    }
}
