// A value behind a pthread mutex. Not Synchronization's `Mutex`: on Linux its lock lives in
// the uninstrumented Synchronization library, so the thread sanitizer cannot see the order it
// creates and reports the protected value as raced; it intercepts pthread mutexes. (Spindle's
// own `Lock` is the same for the same reason, but internal to the library.)

import Glibc

final class Locked<Value>: @unchecked Sendable {
    // @unchecked Sendable: `value` is read and written only between pthread_mutex_lock and
    // pthread_mutex_unlock on `mutex`, which lives at a stable heap address for the lock's life.
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private var value: Value

    init(_ value: Value) {
        self.value = value
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        pthread_mutex_init(mutex, nil)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    func withLock<T>(_ body: (inout Value) throws -> T) rethrows -> T {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&value)
    }
}
