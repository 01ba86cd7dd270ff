// Exactly-once accounting for one round of a workload: slot i counts how many times unit i
// ran (a tree node, a yielding task, a message received, a timer that ended, a pool job).
// A second run of a unit is reported the moment it happens; a unit that never ran is found
// when the round checks its ledger after awaiting everything it started.

import Synchronization

final class Ledger: @unchecked Sendable {
    // @unchecked Sendable: the slots are atomics, initialised in init before the ledger is
    // shared and freed in deinit, when no task holds the ledger any more.
    private let slots: UnsafeMutablePointer<Atomic<UInt32>>
    let count: Int
    private let round: Round
    /// Set for the one round that `--inject-fault double-count` breaks: its unit 0 counts twice.
    private let doubleCountsFirst: Bool

    init(count: Int, round: Round) {
        self.count = count
        self.round = round
        doubleCountsFirst = round.injectsDoubleCount
        slots = .allocate(capacity: max(count, 1))
        for i in 0..<count { (slots + i).initialize(to: Atomic(0)) }
    }

    deinit {
        slots.deinitialize(count: count)
        slots.deallocate()
    }

    /// Records one run of unit `i`; a second run is a violation at once.
    ///
    /// Relaxed: the increment itself is atomic, which is all the double-run check needs; the
    /// round reads the slots only after awaiting every task that marks them, and that await
    /// orders the marks before the reads.
    func mark(_ i: Int) {
        let runs: UInt32 = doubleCountsFirst && i == 0 ? 2 : 1
        let before = slots[i].add(runs, ordering: .relaxed).oldValue
        if before + runs > 1 {
            round.fail("unit \(i) of \(count) ran \(before + runs) times (each must run exactly once)")
        }
    }

    /// How many times unit `i` ran (read after awaiting the tasks that mark it).
    func runs(_ i: Int) -> UInt32 { slots[i].load(ordering: .relaxed) }

    /// How many units ran.
    var ran: Int { (0..<count).reduce(0) { $0 + (runs($1) > 0 ? 1 : 0) } }

    /// Fails the round unless every unit ran exactly once.
    func expectAllRanOnce(_ what: String) {
        for i in 0..<count where runs(i) != 1 {
            round.fail("\(what): unit \(i) of \(count) ran \(runs(i)) times (each must run exactly once); \(ran) ran")
        }
    }
}
