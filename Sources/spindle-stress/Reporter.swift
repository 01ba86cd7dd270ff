// Where a violation goes. The first one prints its diagnostic (what broke, where, the seed and
// the command that replays the run, the executor's counters, what was outstanding) and ends
// the process with exit status 1 at once: later checks would only report the damage the
// first one caused, and a broken runtime cannot be trusted to shut down.

import Glibc
import Spindle
import Synchronization

final class Reporter: Sendable {
    let config: Configuration
    let stats: Stats
    let outstanding: Outstanding
    /// When the run started (`monotonicNanos()`).
    let start: UInt64
    /// The cycle now running and its host, for the job count and for diagnostics.
    private let current = Locked<(cycle: Int, host: Host)?>(nil)
    private let failing = Atomic<Bool>(false)

    init(config: Configuration, stats: Stats, outstanding: Outstanding) {
        self.config = config
        self.stats = stats
        self.outstanding = outstanding
        start = monotonicNanos()
    }

    func cycleStarted(_ cycle: Int, on host: Host) {
        current.withLock { $0 = (cycle, host) }
    }

    /// Moves the ended cycle's jobs into the finished count, in the same critical section that
    /// forgets its host, so `jobsRun` never counts them twice or not at all.
    func cycleEnded() {
        current.withLock { current in
            if let host = current?.host { stats.finishedJobs.add(host.jobsRun, ordering: .relaxed) }
            current = nil
        }
    }

    /// Executor jobs run so far: the ended cycles' and the running one's `metrics().jobsRun`.
    var jobsRun: UInt64 {
        current.withLock { current in
            stats.finishedJobs.load(ordering: .relaxed) + (current?.host.jobsRun ?? 0)
        }
    }

    /// Reports a violation and ends the process with status 1.
    func fail(_ place: String, _ message: String) -> Never {
        if failing.exchange(true, ordering: .acquiringAndReleasing) {
            // Another thread is already reporting; it ends the process.
            while true { pause() }
        }
        let cycle = current.withLock { $0 }
        var text = "\nVIOLATION [\(place)]: \(message)\n"
        text += "after \(fixed(secondsSince(start), 1)) s, \(grouped(jobsRun)) jobs, cycle \(cycle.map { String($0.cycle) } ?? "-")\n"
        text += "seed \(config.seed); replay: \(config.replayCommand)\n"
        text += "(the seed replays every randomized choice; the threads' interleaving is the kernel's)\n"
        if let host = cycle?.host { text += host.diagnostics + "\n" }
        text += stats.summary + "\n"
        text += outstanding.dump() + "\n"
        fflush(nil)  // what was printed before comes first
        var bytes = Array(text.utf8)[...]
        while !bytes.isEmpty {
            let written = bytes.withUnsafeBytes { Glibc.write(2, $0.baseAddress, $0.count) }
            if written <= 0 { break }
            bytes = bytes.dropFirst(written)
        }
        _exit(1)
    }
}
