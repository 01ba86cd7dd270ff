import Testing
@testable import Spindle

/// The pure readiness state (ReadinessState.swift): sequences, waiters, cancellation, close.
@Suite struct ReadinessStateTests {
    typealias State = ReadinessState<String>

    @Test func anEventAfterTheSequenceWasReadEndsTheWaitAtOnce() {
        var state = State()
        let seen = state.sequence(.read)
        _ = state.deliver(readable: true, writable: false)  // between the system call and the wait
        #expect(state.wait(id: state.makeID(), .read, after: seen, waiter: "r", isCancelled: false) == .ready)
        #expect(state.waiterCount == 0)
    }

    @Test func aWaiterIsResumedByTheNextEventOfItsDirectionOnly() {
        var state = State()
        #expect(state.wait(id: state.makeID(), .read, after: 0, waiter: "r", isCancelled: false) == nil)
        #expect(state.wait(id: state.makeID(), .write, after: 0, waiter: "w", isCancelled: false) == nil)
        let writable = state.deliver(readable: false, writable: true)
        #expect(writable.writer == "w" && writable.reader == nil && writable.count == 1)
        let readable = state.deliver(readable: true, writable: false)
        #expect(readable.reader == "r" && readable.count == 1)
        #expect(state.waiterCount == 0 && state.readSequence == 1 && state.writeSequence == 1)
    }

    @Test func severalReadersAreAllResumedAndACancelledOneRemovesOnlyItself() {
        var state = State()
        let a = state.makeID(), b = state.makeID(), c = state.makeID()
        _ = state.wait(id: a, .read, after: 0, waiter: "a", isCancelled: false)
        _ = state.wait(id: b, .read, after: 0, waiter: "b", isCancelled: false)
        _ = state.wait(id: c, .read, after: 0, waiter: "c", isCancelled: false)
        #expect(state.remove(a) == "a")  // the inline one: the next takes its place
        #expect(state.remove(a) == nil)
        let woken = state.deliver(readable: true, writable: false)
        #expect([woken.reader].compactMap { $0 } + woken.more == ["b", "c"])
    }

    @Test func aCancelledTaskDoesNotWait() {
        var state = State()
        #expect(state.wait(id: state.makeID(), .read, after: 0, waiter: "r", isCancelled: true) == .cancelled)
        #expect(state.waiterCount == 0)
    }

    @Test func closeResumesEveryoneAndLaterWaitsEndAtOnce() {
        var state = State()
        _ = state.wait(id: state.makeID(), .read, after: 0, waiter: "r", isCancelled: false)
        _ = state.wait(id: state.makeID(), .write, after: 0, waiter: "w", isCancelled: false)
        #expect(state.close(as: .closed).sorted() == ["r", "w"])
        #expect(state.wait(id: state.makeID(), .read, after: state.readSequence, waiter: "x", isCancelled: false) == .closed)
        #expect(state.waiterCount == 0)
    }
}
