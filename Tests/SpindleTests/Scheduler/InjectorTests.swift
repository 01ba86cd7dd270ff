import Glibc
import Synchronization
import Testing
@testable import Spindle

@Suite struct InjectorTests {
    @Test func pushFrontPutsOlderJobsFirstInOrder() {
        let injector = Injector()
        injector.push(count: 3) { token(10 + $0) }
        injector.pushFront((0..<5).map(token))
        var order: [Int] = []
        while let job = injector.pop() { order.append(tokenIndex(job)) }
        #expect(order == [0, 1, 2, 3, 4, 10, 11, 12])
    }

    @Test func growsPastItsInitialCapacityFromBothEnds() {
        let injector = Injector()
        injector.push(count: 1500) { token(2000 + $0) }
        injector.pushFront((0..<1500).map(token))
        var expected = 0
        var ok = true
        while let job = injector.pop() {
            let index = tokenIndex(job)
            let want = expected < 1500 ? expected : 2000 + expected - 1500
            ok = ok && index == want
            expected += 1
        }
        #expect(ok)
        #expect(expected == 3000)
    }
}
