import Glibc
import Synchronization
import Testing
@testable import Spindle

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
