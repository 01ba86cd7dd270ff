import Testing
@testable import Spindle

/// The channel's decisions (Sync/ChannelStateMachine.swift), with integer tokens for waiters:
/// no tasks, no locks.
@Suite struct ChannelStateMachineTests {
    typealias Machine = ChannelStateMachine<String, Int, Int>

    @Test func sendsBufferUpToTheCapacityThenWait() {
        var machine = Machine(capacity: 2)
        guard case .buffered = machine.send("a", registering: nil, isCancelled: false) else { Issue.record(); return }
        guard case .buffered = machine.send("b", registering: nil, isCancelled: false) else { Issue.record(); return }
        // Full: the fast path is told to come back with a waiter, and registers nothing.
        guard case .wait = machine.send("c", registering: nil, isCancelled: false) else { Issue.record(); return }
        #expect(machine.senders.isEmpty)
        guard case .wait = machine.send("c", registering: (machine.makeID(), 7), isCancelled: false) else {
            Issue.record(); return
        }
        #expect(machine.senders.map(\.waiter) == [7])
    }

    @Test func aReceiveMovesTheFirstWaitingSendersElementIntoTheBuffer() {
        var machine = Machine(capacity: 1)
        _ = machine.send("a", registering: nil, isCancelled: false)
        _ = machine.send("b", registering: (machine.makeID(), 1), isCancelled: false)
        _ = machine.send("c", registering: (machine.makeID(), 2), isCancelled: false)
        guard case .element("a", resumeSender: 1) = machine.receive(registering: nil, isCancelled: false) else {
            Issue.record(); return
        }
        guard case .element("b", resumeSender: 2) = machine.receive(registering: nil, isCancelled: false) else {
            Issue.record(); return
        }
        guard case .element("c", resumeSender: nil) = machine.receive(registering: nil, isCancelled: false) else {
            Issue.record(); return
        }
        guard case .wait = machine.receive(registering: nil, isCancelled: false) else { Issue.record(); return }
    }

    @Test func aSendHandsItsElementToTheOldestWaitingReceiver() {
        var machine = Machine(capacity: 1)
        _ = machine.receive(registering: (machine.makeID(), 10), isCancelled: false)
        _ = machine.receive(registering: (machine.makeID(), 11), isCancelled: false)
        guard case .handTo(10) = machine.send("x", registering: nil, isCancelled: false) else { Issue.record(); return }
        guard case .handTo(11) = machine.send("y", registering: nil, isCancelled: false) else { Issue.record(); return }
        #expect(machine.count == 0)
    }

    /// Cancellation only ends waiting: a cancelled task that can complete at once does.
    @Test func aCancelledTaskIsRefusedOnlyWhenItWouldWait() {
        var machine = Machine(capacity: 1)
        guard case .buffered = machine.send("a", registering: (machine.makeID(), 1), isCancelled: true) else {
            Issue.record(); return
        }
        guard case .cancelled = machine.send("b", registering: (machine.makeID(), 2), isCancelled: true) else {
            Issue.record(); return
        }
        #expect(machine.senders.isEmpty)
        guard case .element("a", resumeSender: nil) = machine.receive(registering: (machine.makeID(), 3), isCancelled: true) else {
            Issue.record(); return
        }
        guard case .cancelled = machine.receive(registering: (machine.makeID(), 4), isCancelled: true) else {
            Issue.record(); return
        }
        #expect(machine.receivers.isEmpty)
    }

    @Test func cancellingAWaiterRemovesItOnce() {
        var machine = Machine(capacity: 1)
        let first = machine.makeID(), second = machine.makeID()
        _ = machine.receive(registering: (first, 1), isCancelled: false)
        _ = machine.receive(registering: (second, 2), isCancelled: false)
        let removed = machine.cancelReceiver(first)
        let again = machine.cancelReceiver(first)
        #expect(removed == 1 && again == nil)
        guard case .handTo(2) = machine.send("x", registering: nil, isCancelled: false) else { Issue.record(); return }
        let unknown = machine.cancelSender(99)
        #expect(unknown == nil)
    }

    @Test func closingReleasesEveryWaiterOnceAndDrainsTheBuffer() {
        var machine = Machine(capacity: 1)
        _ = machine.send("a", registering: nil, isCancelled: false)
        _ = machine.send("b", registering: (machine.makeID(), 5), isCancelled: false)
        let released = machine.close()
        let twice = machine.close()
        #expect(released.senders == [5] && released.receivers.isEmpty && twice.senders.isEmpty)
        guard case .closed = machine.send("c", registering: nil, isCancelled: false) else { Issue.record(); return }
        // What was buffered is still received; then nil.
        guard case .element("a", resumeSender: nil) = machine.receive(registering: nil, isCancelled: false) else {
            Issue.record(); return
        }
        guard case .closed = machine.receive(registering: nil, isCancelled: false) else { Issue.record(); return }
    }

    @Test func waitingReceiversGetNilOnClose() {
        var machine = Machine(capacity: 3)
        _ = machine.receive(registering: (machine.makeID(), 1), isCancelled: false)
        let released = machine.close()
        #expect(released.receivers == [1])
    }

    @Test func theRingBufferWrapsInOrder() {
        var machine = Machine(capacity: 3)
        var expected: [String] = []
        var received: [String] = []
        for round in 0..<10 {
            for i in 0..<2 {
                let element = "\(round)-\(i)"
                expected.append(element)
                _ = machine.send(element, registering: nil, isCancelled: false)
            }
            for _ in 0..<2 {
                if case .element(let element, _) = machine.receive(registering: nil, isCancelled: false) {
                    received.append(element)
                }
            }
        }
        #expect(received == expected)
    }
}
