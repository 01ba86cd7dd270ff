import CSpindle
import Glibc
import Synchronization
import Testing
@testable import Spindle

/// The acceptor's state machine, without threads or sockets.
@Suite struct AcceptQueueTests {
    typealias Queue = AcceptQueue<String, Int>

    @Test func waitersAreServedFirstComeFirstServedAndOnlyTheFirstArms() {
        var queue = Queue(limit: 4)
        let a = queue.makeID(), b = queue.makeID()
        #expect(queue.take(id: a, waiter: "a", isCancelled: false) == .wait(arm: true))
        #expect(queue.take(id: b, waiter: "b", isCancelled: false) == .wait(arm: false))
        #expect(queue.didArm(7) == nil)
        let first = queue.complete(result: 10, hasMore: true)
        #expect(first.deliver?.waiter == "a" && first.deliver?.delivery == .connection(10))
        let second = queue.complete(result: 11, hasMore: true)
        #expect(second.deliver?.waiter == "b" && second.deliver?.delivery == .connection(11))
        let third = queue.complete(result: 12, hasMore: true)
        #expect(third.deliver == nil && queue.readyCount == 1, "nobody waits: kept for later")
    }

    @Test func aCancelledWaiterRemovesItselfAndNobodyElse() {
        var queue = Queue(limit: 4)
        let a = queue.makeID(), b = queue.makeID()
        _ = queue.take(id: a, waiter: "a", isCancelled: false)
        _ = queue.take(id: b, waiter: "b", isCancelled: false)
        #expect(queue.removeWaiter(a) == "a")
        #expect(queue.removeWaiter(a) == nil, "a second cancel finds nothing")
        #expect(queue.complete(result: 5, hasMore: true).deliver?.waiter == "b")
    }

    @Test func aTaskCancelledBeforeItRegistersDoesNotWaitButStillTakesAReadyConnection() {
        var queue = Queue(limit: 4)
        #expect(queue.take(id: queue.makeID(), waiter: "a", isCancelled: true) == .cancelled)
        #expect(queue.waiterCount == 0)
        _ = queue.take(id: queue.makeID(), waiter: "b", isCancelled: false)
        #expect(queue.didArm(1) == nil)
        _ = queue.complete(result: 3, hasMore: true)  // to b
        _ = queue.complete(result: 4, hasMore: true)  // kept
        #expect(queue.take(id: queue.makeID(), waiter: "c", isCancelled: true) == .connection(4, arm: false))
    }

    @Test func theLimitCancelsTheRequestAndHalfTheLimitArmsItAgain() {
        var queue = Queue(limit: 4)
        _ = queue.take(id: queue.makeID(), waiter: "a", isCancelled: false)
        #expect(queue.didArm(9) == nil)
        _ = queue.complete(result: 100, hasMore: true)  // to a
        for fd in Int32(101)...103 { #expect(queue.complete(result: fd, hasMore: true).cancel == nil) }
        #expect(queue.complete(result: 104, hasMore: true).cancel == 9, "the fourth untaken connection stops it")
        // Accepted before the cancel took effect: kept, and no second cancel.
        #expect(queue.complete(result: 105, hasMore: true).cancel == nil)
        #expect(queue.readyCount == 5)
        let end = queue.complete(result: -ECANCELED, hasMore: false)
        #expect(end.deliver == nil && end.retry.isEmpty, "the cancel's completion concerns nobody")
        var taken: [AcceptQueue<String, Int>.Take] = []
        for _ in 0..<4 { taken.append(queue.take(id: queue.makeID(), waiter: "c", isCancelled: false)) }
        #expect(taken == [
            .connection(101, arm: false), .connection(102, arm: false),
            .connection(103, arm: true), .connection(104, arm: false),
        ])
    }

    @Test func aRequestThatEndsWakesEveryOtherWaiterToArmANewOne() {
        var queue = Queue(limit: 4)
        for name in ["a", "b", "c"] { _ = queue.take(id: queue.makeID(), waiter: name, isCancelled: false) }
        #expect(queue.didArm(1) == nil)
        let end = queue.complete(result: -EMFILE, hasMore: false)
        #expect(end.deliver?.waiter == "a" && end.deliver?.delivery == .failure(EMFILE))
        #expect(end.retry == ["b", "c"])
        #expect(queue.take(id: queue.makeID(), waiter: "b", isCancelled: false) == .wait(arm: true))
    }
}
