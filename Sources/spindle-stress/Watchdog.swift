// A plain thread, outside every runtime the tool starts, that keeps the run honest: it ends
// the run when its duration or job budget is used up, prints progress, and turns a hang into
// a violation. A hang is a round or a shutdown outstanding for longer than `--watchdog`
// seconds, or a run that has not finished that long after it was told to stop; the
// diagnostic lists everything outstanding, oldest first.

import Glibc
import Synchronization

final class Watchdog: Sendable {
    let reporter: Reporter
    /// Set when the duration or the job budget is used up: no new cycle starts, and the
    /// running one ends after its rounds.
    let stopRequested = Atomic<Bool>(false)
    /// Seconds between progress lines.
    let progressInterval: Double

    init(reporter: Reporter, progressInterval: Double = 5) {
        self.reporter = reporter
        self.progressInterval = progressInterval
    }

    /// Whether the run should stop. Relaxed: a flag polled between rounds; a late look only
    /// runs one more round.
    var shouldStop: Bool { stopRequested.load(ordering: .relaxed) }

    func start() {
        let box = Unmanaged.passRetained(self).toOpaque()
        var thread = pthread_t()
        let created = pthread_create(&thread, nil, { raw in
            let watchdog = Unmanaged<Watchdog>.fromOpaque(raw!).takeRetainedValue()
            watchdog.watch()
            return nil
        }, box)
        if created != 0 { reporter.fail("watchdog", "cannot start the watchdog thread: error \(created)") }
        pthread_detach(thread)
    }

    private func watch() {
        let config = reporter.config
        var lastPrint = reporter.start
        var lastJobs: UInt64 = 0
        var stopSince: UInt64?
        while true {
            usleep(50_000)
            let now = monotonicNanos()
            let jobs = reporter.jobsRun
            let elapsed = Double(now &- reporter.start) / 1e9
            if !shouldStop,
               (config.duration.map { elapsed >= $0 } ?? false) || (config.jobs.map { jobs >= $0 } ?? false) {
                stopRequested.store(true, ordering: .relaxed)
                stopSince = now
            }
            let age = reporter.outstanding.oldestAge
            if age > config.watchdog {
                reporter.fail("watchdog", "HANG: work outstanding for \(fixed(age, 1)) s (bound --watchdog \(config.watchdog) s)")
            }
            if let stopSince, Double(now &- stopSince) / 1e9 > config.watchdog + 10 {
                reporter.fail("watchdog", "HANG: the run did not finish \(fixed(config.watchdog + 10, 0)) s after it was told to stop")
            }
            if Double(now &- lastPrint) / 1e9 >= progressInterval {
                let rate = Double(jobs &- lastJobs) / (Double(now &- lastPrint) / 1e9)
                print(progressLine(elapsed: elapsed, jobs: jobs, rate: rate))
                fflush(nil)
                lastPrint = now
                lastJobs = jobs
            }
        }
    }

    func progressLine(elapsed: Double, jobs: UInt64, rate: Double) -> String {
        let stats = reporter.stats
        return "[\(fixed(elapsed, 1).leftPadded(to: 7)) s] jobs \(human(Double(jobs))) "
            + "(\(human(rate))/s now, \(human(Double(jobs) / max(elapsed, 1e-9)))/s avg), "
            + "cycle \(stats.cycles.load(ordering: .relaxed)) | \(stats.summary)"
    }
}
