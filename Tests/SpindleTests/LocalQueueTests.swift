import Glibc
import Synchronization
import Testing
@testable import Spindle

@Suite struct LocalQueueTests {
    @Test func popsInPushOrder() {
        let queue = LocalQueue()
        for i in 0..<100 { _ = queue.tryPush(token(i)) }
        #expect(queue.count == 100)
        for i in 0..<100 { #expect(queue.pop().map(tokenIndex) == i) }
        #expect(queue.pop() == nil)
    }

    @Test func pushRefusesWhenFullAndKeepsContentsInOrder() {
        let queue = LocalQueue()
        let capacity = Int(LocalQueue.capacity)
        for i in 0..<capacity { #expect(queue.tryPush(token(i))) }
        #expect(!queue.tryPush(token(capacity)))
        for i in 0..<capacity { #expect(queue.pop().map(tokenIndex) == i) }
        #expect(queue.pop() == nil)
    }

    @Test func stealTakesOldestHalfRoundedUp() {
        let victim = LocalQueue()
        let thief = LocalQueue()
        for i in 0..<9 { _ = victim.tryPush(token(i)) }
        var stolen = 0
        let first = victim.steal(into: thief, stolen: &stolen)
        #expect(stolen == 5)
        // Jobs 0...3 land in the thief's queue, job 4 is returned to run now.
        #expect(first.map(tokenIndex) == 4)
        #expect((0..<4).map { _ in thief.pop().map(tokenIndex) } == [0, 1, 2, 3])
        #expect((5..<9).map { _ in victim.pop().map(tokenIndex) } == [5, 6, 7, 8])
    }

    @Test func stealRefusesWhenThiefHasPlentyAndFromEmptyVictim() {
        let victim = LocalQueue()
        let thief = LocalQueue()
        var stolen = 0
        #expect(victim.steal(into: thief, stolen: &stolen) == nil)
        for i in 0..<10 { _ = victim.tryPush(token(i)) }
        for i in 0..<200 { _ = thief.tryPush(token(1000 + i)) }
        #expect(victim.steal(into: thief, stolen: &stolen) == nil)
        #expect(victim.count == 10)
    }

    @Test func batchPushFromInjectorKeepsOrder() {
        let queue = LocalQueue()
        let injector = Injector()
        injector.push(count: 10) { token($0) }
        let first = injector.popBatch(max: 6) { next in _ = queue.pushBatch(max: 5, next) }
        #expect(first.map(tokenIndex) == 0)
        #expect((1...5).map { _ in queue.pop().map(tokenIndex) } == [1, 2, 3, 4, 5])
        #expect(injector.count == 4)
    }

    /// The owner pushes and pops while thieves on other threads steal; a full queue moves its
    /// oldest half to the injector (`pushOverflow`, racing the thieves' claims on the same
    /// head) or, when a thief is mid-steal, the job goes to the injector alone, as the worker
    /// does. Every job must come out exactly once.
    @Test func ownerAndThievesRaceAndEveryJobRunsExactlyOnce() async throws {
        let total = 400_000
        let seen = UnsafeMutablePointer<Atomic<UInt8>>.allocate(capacity: total)
        for i in 0..<total { (seen + i).initialize(to: Atomic(0)) }
        defer { seen.deallocate() }
        let owner = LocalQueue()
        let injector = Injector()
        let done = Atomic<Bool>(false)
        let taken = Atomic<Int>(0)
        final class Shared: @unchecked Sendable {
            // @unchecked Sendable: the queue and injector are thread-safe; `seen` is atomics.
            let owner: LocalQueue; let injector: Injector; let seen: UnsafeMutablePointer<Atomic<UInt8>>
            init(_ o: LocalQueue, _ i: Injector, _ s: UnsafeMutablePointer<Atomic<UInt8>>) { owner = o; injector = i; seen = s }
        }
        let shared = Shared(owner, injector, seen)
        @Sendable func mark(_ job: UnownedJob) {
            shared.seen[tokenIndex(job)].add(1, ordering: .relaxed)
            taken.add(1, ordering: .relaxed)
        }
        let thieves = 2
        let finished = Atomic<Int>(0)
        for thief in 0..<thieves {
            onForeignThread {
                let mine = LocalQueue()
                var rng = SplitMix(seed: UInt64(thief))
                while !done.load(ordering: .acquiring) || !shared.owner.isEmpty {
                    var stolen = 0
                    if let job = shared.owner.steal(into: mine, stolen: &stolen) {
                        mark(job)
                        while let more = mine.pop() { mark(more) }
                    }
                    // Now and then leave the owner alone long enough to fill its queue.
                    if rng.next() % 64 == 0 { usleep(50) }
                }
                finished.add(1, ordering: .releasing)
            }
        }
        var overflowsWon = 0, overflowsLost = 0
        for i in 0..<total {
            let job = token(i)
            if !owner.tryPush(job) {
                if owner.pushOverflow(job, to: injector) {
                    overflowsWon += 1
                } else {
                    overflowsLost += 1  // a thief holds the head: the job goes on its own
                    if !owner.tryPush(job) { injector.push(job) }
                }
            }
            // Pop in some stretches only, so that the queue fills in the others.
            if (i / 4_096) % 2 == 0, i % 3 == 0, let popped = owner.pop() { mark(popped) }
            // The owner takes from the injector too, as a worker does.
            if i % 1_024 == 0, let fromInjector = injector.pop() { mark(fromInjector) }
        }
        while let job = owner.pop() { mark(job) }
        done.store(true, ordering: .releasing)
        while finished.load(ordering: .acquiring) < thieves { usleep(1_000) }
        while let job = injector.pop() { mark(job) }
        #expect(overflowsWon > 0, "pushOverflow never moved half the queue (\(overflowsLost) lost to thieves)")
        #expect(taken.load(ordering: .relaxed) == total)
        var duplicates = 0, missing = 0
        for i in 0..<total {
            switch seen[i].load(ordering: .relaxed) {
            case 1: break
            case 0: missing += 1
            default: duplicates += 1
            }
        }
        #expect(duplicates == 0)
        #expect(missing == 0)
    }
}

@Suite struct TimerWheelTests {
    static let ms: UInt64 = 1_000_000

    @Test func firesByTickThenArrivalOrderAndNeverEarly() {
        var wheel = TimerWheel(clock: { 0 })
        let deadlines: [UInt64] = [50, 10, 30, 10, 40, 20, 30].map { $0 * Self.ms }
        for (i, deadline) in deadlines.enumerated() { wheel.insert(.job(token(i)), deadline: deadline) }
        let count = wheel.count, next = wheel.nextDeadline
        #expect(count == 7)
        #expect(next == 10 * Self.ms)
        let step1 = wheel.popDue(now: 10 * Self.ms - 1)
        #expect(step1 == nil)
        var order: [Int] = []
        while let job = wheel.popDue(now: 100 * Self.ms) { order.append(tokenIndex(job.job)) }
        #expect(order == [1, 3, 5, 2, 6, 4, 0])
        let empty = wheel.isEmpty, none = wheel.nextDeadline
        #expect(empty)
        #expect(none == .max)
    }

    @Test func aDeadlineInsideATickWaitsForTheTickToEnd() {
        var wheel = TimerWheel(clock: { 0 })
        wheel.insert(.job(token(0)), deadline: 5 * Self.ms + 1)
        let step2 = wheel.popDue(now: 5 * Self.ms + 1)
        #expect(step2 == nil, "rounded up to the next tick")
        let step3 = wheel.popDue(now: 6 * Self.ms)
        #expect(step3.map { tokenIndex($0.job) } == 0)
    }

    @Test func cascadesFromEveryLevelInDeadlineOrder() {
        // Deadlines spread over all six levels (1 ms up to more than a year), inserted shuffled,
        // expired by stepping time forward in uneven strides.
        var deadlines: [UInt64] = []
        var value: UInt64 = 1
        for _ in 0..<400 {
            value = value &* 6364136223846793005 &+ 1442695040888963407
            let magnitude = (value >> 60) % 36  // 2^0 .. 2^35 ms
            deadlines.append(((value >> 20) % (1 << magnitude) + 1) * Self.ms)
        }
        var wheel = TimerWheel(clock: { 0 })
        for (i, deadline) in deadlines.enumerated() { wheel.insert(.job(token(i)), deadline: deadline) }
        var fired: [(index: Int, at: UInt64)] = []
        var now: UInt64 = 0
        var stride: UInt64 = 1
        while !wheel.isEmpty {
            now += stride * Self.ms
            stride = stride * 3 % 1_000_003 + 1
            while let job = wheel.popDue(now: now) { fired.append((tokenIndex(job.job), now)) }
        }
        #expect(fired.count == deadlines.count)
        #expect(fired.allSatisfy { deadlines[$0.index] <= $0.at }, "a timer fired early")
        let firedDeadlines = fired.map { deadlines[$0.index] }
        #expect(firedDeadlines == firedDeadlines.sorted(), "fired out of deadline order")
    }

    @Test func insertionsWhileRunningAndRemoveAll() {
        var wheel = TimerWheel(clock: { 0 })
        wheel.insert(.job(token(0)), deadline: 100 * Self.ms)
        let step4 = wheel.popDue(now: 70 * Self.ms)
        #expect(step4 == nil)
        wheel.insert(.job(token(1)), deadline: 80 * Self.ms)   // after time has advanced
        wheel.insert(.job(token(2)), deadline: 60 * Self.ms)   // already past: due at once
        let step5 = wheel.popDue(now: 70 * Self.ms)
        #expect(step5.map { tokenIndex($0.job) } == 2)
        let step6 = wheel.popDue(now: 90 * Self.ms)
        #expect(step6.map { tokenIndex($0.job) } == 1)
        wheel.insert(.job(token(3)), deadline: .max - 1)       // beyond the wheel's span
        let all = wheel.removeAll()
        #expect(Set(all.map { tokenIndex($0.action.job) }) == [0, 3])
        let empty = wheel.isEmpty
        #expect(empty)
    }

    @Test func cancelledSleepsAreSweptAndTheLiveOnesStillFire() {
        var wheel = TimerWheel(clock: { 0 })
        var live: Set<ObjectIdentifier> = []
        var keep: [SleepWaiter] = []
        for i in 0..<10_000 {
            let waiter = SleepWaiter()
            keep.append(waiter)
            if i % 4 == 0 { live.insert(ObjectIdentifier(waiter)) } else { waiter.cancel() }
            wheel.insert(.wake(Unmanaged.passRetained(waiter)), deadline: UInt64(i % 500 + 1) * Self.ms)
        }
        // 2,500 live entries: without sweeps the wheel would hold all 10,000; a sweep runs
        // whenever the count reaches twice what the last sweep left.
        let count = wheel.count
        #expect(count >= live.count)
        #expect(count <= 2 * live.count + 1, "\(count) entries for \(live.count) live sleeps")
        var fired: Set<ObjectIdentifier> = []
        while let action = wheel.popDue(now: 1_000 * Self.ms) {
            guard case .wake(let waiter) = action else { continue }
            fired.insert(ObjectIdentifier(waiter.takeUnretainedValue()))
            action.discard()
        }
        // Every reference the wheel held was given back: only `keep` holds the waiters now.
        var unique = true
        for i in keep.indices { unique = unique && isKnownUniquelyReferenced(&keep[i]) }
        #expect(unique, "the wheel kept or over-released a waiter")
        #expect(live.isSubset(of: fired), "a live sleep was dropped")
        let empty = wheel.isEmpty
        #expect(empty)
    }

    @Test func anIdleWheelWhoseSleepsWereCancelledSweepsThemAndRemoveAllSkipsThem() {
        var wheel = TimerWheel(clock: { 0 })
        var waiters: [SleepWaiter] = []
        for _ in 0..<5_000 {
            let waiter = SleepWaiter()
            waiters.append(waiter)
            wheel.insert(.wake(Unmanaged.passRetained(waiter)), deadline: 60_000 * Self.ms)
        }
        for waiter in waiters { waiter.cancel() }  // all cancelled, no more insertions
        let before = wheel.count
        #expect(before == 5_000)
        wheel.sweepIfStale(now: 2_000 * Self.ms)
        let after = wheel.count
        #expect(after == 0, "an idle owner's sweep frees cancelled entries")

        var pair = [SleepWaiter(), SleepWaiter()]  // live, then cancelled
        pair[1].cancel()
        wheel.insert(.wake(Unmanaged.passRetained(pair[0])), deadline: 10 * Self.ms)
        wheel.insert(.wake(Unmanaged.passRetained(pair[1])), deadline: 20 * Self.ms)
        let all = wheel.removeAll()
        #expect(all.count == 1)
        for timer in all { timer.action.discard() }
        var unique = true
        for i in waiters.indices { unique = unique && isKnownUniquelyReferenced(&waiters[i]) }
        for i in pair.indices { unique = unique && isKnownUniquelyReferenced(&pair[i]) }
        #expect(unique, "the wheel kept or over-released a waiter")
    }
}

@Suite struct IdleTests {
    /// A worker woken to recompute its timer must count as a searcher, so that its later
    /// `stopSearching` balances (the searching count must never wrap).
    @Test func wakingAnySleeperKeepsTheSearchingCountBalanced() {
        let idle = Idle(workerCount: 2)
        #expect(idle.workerWillPark(1, isSearching: false) == false)
        #expect(idle.anySleeper() == 1)
        #expect(idle.workerDidUnpark(1))  // woken on purpose: it now searches
        #expect(idle.searchingCount == 1)
        _ = idle.stopSearching()
        #expect(idle.searchingCount == 0)
        #expect(idle.unparkedCount == 2)
        // The wake-up rule still works afterwards.
        #expect(idle.workerWillPark(0, isSearching: false) == false)
        #expect(idle.workerToNotify() == 0)
    }

    @Test func notifyWakesOnlyWhenNobodySearches() {
        let idle = Idle(workerCount: 3)
        _ = idle.workerWillPark(2, isSearching: false)
        #expect(idle.tryStartSearching())
        #expect(idle.workerToNotify() == nil)  // a searcher will find the work
        #expect(idle.stopSearching())          // last searcher
        #expect(idle.workerToNotify() == 2)
        #expect(idle.workerToNotify() == nil)  // the woken worker searches now
    }
}

@Suite struct InjectorTests {
    @Test func pushFrontPutsOlderJobsFirstInOrder() {
        let injector = Injector()
        injector.push(count: 3) { token(10 + $0) }
        injector.pushFront((0..<5).map(token))
        var order: [Int] = []
        while let job = injector.pop() { order.append(tokenIndex(job)) }
        #expect(order == [0, 1, 2, 3, 4, 10, 11, 12])
    }

    @Test func growsPastItsInitialCapacityFromBothEnds() {
        let injector = Injector()
        injector.push(count: 1500) { token(2000 + $0) }
        injector.pushFront((0..<1500).map(token))
        var expected = 0
        var ok = true
        while let job = injector.pop() {
            let index = tokenIndex(job)
            let want = expected < 1500 ? expected : 2000 + expected - 1500
            ok = ok && index == want
            expected += 1
        }
        #expect(ok)
        #expect(expected == 3000)
    }
}
