// Counters written by one thread at a time and read as approximate snapshots by any.
//
// A relaxed load and a relaxed store: a plain move on x86-64 and arm64, no read-modify-write,
// no lock. Correct only while one thread at a time writes the counter (each user says which
// thread, or what orders its writers); readers load it relaxed, so a snapshot is approximate
// across counters (each value is exact for some recent moment), which is what counters are for.

import Synchronization

extension Atomic where Value == UInt64 {
    /// Single-writer increment: relaxed load + relaxed store .
    @inline(__always)
    func bump(by amount: UInt64 = 1) {
        store(load(ordering: .relaxed) &+ amount, ordering: .relaxed)
    }

    /// Single-writer maximum.
    @inline(__always)
    func raise(to value: UInt64) {
        if value > load(ordering: .relaxed) { store(value, ordering: .relaxed) }
    }
}
