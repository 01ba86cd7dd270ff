// The OS threads of a blocking pool: which are running, which have exited and still need a
// join, and whether shutdown has given up on the running ones (detached them).
//
// Pool threads come and go on their own (keep-alive), so nobody is waiting to join one the
// moment it exits. An exiting thread files its handle under `exited`, and the next thread
// start or the shutdown joins it (the thread is at most a few instructions from gone by then).
// Shutdown joins every thread that exits within the grace period and detaches the rest, so
// nothing is left joinable and nothing is waited for forever.
//
// All of it lives behind the pool's thread lock, which only thread start, thread exit and
// shutdown take: never the submission of a job.

import Glibc

struct PoolThreads {
    /// Threads started and not yet exited.
    private(set) var running: Set<pthread_t> = []
    /// Threads that have exited (or are a few instructions from it) and need a join.
    private var exited: [pthread_t] = []
    /// Set by a shutdown that gave up waiting: running threads are detached, not joined.
    private(set) var detached = false

    /// Records a thread just started by the caller (who holds the lock across its creation, so
    /// the thread cannot record its own exit first).
    mutating func started(_ handle: pthread_t) {
        if detached {
            pthread_detach(handle)
        } else {
            running.insert(handle)
        }
    }

    /// Records the calling pool thread's exit.
    mutating func exiting(_ handle: pthread_t) {
        running.remove(handle)
        // A detached thread needs nobody; a joinable one waits for a join.
        if !detached { exited.append(handle) }
    }

    /// Hands back the exited threads for the caller to join (outside the lock).
    mutating func takeExited() -> [pthread_t] {
        defer { exited.removeAll() }
        return exited
    }

    /// Shutdown's last resort: detaches every running thread. Returns how many there were.
    mutating func detachRunning() -> Int {
        detached = true
        for handle in running { pthread_detach(handle) }
        return running.count
    }
}
