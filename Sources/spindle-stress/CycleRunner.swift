// The life of one cycle, driven from outside the host: start a runtime or loop, run the
// workloads on it for a random length of time, shut it down (gracefully after the rounds end,
// or, one cycle in four, while they run, so shutdown's cancellation lands at random points),
// and check what the shutdown reports and what it leaves behind: every thread whose name the
// host gave must be gone and the descriptor table must be as it was before the cycle.

import Glibc
import Spindle

enum CycleRunner {
    /// How long a stopped host may take to give its threads and descriptors back.
    static let releaseBound = 5.0
    /// The shutdown's grace period for tasks that are being cancelled.
    static let gracePeriod: Duration = .seconds(10)

    static func run(number: Int, reporter: Reporter, watchdog: Watchdog, socketDirectory: String) async {
        let config = reporter.config
        var rng = SplitMix(seed: config.seed, 0xC1C1E, UInt64(number))
        let seconds = Double(rng.int(250...2_500)) / 1_000
        let abrupt = rng.oneIn(4)
        let name = "s\(number % 100_000)x"
        let prefixes = Host.threadPrefixes(eventLoop: config.eventLoop, name: name)
        let descriptorsBefore = ProcessResources.descriptors()
        let place = "cycle \(number)"

        let host: Host
        do {
            host = try Host.start(eventLoop: config.eventLoop, workers: config.workers, name: name)
        } catch {
            reporter.fail(place, "cannot start the \(config.eventLoop ? "event loop" : "runtime"): \(error)")
        }
        reporter.cycleStarted(number, on: host)
        let context = CycleContext(
            number: number, seed: rng.next(), host: host, reporter: reporter, watchdog: watchdog,
            socketDirectory: socketDirectory)
        let lanes: Task<Void, Never>
        do {
            lanes = try host.spawn { await context.runLanes() }
        } catch {
            reporter.fail(place, "a new host refused a spawn: \(error)")
        }

        let end = monotonicNanos() &+ UInt64(seconds * 1e9)
        while monotonicNanos() < end && !watchdog.shouldStop {
            try? await Task.sleep(for: .milliseconds(5))
        }
        let token = reporter.outstanding.begin(place, phase: abrupt ? "shutdown under running rounds" : "waiting for rounds to end")
        let report: ShutdownReport
        if abrupt && !watchdog.shouldStop {
            context.endsAbruptly.store(true, ordering: .sequentiallyConsistent)
            report = await host.shutdown(gracePeriod: gracePeriod)
            reporter.outstanding.update(token, phase: "waiting for the cancelled lanes")
            await lanes.value
        } else {
            context.ending.store(true, ordering: .relaxed)
            await lanes.value
            reporter.outstanding.update(token, phase: "shutdown")
            report = await host.shutdown(gracePeriod: gracePeriod)
        }
        if report.abandonedTasks != 0 || report.stuckWorkers != 0 || report.abandonedBlockingJobs != 0 {
            reporter.fail(place, "shutdown left work behind: \(report)")
        }
        reporter.outstanding.update(token, phase: "waiting for threads and descriptors to be released")
        checkReleased(place: place, prefixes: prefixes, descriptorsBefore: descriptorsBefore, reporter: reporter)
        reporter.outstanding.done(token)
        reporter.cycleEnded()
        reporter.stats.cycles.add(1, ordering: .relaxed)
    }

    /// Fails unless, within `releaseBound`, no thread named with one of `prefixes` is left and
    /// the descriptors are those of before the cycle.
    private static func checkReleased(
        place: String, prefixes: [String], descriptorsBefore: [Int32: String], reporter: Reporter
    ) {
        let deadline = monotonicNanos() &+ UInt64(releaseBound * 1e9)
        while true {
            let threads = ProcessResources.threadNames().filter { name in prefixes.contains { name.hasPrefix($0) } }
            let descriptors = ProcessResources.descriptors()
            // Spindle opens no timerfd (its timers are wheel entries and io_uring timeouts);
            // Dispatch, which runs the driver and the after-stop jobs, opens one per clock the
            // first time that clock is used, for the life of the process.
            let added = descriptors.filter { descriptorsBefore[$0.key] != $0.value && $0.value != "anon_inode:[timerfd]" }
            if threads.isEmpty && added.isEmpty { return }
            if monotonicNanos() >= deadline {
                let listed = added.sorted { $0.key < $1.key }.prefix(20).map { "\($0.key) -> \($0.value)" }
                reporter.fail(place, "the stopped host left behind threads \(threads) and descriptors "
                    + "\(listed) (\(added.count) new) after \(releaseBound) s")
            }
            usleep(1_000)
        }
    }
}
