// The blocked-worker watch (Go's sysmon, for one job that will not yield).
//
// A watch thread samples every worker a few times per threshold: its jobs-run counter and the
// job it publishes as running. A worker whose counter has not moved for `threshold` while it is
// inside a job is stuck (a blocking system call, a long computation). The watch reports it once
// per stuck job through swift-log, with the task's name when the task was started with
// `spawn(name:)`, and, when there are other workers, hands everything the worker holds to
// them: its queued jobs and LIFO slot go to the injector, its timers to the shared heap, and a
// parked worker is woken. So one blocking call delays only the task that made it. (Tokio cannot
// do this; Go does it by giving the stuck thread's processor to another thread.) On a 1-worker
// runtime there is nobody to hand to: the watch only reports.
//
// The watch also sends the wake-ups a worker deferred for work its completions resumed (see
// Worker's `reapRing`) when the worker has been inside one job for longer than a millisecond
// since deferring: the owner would only send it after that job.
//
// Cost on the hot path: one relaxed store of the running job before and after each job, no
// clock reads. The watch sleeps `threshold / 4` between samples while any worker is busy and
// backs off to `threshold` while all are idle.

import Logging
import Synchronization

final class BlockedWorkerWatch: @unchecked Sendable {
    // @unchecked Sendable: the sampling state is touched only by the watch thread; `thread` is
    // set once by `start` and read by `stop`, both called by the runtime's owner in sequence.

    private let threshold: UInt64
    private let logger: Logger
    unowned(unsafe) private let runtime: Runtime
    private let stopped = Gate()
    private var thread: OSThread?
    let reports = Atomic<UInt64>(0)

    init(runtime: Runtime, threshold: Duration, logger: Logger) {
        self.runtime = runtime
        self.threshold = max(threshold.clampedNanoseconds, 1_000_000)
        self.logger = logger
    }

    func start(name: String) throws(SpindleError) {
        thread = try OSThread.spawn(name: "\(name)-watch") { [self] in watch() }
    }

    func stop() {
        stopped.open()
        thread?.join()
        thread = nil
    }

    private func watch() {
        let workers = runtime.workers
        let scratch = LocalQueue()
        let start = monotonicNanos()
        var lastJobs = [UInt64](repeating: 0, count: workers.count)
        var lastProgress = [UInt64](repeating: start, count: workers.count)
        var reportedJobs = [UInt64](repeating: .max, count: workers.count)
        var interval = threshold / 4
        while !stopped.wait(deadline: monotonicNanos() &+ interval) {
            let now = monotonicNanos()
            var anyBusy = false
            for (index, worker) in workers.enumerated() {
                let deferred = worker.deferredWakeSince.load(ordering: .relaxed)
                // Only if the value is still the one read: a newer deferral is the owner's.
                if deferred != 0 && now &- deferred >= 1_000_000,
                   worker.deferredWakeSince.compareExchange(expected: deferred, desired: 0, ordering: .relaxed).exchanged {
                    runtime.notifyParked(from: nil)
                }
                let jobs = worker.counters.jobsRun.load(ordering: .relaxed)
                let running = worker.publishedJob.load(ordering: .relaxed)
                if running != 0 { anyBusy = true }
                if jobs != lastJobs[index] || running == 0 {
                    lastJobs[index] = jobs
                    lastProgress[index] = now
                    continue
                }
                let stuckFor = now - lastProgress[index]
                guard stuckFor >= threshold else { continue }
                // With one worker there is nobody to hand the work to: it stays where it is.
                let moved = workers.count > 1 ? worker.handOff(using: scratch) : 0
                if moved > 0 { runtime.notifyParked(from: nil) }
                if reportedJobs[index] != jobs {
                    reportedJobs[index] = jobs
                    reports.add(1, ordering: .relaxed)
                    let name = runtime.registry.name(ofTask: running) ?? "an unnamed task"
                    let consequence = workers.count > 1
                        ? "handed \(moved) queued jobs and timers to other workers"
                        : "the runtime's only worker, so \(worker.queuedJobCount) queued jobs wait for it"
                    logger.warning(
                        "Spindle worker \(index) has been blocked in \(name) for \(stuckFor / 1_000_000) ms; \(consequence). Move blocking work to toThread { } or a BlockingPool.",
                        metadata: [
                            "worker": "\(index)",
                            "task": "\(name)",
                            "blocked_ms": "\(stuckFor / 1_000_000)",
                            "handed_off": "\(moved)",
                        ])
                }
            }
            interval = anyBusy ? threshold / 4 : threshold
        }
    }
}
