// The floor: the least an executor can do. One pthread, one mutex-guarded array of jobs that
// the thread swaps out whole and drains, a condition variable the thread sleeps on, signalled
// only when it sleeps (signalling on every enqueue costs 2-10x in futex churn, see
// shared/reference/swift-concurrency-on-linux.md section 1).
//
// A runtime slower than this on a workload pays for something it should not; one faster has
// found a real trick (no lock on the spawning thread, batching, locality).

import Glibc

final class FloorExecutor: TaskExecutor, @unchecked Sendable {
    // @unchecked Sendable: `pending`, `sleeping` and `stopping` are read and written only with
    // `mutex` held; `thread` is written in init and read by `shutdown`, on the creating thread.

    /// Owned by this object, freed in deinit (after the thread was joined).
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let wakeup = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private var pending: [UnownedJob] = []
    private var sleeping = false
    private var stopping = false
    private var thread = pthread_t()

    init() {
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(wakeup, nil)
        pending.reserveCapacity(1024)
        // The thread holds a +1 reference until it exits.
        let context = Unmanaged.passRetained(self).toOpaque()
        let status = pthread_create(&thread, nil, { context in
            let executor = Unmanaged<FloorExecutor>.fromOpaque(context!).takeRetainedValue()
            executor.drainUntilStopped()
            return nil
        }, context)
        precondition(status == 0, "pthread_create failed: \(status)")
    }

    deinit {
        pthread_cond_destroy(wakeup)
        pthread_mutex_destroy(mutex)
        wakeup.deallocate()
        mutex.deallocate()
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        pthread_mutex_lock(mutex)
        pending.append(job)
        let wasSleeping = sleeping
        sleeping = false
        pthread_mutex_unlock(mutex)
        if wasSleeping { pthread_cond_signal(wakeup) }
    }

    /// Runs the jobs already queued (and those they enqueue), then stops the thread.
    func shutdown() {
        pthread_mutex_lock(mutex)
        stopping = true
        let wasSleeping = sleeping
        sleeping = false
        pthread_mutex_unlock(mutex)
        if wasSleeping { pthread_cond_signal(wakeup) }
        pthread_join(thread, nil)
    }

    private func drainUntilStopped() {
        var batch: [UnownedJob] = []
        batch.reserveCapacity(1024)
        let executor = asUnownedTaskExecutor()
        while true {
            pthread_mutex_lock(mutex)
            while pending.isEmpty && !stopping {
                sleeping = true
                pthread_cond_wait(wakeup, mutex)
            }
            if pending.isEmpty {  // and stopping
                pthread_mutex_unlock(mutex)
                return
            }
            swap(&batch, &pending)
            pthread_mutex_unlock(mutex)
            for job in batch { job.runSynchronously(on: executor) }
            batch.removeAll(keepingCapacity: true)
        }
    }
}
