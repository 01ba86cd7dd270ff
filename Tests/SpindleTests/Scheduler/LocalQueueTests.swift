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
