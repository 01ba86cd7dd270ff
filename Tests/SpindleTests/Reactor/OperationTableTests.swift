import CSpindle
import CURing
import Testing
@testable import Spindle

/// Records what a multishot slot delivered (one thread only, like the table).
final class RecordingSink: CompletionSink {
    var results: [Int32] = []
    var ended = 0
    func complete(result: Int32, hasMore: Bool) {
        results.append(result)
        if !hasMore { ended += 1 }
    }
}

/// The table of a ring's operations, without a ring: slots, generations, stale completions and
/// cancels, reuse. Pure and single-threaded, like the table's owner.
@Suite struct OperationTableTests {
    static let more = IORING_CQE_F_MORE

    static func index(_ userData: UInt64) -> UInt64 { userData & 0xFFFF_FFFF }
    static func generation(_ userData: UInt64) -> UInt64 { userData >> 32 }

    @Test func reservedSlotsHaveDistinctUserDataThatNeverCollidesWithTheRingsTags() {
        var table = OperationTable()
        let userData = (0..<100).map { _ in table.reserve() }
        #expect(Set(userData).count == 100)
        #expect(userData.map(Self.index) == (0..<100).map(UInt64.init), "fresh slots are taken in order")
        #expect(userData.allSatisfy { Self.generation($0) == 1 })
        #expect(userData.allSatisfy { $0 != Ring.wakeTag && $0 != Ring.ignoredTag })
        #expect(table.inFlightCount == 0, "reserved is not in flight")
        #expect(!table.isInFlight(userData[0]))
    }

    @Test func aCompletionResumesItsWaiterOnceAndFreesTheSlot() async {
        var table = OperationTable()
        let userData = table.reserve()
        let completion = await withUnsafeContinuation { (continuation: UnsafeContinuation<IOCompletion, Never>) in
            table.attach(userData, waiter: continuation)
            #expect(table.inFlightCount == 1)
            #expect(table.isInFlight(userData))
            table.complete(userData, result: 42, flags: 7)
            // A second completion for the same request (a stale one) must not resume it again.
            table.complete(userData, result: -1, flags: 0)
        }
        #expect(completion.result == 42)
        #expect(completion.flags == 7)
        #expect(table.inFlightCount == 0)
        #expect(!table.isInFlight(userData))
    }

    @Test func aFreedSlotIsReusedWithANewGenerationAndStaleCompletionsAndCancelsAreIgnored() async {
        var table = OperationTable()
        let old = table.reserve()
        table.release(old)  // reserved, never submitted
        let reused = table.reserve()
        #expect(Self.index(reused) == Self.index(old), "the freed slot is reused")
        #expect(Self.generation(reused) != Self.generation(old), "with another generation")

        let sink = RecordingSink()
        table.attach(reused, sink: sink)
        // A completion or cancel for the old operation names the same slot: both must miss.
        table.complete(old, result: 99, flags: 0)
        #expect(sink.results.isEmpty, "a stale completion reached the slot's new operation")
        #expect(!table.isInFlight(old), "a stale cancel would be submitted")
        #expect(table.isInFlight(reused))
        table.release(old)
        table.release(reused)  // in flight: only its completion frees it
        #expect(table.inFlightCount == 1)
        #expect(table.isInFlight(reused))
        table.complete(reused, result: 5, flags: 0)
        #expect(sink.results == [5])
        #expect(table.inFlightCount == 0)

        // And a one-shot waiter on the slot's third generation ignores both earlier ones.
        let third = table.reserve()
        #expect(Self.index(third) == Self.index(old))
        #expect(Set([Self.generation(old), Self.generation(reused), Self.generation(third)]).count == 3)
        let completion = await withUnsafeContinuation { (continuation: UnsafeContinuation<IOCompletion, Never>) in
            table.attach(third, waiter: continuation)
            table.complete(old, result: 1, flags: 0)
            table.complete(reused, result: 2, flags: 0)
            #expect(table.inFlightCount == 1, "a stale completion freed the live slot")
            table.complete(third, result: 3, flags: 0)
        }
        #expect(completion.result == 3)
    }

    @Test func multishotSlotsTakeEveryCompletionUntilOneComesWithoutMore() {
        var table = OperationTable()
        let sink = RecordingSink()
        let userData = table.reserve()
        table.attach(userData, sink: sink)
        for fd in 10..<15 { table.complete(userData, result: Int32(fd), flags: Self.more) }
        #expect(sink.results == [10, 11, 12, 13, 14])
        #expect(sink.ended == 0)
        #expect(table.inFlightCount == 1)
        #expect(table.isInFlight(userData))
        table.complete(userData, result: -125, flags: 0)  // ECANCELED, the last one
        #expect(sink.results.last == -125)
        #expect(sink.ended == 1)
        #expect(table.inFlightCount == 0)
        #expect(!table.isInFlight(userData))
        // Anything after the last one belongs to nobody.
        table.complete(userData, result: 20, flags: Self.more)
        #expect(sink.results.count == 6)
    }

    @Test func freedSlotsAreReusedLastInFirstOutAndTheTableDoesNotGrowPastItsPeak() {
        var table = OperationTable()
        let sinks = (0..<8).map { _ in RecordingSink() }
        let first = (0..<8).map { _ in table.reserve() }
        for (userData, sink) in zip(first, sinks) { table.attach(userData, sink: sink) }
        #expect(table.inFlightCount == 8)
        // Complete slots 2, 5, 6 in that order: the next reservations take 6, 5, 2.
        for i in [2, 5, 6] { table.complete(first[i], result: 0, flags: 0) }
        #expect(table.inFlightCount == 5)
        let again = (0..<3).map { _ in table.reserve() }
        #expect(again.map(Self.index) == [6, 5, 2])
        // Then fresh slots past the old peak.
        #expect(Self.index(table.reserve()) == 8)
        // Many rounds of reserve, attach, complete on a busy table stay within the peak.
        var peak: UInt64 = 0
        for round in 0..<1_000 {
            let sink = RecordingSink()
            let userData = table.reserve()
            peak = max(peak, Self.index(userData))
            table.attach(userData, sink: sink)
            table.complete(userData, result: Int32(round), flags: 0)
            #expect(sink.results == [Int32(round)])
        }
        #expect(peak <= 9, "slots leaked: index \(peak)")
    }

    @Test func outOfRangeAndReservedTagsAreIgnored() {
        var table = OperationTable()
        table.complete(12_345, result: 0, flags: 0)
        table.complete(Ring.wakeTag, result: 0, flags: 0)
        table.complete(Ring.ignoredTag, result: 0, flags: 0)
        table.release(77)
        #expect(!table.isInFlight(12_345))
        #expect(!table.isInFlight(Ring.wakeTag))
        #expect(table.inFlightCount == 0)
        #expect(Self.index(table.reserve()) == 0)
    }
}
