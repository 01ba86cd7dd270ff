// A counting semaphore over POSIX `sem_t`. `sem_post` and an uncontended `sem_wait` are one
// atomic operation each on the semaphore's own word (no user-space lock), and a waiter sleeps
// in a futex, so many threads can signal it at once without queueing on a mutex. The blocking
// pool's idle threads sleep on one.
//
// The thread sanitizer intercepts sem_post / sem_wait / sem_timedwait, so it sees the edge from
// a post to the wait it ends.

import Glibc

final class Semaphore: @unchecked Sendable {
    // @unchecked Sendable: the sem_t lives at a stable heap address for the object's whole life
    // and is only touched through the sem_* functions, which are thread-safe.
    private let semaphore: UnsafeMutablePointer<sem_t>

    init() {
        semaphore = .allocate(capacity: 1)
        sem_init(semaphore, 0, 0)
    }

    deinit {
        sem_destroy(semaphore)
        semaphore.deallocate()
    }

    /// Adds `count` permits, waking up to `count` waiters.
    func signal(count: Int = 1) {
        for _ in 0..<count { sem_post(semaphore) }
    }

    /// Takes a permit, sleeping until one is available.
    func wait() {
        while sem_wait(semaphore) != 0 {}  // only EINTR can fail it
    }

    /// Takes a permit, sleeping until one is available or `deadline` (CLOCK_MONOTONIC
    /// nanoseconds) passes. Returns whether it took one.
    func wait(deadline: UInt64) -> Bool {
        while true {
            let now = monotonicNanos()
            if now >= deadline { return sem_trywait(semaphore) == 0 }
            // sem_timedwait wants a CLOCK_REALTIME deadline (glibc's sem_clockwait is not
            // visible to Swift). Waiting in slices of at most a second bounds what a jump of the
            // wall clock can do to us; the loop re-checks the monotonic deadline after each.
            let slice = min(deadline - now, 1_000_000_000)
            var spec = timespec()
            clock_gettime(CLOCK_REALTIME, &spec)
            let nanoseconds = UInt64(spec.tv_nsec) + slice
            spec.tv_sec += Int(nanoseconds / 1_000_000_000)
            spec.tv_nsec = Int(nanoseconds % 1_000_000_000)
            if sem_timedwait(semaphore, &spec) == 0 { return true }
            // ETIMEDOUT or EINTR: go round and look at the monotonic clock again.
        }
    }
}
