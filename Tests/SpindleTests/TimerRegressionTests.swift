import Testing
@testable import Spindle

@Suite struct DurationConversionTests {
    @Test func pastDeadlinesClampToZeroInsteadOfTrapping() {
        #expect(Duration.milliseconds(-1).clampedNanoseconds == 0)
        #expect(Duration.nanoseconds(-1).clampedNanoseconds == 0)
        #expect(Duration.seconds(-5).clampedNanoseconds == 0)
        #expect(Duration.zero.clampedNanoseconds == 0)
        #expect(Duration.milliseconds(1500).clampedNanoseconds == 1_500_000_000)
        #expect(Duration.seconds(Int64.max).clampedNanoseconds == UInt64(Int64.max))
    }
}

extension SpindleTests {
    @Suite struct PastDeadlineTests {
        @Test func sleepUntilAPastInstantReturnsAtOnce() async throws {
            let ok = try await Runtime.run(workers: 2) { () -> Bool in
                try await Task.sleep(until: .now - .milliseconds(500), clock: .continuous)
                try await Task.sleep(for: .nanoseconds(-10))
                return true
            }
            #expect(ok)
            let loopOK = try await EventLoop.run { () -> Bool in
                try await Task.sleep(until: .now - .milliseconds(500), clock: .continuous)
                return true
            }
            #expect(loopOK)
        }
    }
}
