import Testing
@testable import Spindle

extension SpindleTests {
    @Suite struct PastDeadlineTests {
        @Test func sleepUntilAPastInstantReturnsAtOnce() async throws {
            let ok = try await Runtime.run(workers: 2) { () -> Bool in
                try await Task.sleep(until: .now - .milliseconds(500), clock: .continuous)
                try await Task.sleep(for: .nanoseconds(-10))
                return true
            }
            #expect(ok)
            let loopOK = try await SpindleEventLoop.run { () -> Bool in
                try await Task.sleep(until: .now - .milliseconds(500), clock: .continuous)
                return true
            }
            #expect(loopOK)
        }
    }
}
