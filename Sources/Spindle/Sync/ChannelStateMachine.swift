// The channel's state and every decision it makes, as a pure value (SpindleChannel.swift holds it
// behind a lock, performs the actions after unlocking, and owns the continuations; the tests
// drive it with plain tokens instead, ChannelStateMachineTests).
//
// The state: a ring buffer of up to `capacity` elements, and two FIFO queues of waiters
// (senders waiting for room, each with the element it brings; receivers waiting for an
// element). At most one of the queues is non-empty: a sender waits only while the buffer is
// full, and a receiver only while it is empty.
//
// One decision per operation, used twice: once on the fast path, when the caller has no
// waiter to leave (`registering: nil`: "wait" then means "come back with a continuation"), and
// once inside the continuation closure, when it has one and the state may have changed in
// between. The second time a cancelled task is refused instead of registered: its
// cancellation handler may have run already and found nothing to remove (see SpindleChannel.swift,
// "Cancellation").

@usableFromInline
struct ChannelStateMachine<Element, SendWaiter, ReceiveWaiter> {
    @usableFromInline
    struct Sender {
        @usableFromInline let id: UInt64
        @usableFromInline let element: Element
        @usableFromInline let waiter: SendWaiter

        @inlinable
        init(id: UInt64, element: Element, waiter: SendWaiter) {
            self.id = id
            self.element = element
            self.waiter = waiter
        }
    }

    @usableFromInline
    struct Receiver {
        @usableFromInline let id: UInt64
        @usableFromInline let waiter: ReceiveWaiter

        @inlinable
        init(id: UInt64, waiter: ReceiveWaiter) {
            self.id = id
            self.waiter = waiter
        }
    }

    @usableFromInline var buffer: [Element?]
    @usableFromInline var head = 0
    @usableFromInline var count = 0
    @usableFromInline var senders: [Sender] = []
    @usableFromInline var receivers: [Receiver] = []
    @usableFromInline var closed = false
    @usableFromInline var nextID: UInt64 = 0

    /// A channel that buffers up to `capacity` elements (at least 1).
    @inlinable
    init(capacity: Int) {
        buffer = Array(repeating: nil, count: Swift.max(1, capacity))
    }

    @inlinable
    var capacity: Int { buffer.count }

    /// What a send must do.
    @usableFromInline
    enum SendAction {
        /// Give the element to this waiting receiver (after unlocking).
        case handTo(ReceiveWaiter)
        /// The element is buffered: done.
        case buffered
        /// Throw `ChannelClosedError`.
        case closed
        /// The task was cancelled before it could register as a waiter: throw
        /// `CancellationError`.
        case cancelled
        /// Wait: registered, if a waiter was given; else come back with one.
        case wait
    }

    /// What a receive must do.
    @usableFromInline
    enum ReceiveAction {
        /// Return the element, and resume this sender, whose element took its place.
        case element(Element, resumeSender: SendWaiter?)
        /// Closed and drained: return nil.
        case closed
        /// As for a send.
        case cancelled
        /// As for a send.
        case wait
    }

    /// A new waiter id.
    @inlinable
    mutating func makeID() -> UInt64 {
        nextID &+= 1
        return nextID
    }

    @inlinable
    mutating func send(
        _ element: Element, registering waiter: (id: UInt64, waiter: SendWaiter)?,
        isCancelled: @autoclosure () -> Bool
    ) -> SendAction {
        if closed { return .closed }
        if !receivers.isEmpty { return .handTo(receivers.removeFirst().waiter) }
        if count < buffer.count {
            push(element)
            return .buffered
        }
        guard let waiter else { return .wait }
        if isCancelled() { return .cancelled }
        senders.append(Sender(id: waiter.id, element: element, waiter: waiter.waiter))
        return .wait
    }

    @inlinable
    mutating func receive(
        registering waiter: (id: UInt64, waiter: ReceiveWaiter)?, isCancelled: @autoclosure () -> Bool
    ) -> ReceiveAction {
        if count > 0 {
            // Take the oldest element and, if a sender waits for room, move its element in.
            let element = pop()
            guard !senders.isEmpty else { return .element(element, resumeSender: nil) }
            let sender = senders.removeFirst()
            push(sender.element)
            return .element(element, resumeSender: sender.waiter)
        }
        if closed { return .closed }
        guard let waiter else { return .wait }
        if isCancelled() { return .cancelled }
        receivers.append(Receiver(id: waiter.id, waiter: waiter.waiter))
        return .wait
    }

    /// A cancelled sender leaves its queue; returns its waiter (to resume with
    /// `CancellationError`), or nil if it was resumed already.
    @inlinable
    mutating func cancelSender(_ id: UInt64) -> SendWaiter? {
        guard let index = senders.firstIndex(where: { $0.id == id }) else { return nil }
        return senders.remove(at: index).waiter
    }

    /// As `cancelSender`, for a receiver.
    @inlinable
    mutating func cancelReceiver(_ id: UInt64) -> ReceiveWaiter? {
        guard let index = receivers.firstIndex(where: { $0.id == id }) else { return nil }
        return receivers.remove(at: index).waiter
    }

    /// Closes the channel; returns the waiters to resume (senders with `ChannelClosedError`,
    /// receivers with nil: there is nothing buffered while receivers wait). Closing twice
    /// returns nobody.
    @inlinable
    mutating func close() -> (senders: [SendWaiter], receivers: [ReceiveWaiter]) {
        if closed { return ([], []) }
        closed = true
        defer {
            senders.removeAll()
            receivers.removeAll()
        }
        return (senders.map(\.waiter), receivers.map(\.waiter))
    }

    @inlinable
    mutating func push(_ element: Element) {
        buffer[(head + count) % buffer.count] = element
        count += 1
    }

    @inlinable
    mutating func pop() -> Element {
        let element = buffer[head]!
        buffer[head] = nil
        head = (head + 1) % buffer.count
        count -= 1
        return element
    }
}
