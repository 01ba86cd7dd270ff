// A bounded, multi-producer multi-consumer channel for tasks (Tokio's `mpsc`/`async_channel`,
// Go's buffered channel).
//
// One lock guards the state (ChannelStateMachine.swift: a ring buffer of elements and two FIFO
// queues of suspended tasks, and every decision). Every operation first tries to complete
// without suspending; only when it must wait does it register a continuation, the state
// machine deciding again under the lock so that nothing can slip between the check and the
// registration. A continuation is always resumed after the lock is released, so the woken task
// can run at once (on a Spindle worker it goes to the LIFO slot, which is what makes a
// ping-pong cheap).
//
// Why not AsyncChannel (swift-async-algorithms): its per-element cost dominated the ping-pong
// workload (W3) on every executor: 5.2 µs per round trip on one thread, against 0.9 µs here.
//
// Cancellation: a waiting sender or receiver that is cancelled is removed from its queue and
// throws `CancellationError`; an element whose send was cancelled is not delivered. A task that
// is cancelled before it registers (already cancelled when it called, or cancelled just before)
// runs its cancellation handler first, which finds nothing to remove; so the registration
// itself checks `Task.isCancelled` under the lock and refuses to wait. Either the handler takes
// the lock after the registration and removes the waiter, or it took it before, and then the
// cancellation flag (set before the handler runs) is visible to the registration. Cancellation
// only ends waiting: an element that is there, or room that is free, is still used. Closing
// wakes every waiter: receivers drain what is buffered and then get nil; senders get
// `ChannelClosedError`.
//
// The implementation is `@inlinable`: a generic channel used from another module would
// otherwise run unspecialised, and that cost 4 µs per ping-pong round trip.

/// Thrown by ``SpindleChannel/send(_:)`` once the channel is closed.
public struct ChannelClosedError: Error, Equatable, Sendable {
    /// The error (it carries nothing).
    public init() {}
}

/// A bounded FIFO channel between tasks. `send` suspends while the channel is full; `receive`
/// suspends while it is empty.
///
/// ```swift
/// let channel = SpindleChannel<Int>(capacity: 1)
/// Task { for i in 0..<3 { try await channel.send(i) }; channel.close() }
/// for try await value in channel { print(value) }
/// ```
public final class SpindleChannel<Element: Sendable>: Sendable, AsyncSequence {
    @usableFromInline
    typealias StateMachine = ChannelStateMachine<
        Element, UnsafeContinuation<Void, any Error>, UnsafeContinuation<Element?, any Error>
    >

    @usableFromInline let state: Lock<StateMachine>
    /// The most elements the channel holds before `send` waits.
    public let capacity: Int

    /// Creates a channel that buffers up to `capacity` elements (at least 1).
    @inlinable
    public init(capacity: Int = 1) {
        self.capacity = Swift.max(1, capacity)
        state = Lock(StateMachine(capacity: capacity))
    }

    /// Sends `element`, waiting while the channel is full.
    ///
    /// - Throws: ``ChannelClosedError`` if the channel is or becomes closed before the element
    ///   is accepted; `CancellationError` if the task is cancelled while it waits for room
    ///   (or already was when it had to wait).
    @inlinable
    public nonisolated(nonsending) func send(_ element: Element) async throws {
        switch state.withLock({ $0.send(element, registering: nil, isCancelled: false) }) {
        case .handTo(let receiver):
            receiver.resume(returning: element)
            return
        case .buffered:
            return
        case .closed:
            throw ChannelClosedError()
        case .wait, .cancelled:
            break
        }
        let id = state.withLock { $0.makeID() }
        // For the task dump (Support/TaskActivity.swift); cleared once the send resumes.
        let record = SpawnedTaskRecord.noteSuspending(on: TaskWait.channel(self, isSend: true))
        defer { record?.resumed() }
        try await _unsafeInheritExecutor_withTaskCancellationHandler {
            try await withUnsafeThrowingContinuation { (continuation: UnsafeContinuation<Void, any Error>) in
                // Decide again under the lock: a receiver or close may have come in between.
                let action = state.withLock {
                    $0.send(element, registering: (id, continuation), isCancelled: Task.isCancelled)
                }
                switch action {
                case .handTo(let receiver):
                    receiver.resume(returning: element)
                    continuation.resume()
                case .buffered:
                    continuation.resume()
                case .closed:
                    continuation.resume(throwing: ChannelClosedError())
                case .cancelled:
                    continuation.resume(throwing: CancellationError())
                case .wait:
                    break
                }
            }
        } onCancel: {
            state.withLock { $0.cancelSender(id) }?.resume(throwing: CancellationError())
        }
    }

    /// Receives the oldest element, waiting while the channel is empty. Returns nil once the
    /// channel is closed and everything buffered has been received.
    ///
    /// - Throws: `CancellationError` if the task is cancelled while it waits for an element
    ///   (or already was when it had to wait).
    @inlinable
    public nonisolated(nonsending) func receive() async throws -> Element? {
        switch state.withLock({ $0.receive(registering: nil, isCancelled: false) }) {
        case .element(let element, let sender):
            sender?.resume()
            return element
        case .closed:
            return nil
        case .wait, .cancelled:
            break
        }
        let id = state.withLock { $0.makeID() }
        let record = SpawnedTaskRecord.noteSuspending(on: TaskWait.channel(self, isSend: false))
        defer { record?.resumed() }
        return try await _unsafeInheritExecutor_withTaskCancellationHandler {
            try await withUnsafeThrowingContinuation { (continuation: UnsafeContinuation<Element?, any Error>) in
                let action = state.withLock {
                    $0.receive(registering: (id, continuation), isCancelled: Task.isCancelled)
                }
                switch action {
                case .element(let element, let sender):
                    sender?.resume()
                    continuation.resume(returning: element)
                case .closed:
                    continuation.resume(returning: nil)
                case .cancelled:
                    continuation.resume(throwing: CancellationError())
                case .wait:
                    break
                }
            }
        } onCancel: {
            state.withLock { $0.cancelReceiver(id) }?.resume(throwing: CancellationError())
        }
    }

    /// Closes the channel: waiting senders throw ``ChannelClosedError``, receivers drain what
    /// is buffered and then get nil. Closing twice does nothing.
    @inlinable
    public func close() {
        let (senders, receivers) = state.withLock { $0.close() }
        for sender in senders { sender.resume(throwing: ChannelClosedError()) }
        for receiver in receivers { receiver.resume(returning: nil) }
    }

    /// Iterates over received elements until the channel is closed and drained.
    public struct AsyncIterator: AsyncIteratorProtocol {
        @usableFromInline let channel: SpindleChannel

        @inlinable
        init(channel: SpindleChannel) { self.channel = channel }

        /// Receives the oldest element, waiting while the channel is empty; `nil` once the
        /// channel is closed and drained (see ``SpindleChannel/receive()``).
        ///
        /// - Throws: `CancellationError` if the task is cancelled while it waits.
        @inlinable
        public mutating func next() async throws -> Element? {
            try await channel.receive()
        }
    }

    /// An iterator that receives the channel's elements, for `for try await`.
    @inlinable
    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(channel: self)
    }
}
