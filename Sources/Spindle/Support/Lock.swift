// A value behind a pthread mutex.
//
// Why not `Synchronization.Mutex`: on Linux its lock and unlock paths are compiled into the
// standard library, which the thread sanitizer does not instrument, so TSan cannot see the
// happens-before edge a Mutex creates and reports every access it protects as a race. pthread
// mutexes are intercepted by TSan, so our stress tests stay meaningful under `--sanitize=thread`.
// The uncontended cost is the same (one atomic exchange each way).

import Glibc

@usableFromInline
final class Lock<Value: ~Copyable>: @unchecked Sendable {
    // @unchecked Sendable: `value` is only accessed between pthread_mutex_lock and
    // pthread_mutex_unlock on `mutex`, which lives at a stable heap address for the lock's life.
    @usableFromInline let mutex: UnsafeMutablePointer<pthread_mutex_t>
    @usableFromInline var value: Value

    @inlinable
    init(_ value: consuming Value) {
        self.value = value
        mutex = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    @inlinable @inline(__always)
    func withLock<Result>(_ body: (inout Value) throws -> Result) rethrows -> Result {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&value)
    }
}
