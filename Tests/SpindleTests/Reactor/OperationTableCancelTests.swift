import Glibc
import Testing
@testable import Spindle

// A cancel drained before its request is attached (the blocked-worker watch drains a stuck
// worker's cancel inbox while that worker's job may still be submitting; OperationTable.swift):
// the table remembers it and refuses the attach, so the request is never submitted and the
// cancellation is not lost. Pure: no ring, no threads.

@Suite struct OperationTableCancelTests {
    /// Attaches `userData` with a continuation; if the table refuses, resumes it as the ring
    /// does (-ECANCELED); if it accepts, completes the slot with `result` to resume it.
    private func attachOrComplete(_ table: inout OperationTable, _ userData: UInt64, result: Int32) async -> (attached: Bool, completion: IOCompletion) {
        var attached = false
        let completion = await withUnsafeContinuation { (continuation: UnsafeContinuation<IOCompletion, Never>) in
            attached = table.attach(userData, waiter: continuation)
            if attached {
                table.complete(userData, result: result, flags: 0)
            } else {
                continuation.resume(returning: IOCompletion(result: -ECANCELED, flags: 0))
            }
        }
        return (attached, completion)
    }

    @Test func aCancelBeforeTheAttachIsRememberedAndTheAttachRefused() async {
        var table = OperationTable()
        let userData = table.reserve()
        let early = table.noteCancel(userData)
        #expect(!early, "not in flight yet: nothing to submit a cancel for")
        let (attached, completion) = await attachOrComplete(&table, userData, result: 7)
        #expect(!attached)
        #expect(completion.result == -ECANCELED)
        #expect(table.inFlightCount == 0)
        // The slot was freed: it comes back with a new generation, and the old cancel is stale.
        let next = table.reserve()
        #expect(next & 0xFFFF_FFFF == userData & 0xFFFF_FFFF && next != userData)
        let stale = table.noteCancel(userData)
        #expect(!stale)
        let (reattached, result) = await attachOrComplete(&table, next, result: 7)
        #expect(reattached && result.result == 7, "a stale cancel must not refuse the slot's next request")
    }

    @Test func aCancelOfAnOperationInFlightAsksForAnAsyncCancel() async {
        var table = OperationTable()
        let userData = table.reserve()
        let completion = await withUnsafeContinuation { (continuation: UnsafeContinuation<IOCompletion, Never>) in
            let attached = table.attach(userData, waiter: continuation)
            #expect(attached)
            #expect(table.isInFlight(userData))
            let inFlight = table.noteCancel(userData)
            #expect(inFlight, "in flight: the ring must submit ASYNC_CANCEL")
            table.complete(userData, result: -ECANCELED, flags: 0)
        }
        #expect(completion.result == -ECANCELED)
        let late = table.noteCancel(userData)
        #expect(!late, "completed: the cancel is stale")
        #expect(table.inFlightCount == 0)
    }
}
