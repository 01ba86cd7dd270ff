// A value behind a pthread mutex. Not Synchronization's `Mutex`: on Linux its lock lives in
// the uninstrumented Synchronization library, so the thread sanitizer cannot see the order it
// creates and reports the protected value as raced; it intercepts pthread mutexes.

import Glibc

final class Locked<Value>: @unchecked Sendable {
    // @unchecked Sendable: `value` is read and written only between lock and unlock of `mutex`.
    private var mutex = pthread_mutex_t()
    private var value: Value

    init(_ value: Value) {
        self.value = value
        pthread_mutex_init(&mutex, nil)
    }

    deinit { pthread_mutex_destroy(&mutex) }

    func withLock<T>(_ body: (inout Value) throws -> T) rethrows -> T {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        return try body(&value)
    }
}
