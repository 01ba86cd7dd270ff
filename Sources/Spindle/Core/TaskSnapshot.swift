// The task dump's values: one `TaskSnapshot` per live spawned task, built from the registry's
// records (Support/TaskActivity.swift) and the jobs the executor's threads are running.
//
// What is exact and what is not. "Running" is exact for the instant the dump samples each
// thread's published job (the one a worker or the loop is inside). "Queued" is exact for a task
// that has not started yet. "Suspended on X" means the task is inside Spindle's wait X: it may
// already have been resumed and be queued to run (a dump from another thread cannot tell a
// resumed-but-not-yet-run task from a waiting one without a store on every resumption, which
// the hot paths do not pay). Anything else is `.notRunning`: queued after a resumption, or
// suspended outside Spindle's waits (awaiting a child task or a task group, an actor,
// `Task.sleep`, `Task.yield`, another library's continuation).

internal import CURing

/// One live spawned task, as a task dump saw it.
public struct TaskSnapshot: Sendable, CustomStringConvertible {
    /// Unique among the live tasks of one runtime or loop (a finished task's id can be reused
    /// by a later one).
    public let id: UInt64
    /// The name given to `spawn`.
    public let name: String?
    /// Time since `spawn`.
    public let age: Duration
    /// What the task was doing when the dump looked.
    public let state: State

    /// What a task was doing when the dump looked.
    public enum State: Sendable, Equatable, CustomStringConvertible {
        /// Created, and its first job not yet run.
        case queued
        /// A thread of the executor is running it: a worker (its index) or the loop (nil).
        case running(worker: Int?)
        /// Inside one of Spindle's waits (and possibly resumed already, its next job queued).
        case suspended(Wait)
        /// Neither running nor in one of Spindle's waits: queued after a resumption, or
        /// suspended elsewhere (a child task, a task group, an actor, `Task.sleep`).
        case notRunning

        /// The state as a phrase for the dump: "queued (not started)", "running on worker 2",
        /// "suspended in sleep (12 ms left)", ...
        public var description: String {
            switch self {
            case .queued: return "queued (not started)"
            case .running(let worker?): return "running on worker \(worker)"
            case .running(nil): return "running"
            case .suspended(let wait): return "suspended in \(wait)"
            case .notRunning: return "not running (queued, or awaiting something outside Spindle)"
            }
        }
    }

    /// One of Spindle's suspension points.
    public enum Wait: Sendable, Equatable, CustomStringConvertible {
        /// An io_uring request (`operation` is its opcode's name: "recv", "send", "read",
        /// "accept", ...) on `descriptor`; on the epoll backend, a wait for the descriptor to
        /// become readable or writable ("epoll wait for readable", "epoll wait for writable").
        case io(operation: String, descriptor: Int32)
        /// `Spindle.sleep`, with the time left when the dump looked (negative once overdue).
        case sleep(remaining: Duration)
        /// `withTimeout` waiting for its operation (which runs as a child task), with the time
        /// left before the operation is cancelled.
        case timeout(remaining: Duration)
        /// `toThread` or `runInExecutor`: a job on (or queued for) a blocking pool's thread.
        case blockingJob
        /// A ``SpindleChannel``'s `send` waiting for room (`isSend`) or `receive` waiting for an
        /// element; `channel` is the channel's address, the same for every task waiting on it.
        case channel(isSend: Bool, channel: UInt)

        /// The wait as a phrase for the dump: "recv on descriptor 7", "sleep (12 ms left)",
        /// "blocking-pool job", ...
        public var description: String {
            switch self {
            case .io(let operation, let descriptor): return "\(operation) on descriptor \(descriptor)"
            case .sleep(let remaining): return "sleep (\(Self.format(remaining)) left)"
            case .timeout(let remaining): return "withTimeout (\(Self.format(remaining)) left)"
            case .blockingJob: return "blocking-pool job"
            case .channel(let isSend, let channel):
                return "channel \(isSend ? "send" : "receive") (channel 0x\(String(channel, radix: 16)))"
            }
        }

        static func format(_ duration: Duration) -> String {
            let milliseconds = Double(duration.components.seconds) * 1e3
                + Double(duration.components.attoseconds) / 1e15
            return milliseconds.magnitude >= 1000
                ? "\((milliseconds / 100).rounded() / 10) s" : "\(milliseconds.rounded()) ms"
        }

    }

    /// One line of the dump: the id, the name (or "(unnamed)"), the age and the state, as in
    /// "task 3 'accept', age 1.2 s: suspended in accept on descriptor 5".
    public var description: String {
        let label = name.map { "'\($0)'" } ?? "(unnamed)"
        return "task \(id) \(label), age \(Wait.format(age)): \(state)"
    }
}

extension TaskSnapshot {
    /// Go's SIGQUIT dump, as text: a header line and one line per task, oldest first.
    public static func format(_ tasks: [TaskSnapshot], title: String) -> String {
        var text = "\(title): \(tasks.count) spawned task\(tasks.count == 1 ? "" : "s")\n"
        for task in tasks.sorted(by: { $0.age > $1.age }) { text += "  \(task)\n" }
        return text
    }
}

extension TaskRegistry {
    /// Snapshots of the live tasks. `runningOn` says which thread runs the task at an address
    /// (a worker's index, nil for a loop), or nothing if none does. `timerNow` is the present
    /// on the clock of the executor's timers (a virtual loop's differs), for the time a sleep
    /// or timeout has left; ages are real time.
    func snapshots(timerNow: UInt64 = monotonicNanos(), runningOn: (UInt) -> Int??) -> [TaskSnapshot] {
        let now = monotonicNanos()
        return liveTasks().map { record, task in
            let state: TaskSnapshot.State
            if let worker = runningOn(task) {
                state = .running(worker: worker)
            } else if record.owner.load(ordering: .relaxed) == 0 {
                state = .queued
            } else if let wait = TaskSnapshot.Wait(word: record.wait.load(ordering: .relaxed), now: timerNow) {
                state = .suspended(wait)
            } else {
                state = .notRunning
            }
            return TaskSnapshot(
                id: record.id, name: record.name,
                age: .nanoseconds(Int64(clamping: now &- min(now, record.spawnedAt))), state: state)
        }
    }
}

extension TaskSnapshot.Wait {
    /// Decodes a `TaskWait` word; nil for 0 (no wait).
    init?(word: UInt64, now: UInt64) {
        let detail = word & TaskWait.detailMask
        func remaining() -> Duration {
            detail == TaskWait.detailMask ? .seconds(Int64.max / 2) : .nanoseconds(Int64(detail) - Int64(now))
        }
        switch TaskWait.Kind(rawValue: word >> TaskWait.kindShift) {
        case nil:
            return nil
        case .io:
            let opcode = UInt8(truncatingIfNeeded: detail >> 32)
            let name = Ring.requiredOperations.first { UInt8($0.0.rawValue) == opcode }?.1.lowercased()
            self = .io(operation: name ?? "io_uring opcode \(opcode)", descriptor: Int32(bitPattern: UInt32(truncatingIfNeeded: detail)))
        case .sleep:
            self = .sleep(remaining: remaining())
        case .timeout:
            self = .timeout(remaining: remaining())
        case .blockingJob:
            self = .blockingJob
        case .channelSend:
            self = .channel(isSend: true, channel: UInt(detail))
        case .channelReceive:
            self = .channel(isSend: false, channel: UInt(detail))
        case .readiness:
            self = .io(
                operation: detail >> 32 & 1 == 1 ? "epoll wait for writable" : "epoll wait for readable",
                descriptor: Int32(bitPattern: UInt32(truncatingIfNeeded: detail)))
        }
    }
}
