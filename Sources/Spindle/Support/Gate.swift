// A one-way gate threads can block on: closed until `open()`, then open for good.
// Used to wait for worker start-up and for threads to finish, off the async world.

import Glibc

final class Gate: @unchecked Sendable {
    // @unchecked Sendable: `isOpen` is only read or written with `mutex` held, and the pthread
    // objects live at stable heap addresses for the lifetime of the gate.
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let condition: UnsafeMutablePointer<pthread_cond_t>
    private var isOpen = false

    init() {
        mutex = .allocate(capacity: 1)
        condition = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        pthread_cond_init(condition, &attributes)
        pthread_condattr_destroy(&attributes)
    }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        condition.deallocate()
        mutex.deallocate()
    }

    func open() {
        pthread_mutex_lock(mutex)
        isOpen = true
        pthread_cond_broadcast(condition)
        pthread_mutex_unlock(mutex)
    }

    /// Blocks until the gate opens or `deadline` (CLOCK_MONOTONIC nanoseconds) passes.
    /// Returns whether the gate is open.
    @discardableResult
    func wait(deadline: UInt64 = .max) -> Bool {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        while !isOpen {
            if deadline == .max {
                pthread_cond_wait(condition, mutex)
            } else {
                var spec = timespec(tv_sec: Int(deadline / 1_000_000_000), tv_nsec: Int(deadline % 1_000_000_000))
                if pthread_cond_timedwait(condition, mutex, &spec) == ETIMEDOUT { return isOpen }
            }
        }
        return true
    }
}
