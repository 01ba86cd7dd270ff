import Glibc
import Synchronization
import Testing
@testable import Spindle

extension SpindleTests {
    /// `SpindleEventLoop(clock: .virtual)`: time stands still while the loop has work and jumps
    /// to the next deadline when it has none (docs/virtual-time.md). Every test measures its
    /// real time with `ContinuousClock` and its virtual time with the loop's `LoopClock`.
    @Suite struct VirtualTimeTests {
        /// The reactors a virtual loop's I/O is tested on.
        static let reactors: [ReactorChoice] = [.ioUring, .epoll]

        /// Runs `body` on a new virtual-time loop; returns its value and the real time taken.
        static func virtual<T: Sendable>(
            reactor: ReactorChoice = .automatic, _ body: @escaping @Sendable (LoopClock) async throws -> T
        ) async throws -> (T, real: Duration) {
            let start = ContinuousClock.now
            let value = try await bounded(30, "virtual-time loop") {
                try await SpindleEventLoop.run(reactor: reactor, clock: .virtual) {
                    let loop = SpindleEventLoop.current!
                    #expect(loop.clockMode == .virtual)
                    return try await body(loop.clock)
                }
            }
            return (value, ContinuousClock.now - start)
        }

        @Test func anHourLongTimeoutEndsInUnderASecond() async throws {
            let ((outcome, virtual), real) = try await Self.virtual { clock -> (String, Duration) in
                let start = clock.now
                do {
                    try await withTimeout(.seconds(3600)) { try await Spindle.sleep(for: .seconds(7200)) }
                    return ("slept", start.duration(to: clock.now))
                } catch let error as TimeoutError {
                    return ("timed out after \(error.duration)", start.duration(to: clock.now))
                }
            }
            #expect(outcome == "timed out after 3600.0 seconds")
            #expect(virtual == .seconds(3600), "virtual time passed: \(virtual)")
            #expect(real < .seconds(1), "real time passed: \(real)")
        }

        /// A retry loop with exponential back-off (1 s, 2 s, 4 s ... capped at 10 minutes, over
        /// three kinds of exact sleep: `Task.sleep` on the loop's clock, `Spindle.sleep`, and
        /// generic code given the loop's clock), each attempt a 30 s timeout that its operation overruns, and a
        /// heartbeat task beside it every 13 s: more than two hours of virtual time, and the same
        /// timestamps (and their interleaving) on every run.
        @Test func backOffRetriesGiveTheSameTimestampsEveryRun() async throws {
            func scenario() async throws -> ([String], Duration) {
                let ((log, virtual), real) = try await Self.virtual { clock -> ([String], Duration) in
                    let start = clock.now
                    let log = Lock<[String]>([])
                    func note(_ what: String) {
                        let at = start.duration(to: clock.now)
                        log.withLock { $0.append("\(at.components.seconds).\(at.components.attoseconds / 1_000_000_000_000_000) \(what)") }
                    }
                    let heartbeat = Task(executorPreference: SpindleEventLoop.current!) {
                        for beat in 0..<1_000_000 {
                            do { try await Spindle.sleep(for: .seconds(13)) } catch { return }
                            if beat % 97 == 0 { note("beat \(beat)") }
                        }
                    }
                    var delay = Duration.seconds(1)
                    for attempt in 0..<20 {
                        note("attempt \(attempt)")
                        do {
                            try await withTimeout(.seconds(30)) { try await Spindle.sleep(for: .seconds(45)) }
                            note("succeeded")
                        } catch is TimeoutError {
                            note("timed out")
                        }
                        switch attempt % 3 {
                        case 0: try await Task.sleep(until: clock.now.advanced(by: delay), clock: clock)
                        case 1: try await Spindle.sleep(for: delay)
                        default: try await Self.backOff(delay, on: clock)
                        }
                        delay = min(delay * 2, .seconds(600))
                    }
                    note("gave up")
                    heartbeat.cancel()
                    await heartbeat.value
                    return (log.withLock { $0 }, start.duration(to: clock.now))
                }
                #expect(real < .seconds(1), "real time passed: \(real)")
                return (log, virtual)
            }
            let (first, virtual) = try await scenario()
            // The attempts' timestamps, worked out by hand: each attempt takes 30 s, then its back-off.
            var expected: [String] = []
            var at = 0
            var delay = 1
            for attempt in 0..<20 {
                expected.append("\(at).0 attempt \(attempt)")
                at += 30
                expected.append("\(at).0 timed out")
                at += delay
                delay = min(delay * 2, 600)
            }
            expected.append("\(at).0 gave up")
            #expect(first.filter { !$0.contains("beat") } == expected)
            #expect(virtual == .seconds(at))
            #expect(virtual > .seconds(2 * 3600))
            #expect(first.filter { $0.contains("beat") }.count == (at / 13 - 1) / 97 + 1)
            for run in 2...3 {
                let (again, _) = try await scenario()
                #expect(again == first, "run \(run) differs")
            }
        }

        /// A back-off written against any clock, as library code would be.
        static func backOff<C: Clock>(_ delay: Duration, on clock: C) async throws where C.Duration == Duration {
            try await clock.sleep(for: delay)
        }

        @Test func taskSleepFollowsTheVirtualClock() async throws {
            let ((forDuration, untilInstant, onClock), real) = try await Self.virtual { clock -> (Duration, Duration, Duration) in
                let start = clock.now
                try await Task.sleep(for: .seconds(600))  // through the loop's scheduling hook
                let afterFor = clock.now
                try await Task.sleep(until: afterFor.advanced(by: .seconds(90)), clock: clock)
                let afterUntil = clock.now
                try await clock.sleep(for: .milliseconds(1500))
                return (start.duration(to: afterFor), afterFor.duration(to: afterUntil), afterUntil.duration(to: clock.now))
            }
            // Swift hands the loop a ContinuousClock instant, which it converts by its real
            // distance: exact (rounded up to the tick) unless the thread was descheduled inside
            // Task.sleep, which shortens the sleep by that delay (docs/virtual-time.md).
            #expect(forDuration > .seconds(599) && forDuration <= .seconds(600), "\(forDuration)")
            #expect(untilInstant == .seconds(90))
            #expect(onClock == .milliseconds(1500))
            #expect(real < .seconds(1), "real time passed: \(real)")
        }

        /// I/O in flight does not hold time back (Tokio's rule): a read from a peer that never
        /// writes, under an hour's timeout, times out at once, and the stream still works after.
        @Test(arguments: VirtualTimeTests.reactors)
        func aSilentPeerTimesOutAtOnce(reactor: ReactorChoice) async throws {
            let ((timedOut, virtual, later), real) = try await Self.virtual(reactor: reactor) { clock -> (Bool, Duration, [UInt8]?) in
                let (near, far) = try UnixStream.pair()
                defer { near.close(); far.close() }
                let start = clock.now
                var timedOut = false
                do {
                    _ = try await withTimeout(.seconds(3600)) { try await near.read() }
                } catch is TimeoutError {
                    timedOut = true
                }
                let virtual = start.duration(to: clock.now)
                try await far.write([7])
                return (timedOut, virtual, try await near.read())
            }
            #expect(timedOut)
            #expect(virtual == .seconds(3600))
            #expect(later == [7])
            #expect(real < .seconds(1), "real time passed: \(real)")
        }

        /// Data that arrives before the deadline wins, and the loop does not jump past it: the
        /// writer writes at 30 virtual minutes, the reader's one-hour timeout never fires, and
        /// the clock stops at 30 minutes: the read's completion is taken before the next jump.
        @Test(arguments: VirtualTimeTests.reactors)
        func dataBeforeTheDeadlineBeatsTheTimeout(reactor: ReactorChoice) async throws {
            let ((bytes, readAt, endedAt), real) = try await Self.virtual(reactor: reactor) { clock -> ([UInt8]?, Duration, Duration) in
                let (near, far) = try UnixStream.pair()
                defer { near.close(); far.close() }
                let start = clock.now
                let writer = Task(executorPreference: SpindleEventLoop.current!) {
                    try await Spindle.sleep(for: .seconds(1800))
                    try await far.write([1, 2, 3])
                }
                let bytes = try await withTimeout(.seconds(3600)) { try await near.read() }
                let readAt = start.duration(to: clock.now)
                try await writer.value
                // Nothing is left to run: the next jump is to this sleep's end, not to the
                // cancelled timeout's deadline.
                try await Spindle.sleep(for: .seconds(1))
                return (bytes, readAt, start.duration(to: clock.now))
            }
            #expect(bytes == [1, 2, 3])
            #expect(readAt == .seconds(1800))
            #expect(endedAt == .seconds(1801))
            #expect(real < .seconds(1), "real time passed: \(real)")
        }

        /// A blocking-pool job awaited by a task of the loop holds the clock still (Tokio's
        /// `spawn_blocking` rule): the loop parks for real until the job returns, although a
        /// timer is pending. The job returns only once it has seen the loop park, so a loop
        /// that jumped instead would fire the timeout and move the clock.
        @Test func aBlockingJobHoldsTimeStill() async throws {
            let ((value, virtual), _) = try await Self.virtual { clock -> (Int, Duration) in
                let loop = SpindleEventLoop.current!
                let start = clock.now
                let parksBefore = loop.metrics().parks
                let value = try await withTimeout(.seconds(1)) {
                    try await toThread { () -> Int in
                        while loop.metrics().parks == parksBefore { sched_yield() }
                        return 42
                    }
                }
                return (value, start.duration(to: clock.now))
            }
            #expect(value == 42)
            #expect(virtual == .zero, "the clock moved while a blocking job ran: \(virtual)")
        }

        /// A task on another executor sleeping on the loop's clock: its timer goes to the loop's
        /// shared wheel and follows virtual time, and the task resumes on its own executor.
        @Test func aSleepFromAnotherThreadFollowsTheLoopsClock() async throws {
            let loop = try SpindleEventLoop(clock: .virtual)
            let clock = loop.clock
            let start = clock.now
            let realStart = ContinuousClock.now
            try await bounded(30, "sleep on a virtual loop's clock from elsewhere") {
                try await clock.sleep(for: .seconds(3600))
            }
            #expect(start.duration(to: clock.now) == .seconds(3600))
            #expect(ContinuousClock.now - realStart < .seconds(1))
            await loop.shutdown()
        }

        /// `runBlocking` on the caller's thread: a virtual day, and the shutdown that follows.
        @Test func runBlockingOnTheCallersThreadTakesAVirtualClock() throws {
            let start = ContinuousClock.now
            let elapsed = try SpindleEventLoop.runBlocking(clock: .virtual) { () async throws -> Duration in
                let clock = SpindleEventLoop.current!.clock
                let begin = clock.now
                try await Spindle.sleep(for: .seconds(86_400))
                return begin.duration(to: clock.now)
            }
            #expect(elapsed == .seconds(86_400))
            #expect(ContinuousClock.now - start < .seconds(1))
        }

        @Test func aRealLoopsClockIsTheMonotonicClock() async throws {
            let (before, now, after, mode) = try await SpindleEventLoop.run { () -> (UInt64, UInt64, UInt64, SpindleEventLoop.ClockMode) in
                let loop = SpindleEventLoop.current!
                let before = monotonicNanos()
                let now = loop.clock.now.nanoseconds
                return (before, now, monotonicNanos(), loop.clockMode)
            }
            #expect(mode == .real)
            #expect(before <= now && now <= after)
        }

        @Test func instantArithmetic() {
            let instant = LoopClock.Instant(nanoseconds: 5_000_000_000)
            #expect(instant.advanced(by: .milliseconds(1500)).nanoseconds == 6_500_000_000)
            #expect(instant.advanced(by: .seconds(-2)).nanoseconds == 3_000_000_000)
            #expect(instant.advanced(by: .seconds(-10)).nanoseconds == 0)
            #expect(instant.duration(to: LoopClock.Instant(nanoseconds: 4_000_000_000)) == .seconds(-1))
            #expect(instant.description == "5.000000000 s")
        }
    }
}
