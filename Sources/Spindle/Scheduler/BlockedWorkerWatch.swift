// The blocked-worker watch (Go's sysmon, for one job that will not yield).
//
// A watch thread samples every worker a few times per threshold: its jobs-run counter and the
// job it publishes as running. A worker whose counter has not moved for `threshold` while it is
// inside a job is stuck (a blocking system call, a long computation). The watch reports it once
// per stuck job through swift-log, with the task's name when the task was started with
// `spawn(name:)`, and, when there are other workers, hands everything the worker holds to
// them: its queued jobs and LIFO slot go to the injector, its timers to the shared heap, and a
// parked worker is woken. On a 1-worker runtime there is nobody to hand to: the watch only
// reports.
//
// Handing off the queues is not enough for I/O: the requests of every connection the stuck
// worker served sit in its ring, and only a reaper can turn their completions into
// resumptions. So the watch also *adopts* the ring (Reactor/Ring+Token.swift, "Who touches the ring", and Ring+Adoption.swift): while
// the worker stays inside that same job, the watch polls the ring's descriptor (readable when
// completions wait in its CQ) beside its own doorbell eventfd, and reaps whenever it wakes,
// through `Ring.reapAsAdopter`, which takes the ring's token only if the owner does not hold it.
// The tasks it resumes are enqueued from this thread, so the other workers run them, and their
// next requests go to those workers' rings: connections move off the stuck worker one round
// trip each. The cancel of a task that times out around such I/O reaches the kernel the same
// way: `wake()` on an adopted ring rings the watch's doorbell, and the watch takes the ring's
// cancel inbox and submits the cancels. The watch gives the ring back as soon as the worker's
// counter moves or its published job changes (checked before every reap and at every sample),
// and the owner's next ring operation finds the token free (or waits out one reap batch).
// Adoption needs rings that other threads may reap, so a runtime with the watch creates its
// workers' rings adoptable (COOP_TASKRUN instead of SINGLE_ISSUER | DEFER_TASKRUN); the cost
// on the fast path is measured in docs/architecture.md. A worker stuck in uninterruptible sleep
// (D state) cannot run the completion work the kernel queues on it, so its I/O still waits.
// (Tokio cannot move a stuck worker's work; Go hands the stuck thread's processor, and with it
// the poller's readiness, to another thread.)
//
// Invariants: the watch reaps a ring only while its owner was last seen inside the job it was
// adopted in, and only holding the token; it is stopped (and has detached its doorbell from
// every ring) before any worker closes its ring (Runtime's `stopWorkers`); the doorbell is
// closed only after that, so no `wake()` writes a closed or reused descriptor number.
//
// The watch also sends the wake-ups a worker deferred for work its completions resumed (see
// Worker's `reapRing`) when the worker has been inside one job for longer than a millisecond
// since deferring: the owner would only send it after that job.
//
// Cost on the hot path: one relaxed store of the running job before and after each job, no
// clock reads. The watch sleeps `threshold / 4` between samples while any worker is busy and
// backs off to `threshold` while all are idle.

internal import CURing
import Glibc
import Logging
import Synchronization

final class BlockedWorkerWatch: @unchecked Sendable {
    // @unchecked Sendable: the sampling and adoption state is touched only by the watch thread;
    // `thread` and `doorbell` are set once by `start` (before the thread exists) and used by
    // `stop`, both called by the runtime's owner in sequence; `stopping` is atomic.

    private let threshold: UInt64
    private let logger: Logger
    unowned(unsafe) private let shared: RuntimeShared
    /// For the names of spawned tasks in reports.
    private let registry: TaskRegistry
    /// Set by `stop`. Release there, acquire in the watch loop: nothing to publish but the flag.
    private let stopping = Atomic<Bool>(false)
    /// The watch's eventfd: `stop()` and every `wake()` of an adopted ring write it to end the
    /// watch's poll.
    private var doorbell: Int32 = -1
    private var thread: OSThread?
    let reports = Atomic<UInt64>(0)

    init(shared: RuntimeShared, registry: TaskRegistry, threshold: Duration, logger: Logger) {
        self.shared = shared
        self.registry = registry
        self.threshold = max(threshold.clampedNanoseconds, 1_000_000)
        self.logger = logger
    }

    func start(name: String) throws(SpindleError) {
        let fd = eventfd(0, Int32(EFD_CLOEXEC | EFD_NONBLOCK))
        if fd < 0 { throw SpindleError.systemCallFailed(call: "eventfd", errno: errno) }
        doorbell = fd
        do throws(SpindleError) {
            thread = try OSThread.spawn(name: "\(name)-watch") { [self] in watch() }
        } catch {
            Glibc.close(fd)
            doorbell = -1
            throw error
        }
    }

    func stop() {
        guard let thread else { return }
        stopping.store(true, ordering: .releasing)
        ringDoorbell()
        thread.join()
        self.thread = nil
        // The watch detached the doorbell from every ring before it exited.
        Glibc.close(doorbell)
        doorbell = -1
    }

    private func ringDoorbell() {
        var one: UInt64 = 1
        _ = write(doorbell, &one, 8)
    }

    /// A ring the watch reaps, and the job its owner was stuck in when the watch adopted it.
    private struct Adoption {
        let worker: Worker
        let jobsRun: UInt64
        let job: UInt

        /// Whether the owner is still inside that job (relaxed loads: a stale value only delays
        /// the hand-back to the next check, and the token keeps the two apart meanwhile).
        var ownerIsStillStuck: Bool {
            worker.counters.jobsRun.load(ordering: .relaxed) == jobsRun
                && worker.publishedJob.load(ordering: .relaxed) == job
        }
    }

    private func watch() {
        let workers = shared.workers
        let scratch = LocalQueue()
        let start = monotonicNanos()
        var lastJobs = [UInt64](repeating: 0, count: workers.count)
        var lastProgress = [UInt64](repeating: start, count: workers.count)
        var reportedJobs = [UInt64](repeating: .max, count: workers.count)
        var adopted: [Int: Adoption] = [:]
        var interval = threshold / 4
        var nextSample = start &+ interval
        var descriptors: [pollfd] = []

        func giveBack(_ index: Int) {
            adopted[index]?.worker.reactor.ring?.setAdopterDoorbell(nil)
            adopted[index] = nil
        }

        while !stopping.load(ordering: .acquiring) {
            let now = monotonicNanos()
            if now >= nextSample {
                var anyBusy = false
                for (index, worker) in workers.enumerated() {
                    let deferred = worker.deferredWakeSince.load(ordering: .relaxed)
                    // Only if the value is still the one read: a newer deferral is the owner's.
                    if deferred != 0 && now &- deferred >= 1_000_000,
                       worker.deferredWakeSince.compareExchange(expected: deferred, desired: 0, ordering: .relaxed).exchanged {
                        shared.notifyParked(from: nil)
                    }
                    let jobs = worker.counters.jobsRun.load(ordering: .relaxed)
                    let running = worker.publishedJob.load(ordering: .relaxed)
                    if running != 0 { anyBusy = true }
                    if jobs != lastJobs[index] || running == 0 {
                        lastJobs[index] = jobs
                        lastProgress[index] = now
                        if adopted[index] != nil { giveBack(index) }
                        continue
                    }
                    let stuckFor = now - lastProgress[index]
                    guard stuckFor >= threshold else { continue }
                    // With one worker there is nobody to hand the work to: it stays where it is.
                    let moved = workers.count > 1 ? worker.handOff(using: scratch) : 0
                    if moved > 0 { shared.notifyParked(from: nil) }
                    let adopts = workers.count > 1 && worker.reactor.ring?.isAdoptable == true
                    if adopts && adopted[index] == nil {
                        adopted[index] = Adoption(worker: worker, jobsRun: jobs, job: running)
                        worker.reactor.ring?.setAdopterDoorbell(doorbell)
                    }
                    if reportedJobs[index] != jobs {
                        reportedJobs[index] = jobs
                        reports.add(1, ordering: .relaxed)
                        let name = registry.name(ofTask: running) ?? "an unnamed task"
                        let consequence = workers.count > 1
                            ? "handed \(moved) queued jobs and timers to other workers\(adopts ? " and reaps its ring for them" : "")"
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
                nextSample = now &+ interval
            }
            // Reap every adopted ring (a wake may be for any of them; an empty reap costs no
            // system call), giving back those whose owner is back.
            for (index, adoption) in adopted {
                if !adoption.ownerIsStillStuck || adoption.worker.reactor.ring?.reapAsAdopter() != true { giveBack(index) }
            }
            // Sleep until the next sample, a completion on an adopted ring, or the doorbell.
            descriptors.removeAll(keepingCapacity: true)
            descriptors.append(pollfd(fd: doorbell, events: Int16(POLLIN), revents: 0))
            for adoption in adopted.values {
                if let ring = adoption.worker.reactor.ring {
                    descriptors.append(pollfd(fd: ring.descriptor, events: Int16(POLLIN), revents: 0))
                }
            }
            let wait = nextSample &- min(monotonicNanos(), nextSample)
            let ready = poll(&descriptors, nfds_t(descriptors.count), Int32(clamping: (wait + 999_999) / 1_000_000))
            if ready > 0 && descriptors[0].revents != 0 {
                var count: UInt64 = 0
                _ = read(doorbell, &count, 8)
            }
        }
        for index in Array(adopted.keys) { giveBack(index) }
    }
}
