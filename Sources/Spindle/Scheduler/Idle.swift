// Which workers are parked and how many are searching (stealing), and the rules that decide
// when a parked worker is woken.
//
// The protocol (Tokio's, which is Go's "spinning M" dance):
// - New work wakes a parked worker only if no worker is searching and some worker is parked.
//   A searcher will find the work; waking another would be a herd.
// - A woken worker starts out searching. When a searcher finds work and stops searching, and it
//   was the last searcher, it wakes one more parked worker: parallelism spreads one worker at a
//   time, each wake justified by work that was really found.
// - At most half the workers search at once; the rest park straight away.
// - No lost wake-ups: a worker about to park first records itself as parked (under the lock),
//   and if it was the last searcher it re-checks every queue afterwards. A pusher publishes its
//   job and then reads `state`. Both sides use sequentially consistent operations on `state`
//   and on the queues' length hints, so either the pusher sees the parked/non-searching state
//   and wakes someone, or the parking worker's re-check sees the job. A worker that parks
//   without being a searcher does so only because searchers exist, and the last of those will
//   re-check.
//
// `state` packs the number of searching workers (low 32 bits) and of unparked workers (high 32
// bits) so both can be read in one load. `sleepers` is the list of parked worker indices; it is
// only touched on the slow paths (park, unpark), under its lock.

import Synchronization

final class Idle: Sendable {
    private let workerCount: Int
    private let state: Atomic<UInt64>
    private let sleepers: Lock<[Int]>

    private static let unparkedUnit: UInt64 = 1 << 32
    private static let searchingMask: UInt64 = 0xFFFF_FFFF

    init(workerCount: Int) {
        self.workerCount = workerCount
        state = Atomic(UInt64(workerCount) * Self.unparkedUnit)
        var list: [Int] = []
        list.reserveCapacity(workerCount)
        sleepers = Lock(list)
    }

    var searchingCount: Int { Int(state.load(ordering: .sequentiallyConsistent) & Self.searchingMask) }
    var unparkedCount: Int { Int(state.load(ordering: .sequentiallyConsistent) >> 32) }

    /// A worker may start searching only while fewer than half the workers search.
    func tryStartSearching() -> Bool {
        let current = state.load(ordering: .sequentiallyConsistent)
        if 2 * Int(current & Self.searchingMask) >= workerCount { return false }
        // Overshooting the limit by a racing worker is harmless (it only costs a steal attempt).
        state.wrappingAdd(1, ordering: .sequentiallyConsistent)
        return true
    }

    /// Returns true if the caller was the last searcher (and must then wake another worker).
    func stopSearching() -> Bool {
        let previous = state.wrappingSubtract(1, ordering: .sequentiallyConsistent).oldValue
        return previous & Self.searchingMask == 1
    }

    /// The wake-up rule: nobody searching, somebody parked.
    private func shouldNotify() -> Bool {
        let current = state.load(ordering: .sequentiallyConsistent)
        return current & Self.searchingMask == 0 && Int(current >> 32) < workerCount
    }

    /// Picks a parked worker to wake, marking it unparked and searching, or nil when the rule
    /// says no wake is needed. The caller must then wake that worker.
    func workerToNotify() -> Int? {
        if !shouldNotify() { return nil }  // fast path: one load, no lock
        return sleepers.withLock { sleepers in
            if !shouldNotify() { return nil }
            guard let index = sleepers.popLast() else { return nil }
            // Sequentially consistent: pairs with the loads in shouldNotify of other pushers.
            state.wrappingAdd(Self.unparkedUnit + 1, ordering: .sequentiallyConsistent)
            return index
        }
    }

    /// Picks any parked worker regardless of searchers (used when a parked worker must
    /// recompute its timeout, e.g. an earlier timer arrived from another thread). Like every
    /// worker woken on purpose, it is counted as unparked and searching: `workerDidUnpark`
    /// tells it so, and it will stop searching exactly once. (Counting it unparked only made
    /// that later stop wrap the searching count, after which no wake-up was ever sent.)
    func anySleeper() -> Int? {
        sleepers.withLock { sleepers in
            guard let index = sleepers.popLast() else { return nil }
            state.wrappingAdd(Self.unparkedUnit + 1, ordering: .sequentiallyConsistent)
            return index
        }
    }

    /// Records `index` as parked. Returns true if it was the last searcher, in which case the
    /// caller must re-check every queue before sleeping.
    func workerWillPark(_ index: Int, isSearching: Bool) -> Bool {
        sleepers.withLock { sleepers in
            sleepers.append(index)
            let decrement = Self.unparkedUnit + (isSearching ? 1 : 0)
            let previous = state.wrappingSubtract(decrement, ordering: .sequentiallyConsistent).oldValue
            return isSearching && previous & Self.searchingMask == 1
        }
    }

    /// Called by a worker returning from its park. Returns true if another thread woke it on
    /// purpose (it was removed from the sleepers and counted as searching by that thread);
    /// false if it woke on its own (timer, I/O, spurious) and has now removed itself.
    func workerDidUnpark(_ index: Int) -> Bool {
        sleepers.withLock { sleepers in
            guard let position = sleepers.firstIndex(of: index) else { return true }
            sleepers.remove(at: position)
            state.wrappingAdd(Self.unparkedUnit, ordering: .sequentiallyConsistent)
            return false
        }
    }
}
