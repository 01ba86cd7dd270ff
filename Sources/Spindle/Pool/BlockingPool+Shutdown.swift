// Shutting a blocking pool down (Tokio's `shutdown_timeout`): close, cancel what has not
// started, give what runs a grace period, then join the threads that finished and detach the
// ones that did not. It never waits longer than the grace period for a job that never returns.

import Glibc
import Logging
import Synchronization

/// What a blocking pool's shutdown cancelled and what it left running.
public struct BlockingPoolShutdownReport: Sendable, Equatable {
    /// Jobs still queued when shutdown began; their tasks got `CancellationError`.
    public var cancelledJobs: Int
    /// Jobs still running when the grace period ended. Their threads were detached: each
    /// finishes its job, hands the outcome to the awaiting task, and exits.
    public var abandonedJobs: Int
}

extension BlockingPool {
    /// Stops the pool: new jobs are refused with ``SpindleError/shutDown``, queued jobs are
    /// cancelled (their tasks get `CancellationError`), running jobs get up to `gracePeriod` to
    /// finish, and idle threads exit. Threads still running a job after the grace period are
    /// left to finish it on their own and counted in the report. Calling it again, or
    /// concurrently, returns the first call's report once that call is done.
    @discardableResult
    public func shutdown(gracePeriod: Duration = .seconds(10)) async -> BlockingPoolShutdownReport {
        guard let cancelled = beginShutdown() else {
            await Self.poll(until: .max) { [self] in shutdownReport.withLock { $0 } == nil }
            return shutdownReport.withLock { $0 }!
        }
        let deadline = monotonicNanos() &+ gracePeriod.clampedNanoseconds
        await Self.poll(until: deadline) { [self] in hasLiveThreads }
        return finishShutdown(cancelled: cancelled)
    }

    /// Waits while `condition` holds, looking every millisecond, until `deadline`
    /// (CLOCK_MONOTONIC ns). A cancelled caller still waits the whole time, and never by
    /// blocking its thread: a cancelled task's `Task.sleep` throws at once (this once fell back
    /// to `usleep`, freezing the worker or event loop a shutdown was called from), so the
    /// looking is done in a task of its own, which does not inherit the caller's cancellation
    /// (one task per shutdown).
    private static func poll(until deadline: UInt64, while condition: @escaping @Sendable () -> Bool) async {
        await Task.detached {
            while condition() && monotonicNanos() < deadline {
                // Cannot throw: nobody holds this task's handle, so nobody can cancel it.
                try? await Task.sleep(for: .milliseconds(1))
            }
        }.value
    }

    /// ``shutdown(gracePeriod:)`` for synchronous callers (blocks the calling thread).
    @discardableResult
    public func shutdownBlocking(gracePeriod: Duration = .seconds(10)) -> BlockingPoolShutdownReport {
        guard let cancelled = beginShutdown() else {
            shutdownDone.wait()
            return shutdownReport.withLock { $0 }!
        }
        let deadline = monotonicNanos() &+ gracePeriod.clampedNanoseconds
        while hasLiveThreads && monotonicNanos() < deadline {
            usleep(1_000)
        }
        return finishShutdown(cancelled: cancelled)
    }

    /// Whether shutdown has begun (new jobs are refused).
    public var isShutDown: Bool {
        control.load(ordering: .sequentiallyConsistent).isClosed  // as every access to `control`
    }

    private var hasLiveThreads: Bool {
        // Acquire: a thread's exit is published by the thread lock, which finishShutdown takes;
        // these loads only decide when to stop waiting.
        control.load(ordering: .acquiring).live > 0 || monitorRunning.load(ordering: .acquiring)
    }

    /// Closes the pool, wakes the idle threads so they exit, and cancels every queued job.
    /// Returns how many it cancelled, or nil if another call closed the pool first.
    private func beginShutdown() -> Int? {
        guard let (before, _) = updateControl({ $0.isClosed ? nil : ($0.closing(), ()) }) else { return nil }
        idleThreads.signal(count: before.idle)
        var cancelled = 0
        while let job = queue.pop() {
            if withdraw(job, error: CancellationError()) { cancelled += 1 }
        }
        return cancelled
    }

    private func finishShutdown(cancelled: Int) -> BlockingPoolShutdownReport {
        let (detached, exited) = threads.withLock { threads in
            // Under the thread lock, `live` and the handles agree: a thread leaves both at once.
            let detached = control.load(ordering: .sequentiallyConsistent).live > 0 ? threads.detachRunning() : 0
            return (detached, threads.takeExited())
        }
        for handle in exited { pthread_join(handle, nil) }
        var abandoned = 0
        if detached > 0 {
            let running = counters.started.load(ordering: .relaxed) &- counters.completed.load(ordering: .relaxed)
            abandoned = Int(min(running, UInt64(detached)))
            counters.abandoned.store(UInt64(abandoned), ordering: .relaxed)
        }
        let report = BlockingPoolShutdownReport(cancelledJobs: cancelled, abandonedJobs: abandoned)
        if let logger {
            let metadata: Logger.Metadata = [
                "pool": "\(name)", "cancelled_jobs": "\(cancelled)", "abandoned_jobs": "\(abandoned)",
            ]
            if abandoned > 0 {
                logger.warning("blocking pool shut down with jobs still running (their threads finish them)", metadata: metadata)
            } else {
                logger.debug("blocking pool shut down", metadata: metadata)
            }
        }
        shutdownReport.withLock { $0 = report }
        shutdownDone.open()
        return report
    }
}
