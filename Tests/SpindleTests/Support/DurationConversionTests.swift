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
