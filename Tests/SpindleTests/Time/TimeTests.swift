import Glibc
import Synchronization
import Testing
@testable import Spindle

extension SpindleTests {
    @Suite struct TimeTests {
        /// Twenty sleeps with deadlines 5 ms apart, set in a scrambled order; each takes a
        /// ticket when it wakes. On one thread (one worker, the event loop) timers that fall
        /// due together still run in deadline order, so the order must be exact however late
        /// a loaded machine lets the thread run. On two workers the two wheels fire on their
        /// own and a thief may run a woken task a little later: there a sleep may overtake
        /// only one due less than 50 ms before it (a descheduled thread is late by a few
        /// milliseconds, rarely by tens), which still catches a wheel that fires out of order.
        @Test(arguments: Host.allCases)
        func timersFireInDeadlineOrderAndNeverEarly(host: Host) async throws {
            let tolerance = host == .twoWorkers ? 50 : 0
            // A run only counts if every sleeper was in its wheel before the first deadline
            // (a thread stalled while the sleepers start would make a later one return at
            // once); a loaded machine gets a few tries.
            for attempt in 1...5 {
                let (wakes, early, startedLate) = try await host.run { () -> ([(delay: Int, ticket: Int)], Int, Bool) in
                    let base = ContinuousClock.now + .milliseconds(20)
                    let delays = (1...20).map { ($0 * 37) % 20 + 1 }.map { $0 * 5 }
                    final class Tickets: Sendable {
                        let next = Atomic<Int>(0)
                        let late = Atomic<Bool>(false)
                    }
                    let tickets = Tickets()
                    return await withTaskGroup(of: (Int, Int, Bool).self) { group in
                        for delay in delays {
                            group.addTask {
                                let deadline = base + .milliseconds(delay)
                                if ContinuousClock.now >= base { tickets.late.store(true, ordering: .relaxed) }
                                try? await Spindle.sleep(until: deadline)
                                let woke = ContinuousClock.now
                                return (delay, tickets.next.add(1, ordering: .relaxed).oldValue, woke < deadline)
                            }
                        }
                        var wakes: [(delay: Int, ticket: Int)] = []
                        var early = 0
                        for await (delay, ticket, wasEarly) in group {
                            wakes.append((delay, ticket))
                            if wasEarly { early += 1 }
                        }
                        return (wakes, early, tickets.late.load(ordering: .relaxed))
                    }
                }
                #expect(early == 0)
                #expect(wakes.count == 20)
                if startedLate && attempt < 5 { continue }
                #expect(!startedLate, "the sleepers did not all start within 20 ms in 5 tries")
                let order = wakes.sorted { $0.ticket < $1.ticket }.map(\.delay)
                var latest = 0
                var overtaken: [String] = []
                for delay in order {
                    if latest - delay > tolerance { overtaken.append("\(delay) ms after \(latest) ms") }
                    latest = max(latest, delay)
                }
                #expect(overtaken.isEmpty, "woke out of order: \(order) (\(overtaken))")
                return
            }
        }

        @Test(arguments: Host.allCases)
        func tenThousandTimersCancelledHalfwayEndPromptly(host: Host) async throws {
            let (cancelled, completed, elapsed) = try await host.run { () -> (Int, Int, Duration) in
                let start = ContinuousClock.now
                // Half sleep 10 s and are cancelled after 50 ms; half sleep 100 ms.
                // Unstructured tasks on the same runtime, so that they can be cancelled one by one.
                let executor: any TaskExecutor = Runtime.current ?? SpindleEventLoop.current!
                let long = (0..<5_000).map { _ in
                    Task(executorPreference: executor) { () -> Bool in
                        (try? await Spindle.sleep(for: .seconds(10))) != nil
                    }
                }
                let results = await withTaskGroup(of: Bool.self) { group in
                    for _ in 0..<5_000 {
                        group.addTask { (try? await Spindle.sleep(for: .milliseconds(100))) != nil }
                    }
                    try? await Spindle.sleep(for: .milliseconds(50))
                    for task in long { task.cancel() }
                    var results: [Bool] = []
                    for task in long { results.append(await task.value) }
                    for await result in group { results.append(result) }
                    return results
                }
                return (results.filter { !$0 }.count, results.filter { $0 }.count, ContinuousClock.now - start)
            }
            #expect(cancelled == 5_000)
            #expect(completed == 5_000)
            // The cancelled 10 s sleeps did not hold anything up: all was over soon after 100 ms.
            #expect(elapsed < .seconds(5), "took \(elapsed)")
        }

        /// Swift 6.3 sends a `Task.sleep` wake-up through Dispatch unless the executor runs the
        /// sleep's helper job in the generic context (DueTimerJob.swift); through Dispatch, each
        /// wake-up would reach the runtime as a job from a foreign thread.
        @Test(arguments: [1, 2])
        func sleepWakeUpsStayOnTheWorkers(workers: Int) async throws {
            let runtime = try Runtime(workers: workers)
            defer { _ = runtime.shutdownBlocking() }
            let before = runtime.metrics()
            let woken = try await bounded(30, "2,000 sleeps") {
                try await runtime.spawn { () -> Int in
                    await withTaskGroup(of: Bool.self) { group in
                        for index in 0..<2_000 {
                            group.addTask {
                                (try? await Task.sleep(for: .milliseconds(1 + index % 20))) != nil
                            }
                        }
                        return await group.reduce(0) { $0 + ($1 ? 1 : 0) }
                    }
                }.value
            }
            let after = runtime.metrics()
            #expect(woken == 2_000)
            let fired = zip(after.workers, before.workers).reduce(0) { $0 + $1.0.timersFired - $1.1.timersFired }
            #expect(fired >= 2_000)
            // The spawn itself and its result are the only foreign jobs expected; allow a few.
            #expect(after.remoteEnqueues - before.remoteEnqueues < 20,
                    "\(after.remoteEnqueues - before.remoteEnqueues) jobs came from other threads")
        }

        @Test(arguments: Host.allCases)
        func withTimeoutReturnsTheValueInTimeAndThrowsAfter(host: Host) async throws {
            let (fast, slowTimedOut) = try await host.run { () -> (Int, Bool) in
                let fast = try await withTimeout(.seconds(5)) { 7 }
                do {
                    _ = try await withTimeout(.milliseconds(20)) {
                        try await Spindle.sleep(for: .seconds(10))
                        return 0
                    }
                    return (fast, false)
                } catch is TimeoutError {
                    return (fast, true)
                }
            }
            #expect(fast == 7)
            #expect(slowTimedOut)
        }

        /// The edges of `withTimeout`: an operation that ignores cancellation and returns after
        /// the deadline keeps its value; a cancelled caller gets the operation's
        /// `CancellationError`, promptly, not a `TimeoutError` 10 s later.
        @Test(arguments: Host.allCases)
        func withTimeoutKeepsALateValueAndPassesOnTheCallersCancellation(host: Host) async throws {
            let (late, cancelledWith, elapsed) = try await host.run { () -> (Int, String, Duration) in
                let late = try await withTimeout(.milliseconds(5)) { () -> Int in
                    let end = ContinuousClock.now + .milliseconds(30)
                    while ContinuousClock.now < end { await Task.yield() }  // ignores cancellation
                    return 42
                }
                let start = ContinuousClock.now
                let executor: any TaskExecutor = Runtime.current ?? SpindleEventLoop.current!
                let waiting = Atomic<Bool>(false)
                let caller = Task(executorPreference: executor) { () -> String in
                    do {
                        _ = try await withTimeout(.seconds(10)) {
                            waiting.store(true, ordering: .releasing)
                            try await Spindle.sleep(for: .seconds(10))
                        }
                        return "returned"
                    } catch is TimeoutError {
                        return "TimeoutError"
                    } catch is CancellationError {
                        return "CancellationError"
                    } catch {
                        return "\(error)"
                    }
                }
                try await eventually("the caller waits in withTimeout") { waiting.load(ordering: .acquiring) }
                caller.cancel()
                return (late, await caller.value, ContinuousClock.now - start)
            }
            #expect(late == 42)
            #expect(cancelledWith == "CancellationError")
            #expect(elapsed < .seconds(5), "took \(elapsed)")
        }

        /// `withTimeout` around fast operations cancels its timer each time; the cancelled
        /// sleeps must not stay in the wheel until their deadline (with `Task.sleep` each one
        /// kept a helper task there for the full 30 s).
        @Test(arguments: Host.allCases)
        func cancelledTimeoutsDoNotPileUpInTheWheel(host: Host) async throws {
            let calls = 20_000
            let (sum, pending) = try await host.run { () -> (Int, UInt64) in
                var sum = 0
                for i in 0..<calls { sum += try await withTimeout(.seconds(30)) { i } }
                let pending: UInt64
                if let runtime = Runtime.current {
                    pending = runtime.metrics().workers.reduce(0) { $0 + $1.timersPending }
                } else {
                    pending = SpindleEventLoop.current!.metrics().timersPending
                }
                return (sum, pending)
            }
            #expect(sum == calls * (calls - 1) / 2)
            // Each wheel sweeps when it reaches twice what its last sweep left (at least
            // TimerWheel.sweepThreshold): a few thousand at most, not 20,000.
            #expect(pending <= UInt64(4 * TimerWheel.sweepThreshold), "\(pending) timers still pending")
        }

        /// `Spindle.sleep` runs on its caller's executor (nonisolated(nonsending)): an actor
        /// that sleeps on a Spindle thread uses that thread's wheel and is back on the actor
        /// afterwards; an actor elsewhere gets `Task.sleep`.
        @Test(arguments: Host.allCases)
        func anActorThatSleepsIsBackOnTheActorAfterwards(host: Host) async throws {
            actor Sleeper {
                var wakes = 0
                func nap() async throws -> Bool {
                    try await Spindle.sleep(for: .milliseconds(2))
                    self.preconditionIsolated("back on the actor after Spindle.sleep")
                    wakes += 1
                    return true
                }
            }
            let (onSpindle, fired) = try await host.run { () -> (Int, UInt64) in
                let sleeper = Sleeper()
                func timersFired() -> UInt64 {
                    if let runtime = Runtime.current { return runtime.metrics().workers.reduce(0) { $0 + $1.timersFired } }
                    return SpindleEventLoop.current!.metrics().timersFired
                }
                let before = timersFired()
                let naps = await withTaskGroup(of: Bool.self) { group in
                    for _ in 0..<50 { group.addTask { (try? await sleeper.nap()) ?? false } }
                    return await group.reduce(0) { $0 + ($1 ? 1 : 0) }
                }
                return (naps, timersFired() - before)
            }
            #expect(onSpindle == 50)
            #expect(fired >= 50, "the sleeps did not use the Spindle wheel: \(fired) timers fired")
            // Off Spindle: the same actor code, through `Task.sleep`.
            let offSpindle = Sleeper()
            #expect(try await offSpindle.nap())
        }

        /// A `Spindle.sleep` still pending when its runtime shuts down keeps its deadline: it
        /// ends on Swift's global executor, not early and not never.
        @Test func aSleepPendingAtShutdownEndsAtItsDeadlineElsewhere() async throws {
            let runtime = try Runtime(workers: 1)
            let started = Atomic(false)
            let sleeper = Task(executorPreference: runtime) { () -> (Duration, Bool) in
                let start = ContinuousClock.now
                started.store(true, ordering: .releasing)
                let completed = (try? await Spindle.sleep(for: .milliseconds(200))) != nil
                return (ContinuousClock.now - start, completed)
            }
            try await eventually("the sleeper started") { started.load(ordering: .acquiring) }
            try await eventually("the sleep is in the worker's wheel") { runtime.metrics().workers[0].timersPending >= 1 }
            await runtime.shutdown()
            let (slept, completed) = try await bounded(10, "sleep across shutdown") { await sleeper.value }
            #expect(completed)
            #expect(slept >= .milliseconds(200))
        }

        @Test func connectWithATimeoutToAnUnroutableBacklogFailsWithETIMEDOUT() async throws {
            // A listener with a full backlog that never accepts makes further connects hang in
            // SYN-SENT (the kernel drops the SYNs), so the timeout decides.
            let error = try await Host.twoWorkers.run { () -> SpindleIOError? in
                let listener = try TCPListener.bind(host: "127.0.0.1", port: 0, backlog: 0)
                defer { listener.close() }
                let port = try listener.localAddress.port
                var held: [TCPStream] = []
                defer { held.forEach { $0.close() } }
                for _ in 0..<8 {
                    do {
                        held.append(try await TCPStream.connect(host: "127.0.0.1", port: port, timeout: .milliseconds(200)))
                    } catch let error as SpindleIOError {
                        return error
                    }
                }
                return nil
            }
            #expect(error?.errno == ETIMEDOUT, "got \(String(describing: error))")
            #expect(error?.operation == .connect)
        }
    }
}
