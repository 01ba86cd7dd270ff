// A global queue of jobs behind a lock. A runtime has two (RuntimeShared.swift): the injector,
// which holds the overflow and the spill of full local queues (Worker+Placement.swift) and what
// the blocked-worker watch hands off, and the remote queue, for jobs enqueued from threads that
// are not workers of this runtime.
//
// A mutex-protected FIFO ring with an atomic length beside it, so the common checks ("is there
// anything?") never take the lock. Batches go in and out under one lock acquisition. Tokio and
// Go use the same shape; contention is low because workers only come here every 61 ticks, when
// their own queue is empty, or on overflow.

import Synchronization

final class Injector: Sendable {
    private let queue = Lock(JobDeque(capacity: 1024))
    /// A hint of the queue's length. Updated inside the lock; read without it.
    /// Ordering: writers store it with release inside the lock after changing the queue; a
    /// reader that sees a non-zero value then takes the lock, whose acquire makes the jobs
    /// visible. A stale zero is tolerated by the parking protocol (see Idle.swift): the pusher
    /// notifies after pushing, and the last searcher re-checks with sequentially consistent
    /// loads before sleeping.
    private let length = Atomic<Int>(0)

    var count: Int { length.load(ordering: .sequentiallyConsistent) }
    var isEmpty: Bool { count == 0 }

    func push(_ job: UnownedJob) {
        queue.withLock { queue in
            queue.append(job)
            length.store(queue.count, ordering: .sequentiallyConsistent)
        }
    }

    /// Pushes `count` jobs produced by `job(i)` in order, under one lock acquisition.
    func push(count: Int, _ job: (Int) -> UnownedJob) {
        queue.withLock { queue in
            for i in 0..<count { queue.append(job(i)) }
            length.store(queue.count, ordering: .sequentiallyConsistent)
        }
    }

    /// Puts `jobs` in order before everything queued (they are older than what is here: the
    /// queue of a blocked worker, handed off by the watch).
    func pushFront(_ jobs: [UnownedJob]) {
        if jobs.isEmpty { return }
        queue.withLock { queue in
            for job in jobs.reversed() { queue.prepend(job) }
            length.store(queue.count, ordering: .sequentiallyConsistent)
        }
    }

    func pop() -> UnownedJob? {
        if isEmpty { return nil }
        return queue.withLock { queue in
            let job = queue.popFirst()
            length.store(queue.count, ordering: .sequentiallyConsistent)
            return job
        }
    }

    /// Pops one job to return and offers up to `max - 1` more, oldest first, to `fill` through
    /// the `next` function it is given, all under one lock acquisition.
    func popBatch(max: Int, fill: (_ next: () -> UnownedJob?) -> Void) -> UnownedJob? {
        if isEmpty { return nil }
        return queue.withLock { queue in
            guard let first = queue.popFirst() else { return nil }
            var remaining = max - 1
            fill {
                guard remaining > 0 else { return nil }
                remaining -= 1
                return queue.popFirst()
            }
            length.store(queue.count, ordering: .sequentiallyConsistent)
            return first
        }
    }
}
