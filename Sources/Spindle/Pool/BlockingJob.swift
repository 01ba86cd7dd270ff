// One closure submitted to a blocking pool, and the state machine that decides, exactly once,
// who answers the task awaiting it.
//
//     created ──submit──► queued ──a pool thread claims it──► running ──► (resumed with its outcome)
//        │                  │
//        └──cancel──────────┴──cancel / shutdown──► cancelled (resumed with an error)
//
// Every transition is a compare-and-swap on `state`, so a cancellation racing with a pool
// thread picking the job up has exactly one winner: the thread runs it, or the canceller
// answers with CancellationError; never both, never neither. Whoever moves the job out of
// `queued` owns its payload (body and continuation) from then on.
//
// A cancelled job stays in the queue as a tombstone (a pool thread drops it when it reaches
// it); removing it from the middle of the lock-free queue is not possible. It keeps its
// closure alive until then, which is the only cost.
//
// The job is also the queue's node: `next` is the link JobQueue uses, so a submission
// allocates one object.

import Synchronization

class BlockingJob: @unchecked Sendable {
    // @unchecked Sendable: `next` and `state` are atomics. The payload of a TypedBlockingJob is
    // written by the submitter before its `created -> queued` release and read only by the
    // single thread whose compare-and-swap later moves the job out of `queued` (acquire).

    static let created = 0, queued = 1, running = 2, cancelled = 3

    /// The next job in a JobQueue (nil at the newest end).
    let next = Atomic<UnsafeMutableRawPointer?>(nil)
    let state = Atomic<Int>(BlockingJob.created)

    /// The submitter: created -> queued. False if the job was cancelled before it got here; the
    /// submitter then answers the task itself.
    func markQueued() -> Bool {
        // Release: publishes the continuation stored just before to whoever later wins the job.
        // Acquire (on failure too): nothing to read, but harmless.
        state.compareExchange(expected: Self.created, desired: Self.queued, ordering: .acquiringAndReleasing).exchanged
    }

    /// A pool thread: queued -> running. True when the caller now owns the job.
    func claim() -> Bool {
        // Acquire: pairs with the submitter's release in `markQueued`, so the body and the
        // continuation are visible to the thread that runs them.
        state.compareExchange(expected: Self.queued, desired: Self.running, ordering: .acquiringAndReleasing).exchanged
    }

    /// Cancels the job if it has not started. Returns the state it left: `queued` means the
    /// caller now owns the job and must answer the task; `created` means the submitter will
    /// (it sees the cancellation when it tries to queue the job); nil means it already runs,
    /// or was cancelled before.
    func cancel() -> Int? {
        // Acquire: only a first guess; the compare-and-swap below decides and orders.
        var current = state.load(ordering: .acquiring)
        while current == Self.created || current == Self.queued {
            // Acquire on success: pairs with the submitter's release, as in `claim`.
            let (exchanged, original) = state.compareExchange(
                expected: current, desired: Self.cancelled, ordering: .acquiringAndReleasing)
            if exchanged { return current }
            current = original
        }
        return nil
    }

    /// Runs the body, calls `finished`, then resumes the awaiting task with the body's outcome
    /// (so whoever the task tells sees what `finished` recorded). Owner only.
    func run(_ finished: () -> Void) {
        fatalError("BlockingJob.run: the queue's stub is never run")
    }

    /// Resumes the awaiting task with `error` without running the body. Owner only.
    func resume(throwing error: any Error) {
        fatalError("BlockingJob.resume: the queue's stub is never resumed")
    }
}

final class TypedBlockingJob<Success: Sendable>: BlockingJob, @unchecked Sendable {
    // @unchecked Sendable: see BlockingJob; `continuation` is set once, before `markQueued`.
    private let body: @Sendable () throws -> Success
    // Checked rather than unsafe: a pool thread often resumes before the awaiting task has
    // finished suspending, which Swift allows, but an UnsafeContinuation resumed that early
    // makes the thread sanitizer report a race inside Swift's own continuation code (it cannot
    // see the runtime's atomics). The checked one's extra allocation is small beside the
    // thread hand-off. (Reproduced without the pool: any foreign-thread early resume.)
    var continuation: CheckedContinuation<Success, any Error>?

    init(_ body: @escaping @Sendable () throws -> Success) {
        self.body = body
    }

    override func run(_ finished: () -> Void) {
        let result = Result { try body() }
        finished()
        continuation!.resume(with: result)
    }

    override func resume(throwing error: any Error) {
        continuation!.resume(throwing: error)
    }
}
