// A whole run: print what it will do (with the seed), start the watchdog, run cycles until
// the duration or the job budget is used up, and print the totals. A violation never returns
// here: the reporter ends the process.
//
// Jobs are counted as the executor jobs Spindle actually ran: the sum over the cycles of the
// runtime's (or loop's) `metrics().jobsRun`, read after each shutdown, plus the running
// cycle's for progress. Every task start and every resumption after a suspension is one job.

import Glibc
import Spindle

enum StressRun {
    static func execute(_ config: Configuration) async {
        let stats = Stats(kinds: config.mixes)
        let outstanding = Outstanding()
        let reporter = Reporter(config: config, stats: stats, outstanding: outstanding)
        let watchdog = Watchdog(reporter: reporter)

        let host = config.eventLoop ? "an event loop" : "a runtime with \(config.workers.map(String.init) ?? "the default number of") workers"
        let limit = [config.duration.map { "\($0) s" }, config.jobs.map { "\(grouped($0)) jobs" }]
            .compactMap { $0 }.joined(separator: " or ")
        print("spindle-stress: seed \(config.seed), \(host), mixes \(config.mixes.map(\.rawValue).joined(separator: ",")), until \(limit)")
        print("replay: \(config.replayCommand)")
        if let fault = config.fault { print("injecting fault: \(fault.rawValue) (this run must fail)") }
        fflush(nil)

        let socketDirectory = "/tmp/spindle-stress-\(getpid())"
        if mkdir(socketDirectory, 0o700) != 0 && errno != EEXIST {
            reporter.fail("setup", "cannot create \(socketDirectory): errno \(errno)")
        }
        defer { rmdir(socketDirectory) }

        // Swift's global executor (Dispatch) opens a timerfd for each clock the first time a
        // timer on that clock is set, and keeps it for the life of the process. The driver's
        // own sleeps use the continuous clock; a runtime that stops with a `Task.sleep` still
        // pending re-arms it there with `Task.sleep(nanoseconds:)` (Spindle's Afterlife), on
        // the suspending clock. Open both now, before any cycle counts descriptors.
        try? await Task.sleep(for: .milliseconds(1))
        try? await Task.sleep(nanoseconds: 1_000_000)
        try? await Task.sleep(until: .now + .milliseconds(1), clock: SuspendingClock())
        watchdog.start()
        var cycle = 0
        while !watchdog.shouldStop {
            await CycleRunner.run(number: cycle, reporter: reporter, watchdog: watchdog, socketDirectory: socketDirectory)
            cycle += 1
        }
        let elapsed = secondsSince(reporter.start)
        let jobs = reporter.jobsRun
        print(watchdog.progressLine(elapsed: elapsed, jobs: jobs, rate: Double(jobs) / elapsed))
        print("PASS: \(grouped(jobs)) jobs (executor jobs run, metrics().jobsRun) in \(fixed(elapsed, 1)) s "
            + "(\(human(Double(jobs) / elapsed)) jobs/s), \(cycle) cycles, 0 violations, seed \(config.seed)")
        fflush(nil)
    }
}
