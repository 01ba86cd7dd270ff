import Glibc
import Synchronization
import Testing
@testable import Spindle

actor LoopBoundCounter {
    var count = 0
    func bump() -> Int { count += 1; return count }
}

extension SpindleTests {
    @Suite struct EventLoopTests {
        @Test func runsEverythingOnItsOneThread() async throws {
            let result = try await SpindleEventLoop.run { () -> (Bool, Int) in
                let loop = SpindleEventLoop.current!
                let tid = spindle_test_tid()
                let sum = await withTaskGroup(of: (Int, Int32).self) { group in
                    for i in 0..<10_000 { group.addTask { (i, spindle_test_tid()) } }
                    var sum = 0
                    var sameThread = true
                    for await (i, t) in group { sum += i; sameThread = sameThread && t == tid }
                    return sameThread ? sum : -1
                }
                return (loop.inEventLoop && SpindleEventLoop.current === loop, sum)
            }
            #expect(result.0)
            #expect(result.1 == 10_000 * 9_999 / 2)
        }

        @Test func runBlockingTurnsTheCallingThreadIntoTheLoop() throws {
            let caller = spindle_test_tid()
            let onCaller = try SpindleEventLoop.runBlocking { () async -> Bool in
                try? await Task.sleep(for: .milliseconds(5))
                return spindle_test_tid() == caller && SpindleEventLoop.current != nil
            }
            #expect(onCaller)
            #expect(SpindleEventLoop.current == nil)
        }

        @Test func foreignResumesAndTimersWakeTheParkedLoop() async throws {
            let ok = try await SpindleEventLoop.run { () -> Bool in
                let loop = SpindleEventLoop.current!
                var all = true
                for _ in 0..<500 {
                    let v = await withCheckedContinuation { (c: CheckedContinuation<Int, Never>) in
                        onForeignThread { usleep(50); c.resume(returning: 1) }
                    }
                    all = all && v == 1 && loop.inEventLoop
                }
                let start = ContinuousClock.now
                try await Task.sleep(for: .milliseconds(25))
                return all && ContinuousClock.now - start >= .milliseconds(25)
            }
            #expect(ok)
        }

        /// A foreign thread's resumption (a `toThread` result, a continuation resumed elsewhere)
        /// runs within a few dozen jobs, not after the whole turn it arrived in: here a turn
        /// of 20,000 queued tasks.
        @Test func aForeignResumptionDoesNotWaitForALongTurn() async throws {
            let (doneWhenResumed, total) = try await SpindleEventLoop.run { () -> (Int, Int) in
                final class Progress: Sendable { let done = Atomic<Int>(0) }
                let progress = Progress()
                let total = 20_000
                return await withTaskGroup(of: Int?.self) { group in
                    group.addTask {
                        // Resumed from another thread once the long turn is under way.
                        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                            onForeignThread {
                                while progress.done.load(ordering: .relaxed) < 100 { usleep(10) }
                                c.resume()
                            }
                        }
                        return progress.done.load(ordering: .relaxed)
                    }
                    for _ in 0..<total {
                        group.addTask {
                            var x: UInt64 = 1  // ~1-2 µs of work each
                            for i in 0..<300 { x = x &* 6364136223846793005 &+ UInt64(i) }
                            if x == 0 { print(x) }
                            progress.done.add(1, ordering: .relaxed)
                            return nil
                        }
                    }
                    var resumedAt = 0
                    for await value in group { if let value { resumedAt = value } }
                    return (resumedAt, total)
                }
            }
            // Allowing for the foreign thread's own wake-up delay; the whole turn is 20,000.
            #expect(doneWhenResumed < total / 2, "resumed after \(doneWhenResumed) of \(total) tasks")
        }

        @Test func backsActorsAsASerialExecutor() async throws {
            actor Pinned {
                let loop: SpindleEventLoop
                nonisolated var unownedExecutor: UnownedSerialExecutor { loop.asUnownedSerialExecutor() }
                var hits = 0
                init(loop: SpindleEventLoop) { self.loop = loop }
                func hit() -> Bool {
                    hits += 1
                    return loop.inEventLoop
                }
            }
            let loop = try SpindleEventLoop()
            let actor = Pinned(loop: loop)
            let allOnLoop = await withTaskGroup(of: Bool.self) { group in
                for _ in 0..<1_000 { group.addTask { await actor.hit() } }
                return await group.allSatisfy { $0 }
            }
            #expect(allOnLoop)
            #expect(await actor.hits == 1_000)
            await loop.shutdown()
        }

        @Test func yieldingTasksShareTheLoopFairly() async throws {
            let interleaved = try await SpindleEventLoop.run { () -> Bool in
                final class Trace: Sendable { let log = Mutex<[Int]>([]) }
                let trace = Trace()
                await withTaskGroup(of: Void.self) { group in
                    for id in 0..<2 {
                        group.addTask {
                            for _ in 0..<5 {
                                trace.log.withLock { $0.append(id) }
                                await Task.yield()
                            }
                        }
                    }
                }
                let log = trace.log.withLock { $0 }
                // Neither task runs all five steps before the other starts.
                return log.prefix(5) != [0, 0, 0, 0, 0] && log.prefix(5) != [1, 1, 1, 1, 1]
            }
            #expect(interleaved)
        }

        @Test func shutdownCancelsSpawnedTasks() async throws {
            let loop = try SpindleEventLoop()
            let sleeper = try loop.spawn { () -> Bool in
                do { try await Task.sleep(for: .seconds(60)) } catch { return true }
                return false
            }
            try await Task.sleep(for: .milliseconds(10))
            let report = await loop.shutdown(gracePeriod: .seconds(2))
            #expect(report.abandonedTasks == 0)
            #expect(await sleeper.value)
            #expect(throws: SpindleError.shutDown) { try loop.spawn { 1 } }
        }
    }
}
