import Glibc
import Synchronization
import Testing
@testable import Spindle

@Suite struct IdleTests {
    /// A worker woken to recompute its timer must count as a searcher, so that its later
    /// `stopSearching` balances (the searching count must never wrap).
    @Test func wakingAnySleeperKeepsTheSearchingCountBalanced() {
        let idle = Idle(workerCount: 2)
        #expect(idle.workerWillPark(1, isSearching: false) == false)
        #expect(idle.anySleeper() == 1)
        #expect(idle.workerDidUnpark(1))  // woken on purpose: it now searches
        #expect(idle.searchingCount == 1)
        _ = idle.stopSearching()
        #expect(idle.searchingCount == 0)
        #expect(idle.unparkedCount == 2)
        // The wake-up rule still works afterwards.
        #expect(idle.workerWillPark(0, isSearching: false) == false)
        #expect(idle.workerToNotify() == 0)
    }

    @Test func notifyWakesOnlyWhenNobodySearches() {
        let idle = Idle(workerCount: 3)
        _ = idle.workerWillPark(2, isSearching: false)
        #expect(idle.tryStartSearching())
        #expect(idle.workerToNotify() == nil)  // a searcher will find the work
        #expect(idle.stopSearching())          // last searcher
        #expect(idle.workerToNotify() == 2)
        #expect(idle.workerToNotify() == nil)  // the woken worker searches now
    }
}
