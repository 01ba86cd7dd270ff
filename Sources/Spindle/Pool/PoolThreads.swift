// The OS threads of a blocking pool: which are running, which have exited and still need a
// join, and whether shutdown has given up on the running ones (detached them).
//
// A thread that retires (its keep-alive ran out) detaches itself: nobody waits for it, and a
// finished thread that is never joined keeps its stack. A thread that exits because the pool
// closed files its handle under `exited` instead, and the shutdown joins it, so that when
// shutdown returns those threads are gone. Shutdown detaches the threads still running a job
// when its grace period ends: nothing is left joinable, and nothing is waited for forever.
//
// All of it lives behind the pool's thread lock, which only thread start, thread exit and
// shutdown take: never the submission of a job.

import Glibc

struct PoolThreads {
    /// Threads started and not yet exited, with their kernel thread ids once they have
    /// registered them (for the growth monitor).
    private(set) var running: [pthread_t: Int32?] = [:]
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
            running[handle] = .some(nil)
        }
    }

    /// Records the calling thread's kernel id (first thing a pool thread does). A thread id,
    /// unlike a pthread_t, is harmless to use after the thread is gone: its /proc entry is
    /// simply missing.
    mutating func register(_ handle: pthread_t, threadID: Int32) {
        if running[handle] != nil { running[handle] = .some(threadID) }
    }

    /// The running threads' kernel ids, nil for one that has not registered yet.
    var threadIDs: [Int32?] { Array(running.values) }

    /// Files the exit of a thread that is not one of `running` (the growth monitor).
    mutating func exitingHelper(_ handle: pthread_t, joinable: Bool) {
        if joinable && !detached {
            exited.append(handle)
        } else {
            pthread_detach(handle)
        }
    }

    /// Records the calling pool thread's exit: it detaches itself, or (`joinable`) leaves its
    /// handle for the shutdown to join.
    mutating func exiting(_ handle: pthread_t, joinable: Bool) {
        running.removeValue(forKey: handle)
        if detached { return }  // shutdown gave up on it and detached it already
        if joinable {
            exited.append(handle)
        } else {
            pthread_detach(handle)
        }
    }

    /// Hands back the exited joinable threads for the caller to join (outside the lock).
    mutating func takeExited() -> [pthread_t] {
        defer { exited.removeAll() }
        return exited
    }

    /// Shutdown's last resort: detaches every running thread. Returns how many there were.
    mutating func detachRunning() -> Int {
        detached = true
        for handle in running.keys { pthread_detach(handle) }
        return running.count
    }
}
