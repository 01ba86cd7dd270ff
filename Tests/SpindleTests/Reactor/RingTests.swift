import CSpindle
import CURing
import Glibc
import Synchronization
import Testing
@testable import Spindle

/// Runs `body` on a thread of its own and returns its result: a ring must be created and used
/// by one thread (SINGLE_ISSUER), which must not be a Swift concurrency thread that other tasks
/// share.
func onOwnThread<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { (continuation: CheckedContinuation<T, Never>) in
        onForeignThread { continuation.resume(returning: body()) }
    }
}

/// The kernel's version, from uname (e.g. 6.18 for "6.18.44-fc").
func kernelVersion() -> (major: Int, minor: Int) {
    var name = utsname()
    uname(&name)
    let release = withUnsafeBytes(of: name.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
    let parts = release.split(whereSeparator: { !$0.isNumber }).compactMap { Int($0) }
    return (parts.first ?? 0, parts.dropFirst().first ?? 0)
}

/// Whether `io_uring_setup` accepts `flags` (with the CQ size Ring asks for), tried directly.
func kernelAccepts(_ flags: UInt32) -> Bool {
    var params = io_uring_params()
    params.flags = flags | IORING_SETUP_CQSIZE
    params.cq_entries = Ring.entries * 4
    let fd = io_uring_setup(Ring.entries, &params)
    if fd < 0 { return false }
    close(fd)
    return true
}

/// Deliveries of SIGUSR2 to the handler `interruptingSignal` installs.
let interruptsDelivered = Atomic<Int>(0)

/// Installs a SIGUSR2 handler without SA_RESTART (so a blocking system call it interrupts
/// returns EINTR) that only counts; returns the previous action, to restore.
func installInterruptingSignal() -> sigaction {
    var action = sigaction()
    action.__sigaction_handler.sa_handler = { _ in interruptsDelivered.add(1, ordering: .relaxed) }
    sigemptyset(&action.sa_mask)
    action.sa_flags = 0
    var previous = sigaction()
    sigaction(SIGUSR2, &action, &previous)
    return previous
}

extension SpindleTests {
    /// The ring on its own, driven by a test thread as its owner: set-up flags, a full
    /// submission queue, an overflowing completion queue, close's cancel-and-drain and its cap,
    /// and a park interrupted by signals.
    @Suite struct RingTests {
        @Test func ringsUseTheBestFlagsTheKernelAccepts() throws {
            let ring = try Ring(counters: RingCounters())
            defer { ring.close() }
            let deferred = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN
            let cooperative = IORING_SETUP_COOP_TASKRUN
            // Spindle's order of preference; the best one this kernel takes, asked directly.
            let preference: [UInt32] = [
                deferred | IORING_SETUP_TASKRUN_FLAG, deferred,
                cooperative | IORING_SETUP_TASKRUN_FLAG, cooperative, 0,
            ]
            let best = preference.first(where: kernelAccepts)
            #expect(ring.setupFlags == best, "ring has \(ring.setupFlags), the kernel takes \(String(describing: best))")
            // And by version: SINGLE_ISSUER came in 6.0, DEFER_TASKRUN in 6.1, TASKRUN_FLAG and
            // COOP_TASKRUN in 5.19 (the oldest kernel Spindle runs on).
            let (major, minor) = kernelVersion()
            if (major, minor) >= (6, 1) {
                #expect(ring.setupFlags & deferred == deferred, "Linux \(major).\(minor) takes SINGLE_ISSUER | DEFER_TASKRUN")
            }
            if (major, minor) >= (5, 19) {
                #expect(ring.setupFlags & IORING_SETUP_TASKRUN_FLAG != 0, "Linux \(major).\(minor) takes TASKRUN_FLAG")
            }
        }

        /// 20,000 requests prepared in one go on a ring of 1,024 entries: the SQ fills 19 times
        /// (each time `nextSQE` submits it and goes on), and all 20,000 completions are posted
        /// before the first reap into a CQ of 4,096 entries, so most of them wait in the
        /// kernel's overflow backlog. Every request must complete exactly once, none lost.
        @Test func aFullSubmissionQueueAndAnOverflowingCompletionQueueLoseNoRequest() async throws {
            let count = 20_000
            let outcome = try await bounded(60, "20,000 NOPs through one ring") {
                await onOwnThread { () -> String in
                    let counters = RingCounters()
                    let ring: Ring
                    do { ring = try Ring(counters: counters) } catch { return "no ring: \(error)" }
                    defer { ring.close() }
                    let sinks = (0..<count).map { _ in RecordingSink() }
                    for sink in sinks {
                        _ = IOSubmission.startMultishot(on: ring, sink: sink) { io_uring_prep_nop($0) }
                    }
                    let submittedWhilePreparing = counters.sqesSubmitted.load(ordering: .relaxed)
                    let deadline = monotonicNanos() + 30_000_000_000
                    repeat { ring.flush() } while ring.inFlightCount > 0 && monotonicNanos() < deadline  // the gauge counts what was submitted
                    var problems: [String] = []
                    if submittedWhilePreparing < UInt64(count - Int(Ring.entries)) {
                        problems.append("only \(submittedWhilePreparing) submitted while the SQ kept filling")
                    }
                    let wrong = sinks.filter { $0.results != [0] || $0.ended != 1 }.count
                    if wrong > 0 { problems.append("\(wrong) requests did not complete exactly once with 0") }
                    if ring.inFlightCount != 0 { problems.append("\(ring.inFlightCount) still in flight") }
                    let submitted = counters.sqesSubmitted.load(ordering: .relaxed)
                    let reaped = counters.cqesReaped.load(ordering: .relaxed)
                    if submitted != UInt64(count) || reaped != UInt64(count) {
                        problems.append("submitted \(submitted), reaped \(reaped), expected \(count)")
                    }
                    if counters.operationsInFlight.load(ordering: .relaxed) != 0 { problems.append("gauge not back to 0") }
                    return problems.joined(separator: "; ")
                }
            }
            #expect(outcome.isEmpty, "\(outcome)")
        }

        /// A signal that interrupts a parked thread's wait (io_uring_enter fails with EINTR)
        /// only ends that park early: the read in flight still completes with its bytes, a
        /// sleep still ends at its deadline (not early), and the thread keeps serving.
        @Test(arguments: [Host.oneWorker, Host.eventLoop])
        func signalsThatInterruptAParkLoseNoCompletionAndNoTimer(host: Host) async throws {
            var previous = installInterruptingSignal()
            defer { sigaction(SIGUSR2, &previous, nil) }
            final class Signaller: Sendable {
                let stop = Atomic<Bool>(false)
                let stopped = Atomic<Bool>(false)
            }
            let (bytes, slept, delivered) = try await host.run { () -> ([UInt8], Duration, Int) in
                let thread = pthread_self()  // the only thread of this host
                // It inherited its creator's signal mask (Swift's threads block most signals).
                var set = sigset_t()
                sigemptyset(&set)
                sigaddset(&set, SIGUSR2)
                pthread_sigmask(SIG_UNBLOCK, &set, nil)
                defer { pthread_sigmask(SIG_BLOCK, &set, nil) }
                let (client, server) = try await connectedPair()
                defer {
                    client.close()
                    server.close()
                }
                async let reading = server.readExactly(5)
                try await untilInFlight("the read")
                let signaller = Signaller()
                let before = interruptsDelivered.load(ordering: .relaxed)
                onForeignThread {
                    while !signaller.stop.load(ordering: .relaxed) {
                        pthread_kill(thread, SIGUSR2)
                        usleep(200)
                    }
                    signaller.stopped.store(true, ordering: .releasing)
                }
                do {
                    try await eventually("100 signals reach the thread") {
                        interruptsDelivered.load(ordering: .relaxed) - before >= 100
                    }
                    let start = ContinuousClock.now
                    try await Spindle.sleep(for: .milliseconds(30))
                    let slept = ContinuousClock.now - start
                    try await client.write([1, 2, 3, 4, 5])
                    let bytes = try await reading
                    signaller.stop.store(true, ordering: .relaxed)
                    try await eventually("the signaller stops") { signaller.stopped.load(ordering: .acquiring) }
                    return (bytes, slept, interruptsDelivered.load(ordering: .relaxed) - before)
                } catch {
                    signaller.stop.store(true, ordering: .relaxed)
                    try? await eventually("the signaller stops") { signaller.stopped.load(ordering: .acquiring) }
                    throw error
                }
            }
            #expect(bytes == [1, 2, 3, 4, 5])
            #expect(slept >= .milliseconds(30), "a sleep ended early, after \(slept)")
            #expect(delivered >= 100)
        }

        /// `close` cancels what is in flight and waits for those completions (the kernel owns
        /// their buffers until then), but only up to its drain timeout: an operation that never
        /// completes must not hold the thread forever. (A request the kernel cannot cancel is
        /// stood in for by a slot with no request behind it: nothing will ever complete it.)
        @Test func closeCancelsWhatIsInFlightAndWaitsNoLongerThanItsCap() async throws {
            let outcome = try await bounded(30, "ring close") {
                await onOwnThread { () -> String in
                    var problems: [String] = []
                    var fds: [Int32] = [0, 0]
                    guard pipe(&fds) == 0 else { return "pipe: \(errno)" }
                    defer { fds.forEach { _ = Glibc.close($0) } }
                    let buffer = UnsafeMutableRawPointer.allocate(byteCount: 16, alignment: 8)
                    defer { buffer.deallocate() }  // after the close: the read's completion has come
                    for stuck in [false, true] {
                        let ring: Ring
                        do { ring = try Ring(counters: RingCounters()) } catch { return "no ring: \(error)" }
                        let reads = (0..<3).map { _ in RecordingSink() }
                        for sink in reads {
                            _ = IOSubmission.startMultishot(on: ring, sink: sink) { sqe in
                                io_uring_prep_read(sqe, fds[0], buffer, 16, 0)
                            }
                        }
                        let never = RecordingSink()
                        if stuck { ring.attachWithoutRequest(sink: never) }
                        ring.flush()  // the reads wait in the kernel on an empty pipe
                        let cap: UInt64 = stuck ? 300_000_000 : 20_000_000_000
                        let start = monotonicNanos()
                        ring.close(drainTimeout: cap)
                        let took = Double(monotonicNanos() - start) / 1e9
                        let results = reads.flatMap(\.results)
                        if results != [-ECANCELED, -ECANCELED, -ECANCELED] {
                            problems.append("stuck \(stuck): the reads ended with \(results), not ECANCELED")
                        }
                        if !never.results.isEmpty { problems.append("the stuck slot completed") }
                        if stuck && took < 0.3 { problems.append("returned after \(took) s, before its 0.3 s cap") }
                        // Generous: the cap itself is 0.3 s; 5 s would mean it was not applied.
                        if stuck && took > 5 { problems.append("waited \(took) s past a 0.3 s cap") }
                        if !stuck && took > 5 { problems.append("took \(took) s with nothing stuck") }
                    }
                    return problems.joined(separator: "; ")
                }
            }
            #expect(outcome.isEmpty, "\(outcome)")
        }
    }
}
