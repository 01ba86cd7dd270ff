// The blocking pool's FIFO of jobs waiting for a thread: Dmitry Vyukov's intrusive
// multi-producer queue. Submitting is wait-free, one atomic exchange and one store, with no
// lock, so tasks on every worker can submit at once without queueing behind each other.
// Taking is done by pool threads under a small lock of their own (the algorithm allows one
// consumer at a time); submitters never touch it.
//
// Shape: a singly linked list from `oldest` (the consumers' end) to `newest` (the producers'
// end), threaded through the jobs' own `next` fields. A permanent stub node lets the list be
// "empty" without a nil end: when a consumer is about to take the last real node it links the
// stub behind it first.
//
// Push: `previous = newest.exchange(node)`, then `previous.next = node`. Between the two steps
// the node is in the queue but not reachable from `oldest`; a consumer that meets that gap
// reports `busy` and retries (the producer is two instructions from done). `empty` is reported
// only after a sequentially consistent load of `newest` that still shows the stub: that load
// and the producer's sequentially consistent exchange are what the pool's "queue, then check
// for idle threads" / "become idle, then check the queue" handshake relies on.
//
// Ownership: a pushed job is retained (+1) by the queue until a consumer takes it out
// (`takeRetainedValue`). The stub is owned by the queue and never retained through it.

import Glibc
import Synchronization

final class JobQueue: @unchecked Sendable {
    // @unchecked Sendable: `newest` and every node's `next` are atomics; `oldest` is only read
    // or written under its lock; `stub` is immutable.
    private let stub = BlockingJob()
    private let stubPointer: UnsafeMutableRawPointer
    /// The producers' end: the node pushed last, or the stub.
    private let newest: Atomic<UnsafeMutableRawPointer>
    /// The consumers' end: the next node to take, or the stub.
    private let oldest: Lock<UnsafeMutableRawPointer>

    init() {
        stubPointer = Unmanaged.passUnretained(stub).toOpaque()
        newest = Atomic(stubPointer)
        oldest = Lock(stubPointer)
    }

    deinit {
        while pop() != nil {}  // releases the jobs still linked (tombstones)
    }

    /// Appends `job`. Wait-free; callable from any thread.
    func push(_ job: BlockingJob) {
        link(Unmanaged.passRetained(job).toOpaque())
    }

    /// Removes and returns the oldest job, or nil when the queue is empty. Takes the
    /// consumers' lock.
    func pop() -> BlockingJob? {
        oldest.withLock { oldest in
            while true {
                switch step(&oldest) {
                case .job(let job): return job
                case .empty: return nil
                case .busy: sched_yield()  // a producer is between its exchange and its link
                }
            }
        }
    }

    /// Whether the queue holds no job (tombstones count as jobs). Takes the consumers' lock.
    var isEmpty: Bool {
        oldest.withLock { oldest in
            // Sequentially consistent: see the file comment.
            oldest == stubPointer && Self.next(of: oldest) == nil
                && newest.load(ordering: .sequentiallyConsistent) == stubPointer
        }
    }

    private enum Step {
        case job(BlockingJob)
        case empty
        case busy
    }

    /// One attempt of Vyukov's pop. Caller holds the consumers' lock.
    private func step(_ oldest: inout UnsafeMutableRawPointer) -> Step {
        var first = oldest
        var next = Self.next(of: first)
        if first == stubPointer {
            guard let after = next else {
                // Sequentially consistent: the "is it empty" load of the handshake.
                return newest.load(ordering: .sequentiallyConsistent) == stubPointer ? .empty : .busy
            }
            oldest = after
            first = after
            next = Self.next(of: after)
        }
        if let after = next {
            oldest = after
            return .job(Unmanaged<BlockingJob>.fromOpaque(first).takeRetainedValue())
        }
        // `first` is the last linked node. Unless a producer is mid-push behind it, put the
        // stub behind it so that it can be taken out.
        if newest.load(ordering: .sequentiallyConsistent) != first { return .busy }
        link(stubPointer)
        if let after = Self.next(of: first) {
            oldest = after
            return .job(Unmanaged<BlockingJob>.fromOpaque(first).takeRetainedValue())
        }
        return .busy  // another producer got in between; its link will appear
    }

    private func link(_ node: UnsafeMutableRawPointer) {
        // Relaxed: published by the release store into the previous node below. (Matters for
        // the stub, which is linked repeatedly; a fresh job's link is already nil.)
        Unmanaged<BlockingJob>.fromOpaque(node)._withUnsafeGuaranteedRef {
            $0.next.store(nil, ordering: .relaxed)
        }
        // Sequentially consistent: the submitter's half of the handshake in the file comment;
        // it is also a release of everything the producer wrote to the node.
        let previous = newest.exchange(node, ordering: .sequentiallyConsistent)
        // Release: a consumer that loads this link (acquire) sees the node's contents. The
        // previous node stays alive until then: no consumer can take it before its link is set.
        Unmanaged<BlockingJob>.fromOpaque(previous)._withUnsafeGuaranteedRef {
            $0.next.store(node, ordering: .releasing)
        }
    }

    private static func next(of node: UnsafeMutableRawPointer) -> UnsafeMutableRawPointer? {
        // Acquire: pairs with the release store in `link`.
        Unmanaged<BlockingJob>.fromOpaque(node)._withUnsafeGuaranteedRef { $0.next.load(ordering: .acquiring) }
    }
}
