// asyncio's `wait_for`: run an operation with a deadline; at the deadline the operation is
// cancelled and `TimeoutError` is thrown.
//
// On a Spindle thread the operation runs as the one child of a task group, and the caller
// waits on a wheel entry (a `SleepWaiter`) that either the deadline fires or the operation
// wakes when it finishes: one child task per call, and no cancellation handler. Elsewhere the
// operation and a `Task.sleep` race as two children. Either way, one rule matters for I/O:
// when the deadline wins, the operation is cancelled and awaited, and if it still produced a
// value (a read whose data raced in with the cancellation), that value is returned rather than
// lost. A cancelled caller cancels the operation (a group child), whose end wakes the caller.

/// Thrown by ``withTimeout(_:operation:)`` when the operation did not finish in time.
public struct TimeoutError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The time limit that passed.
    public let duration: Duration
    /// An error for an operation that did not finish within `duration`.
    public init(duration: Duration) { self.duration = duration }
    /// "the operation did not finish within 2.0 seconds", for logs.
    public var description: String { "the operation did not finish within \(duration)" }
}

/// Runs `operation`, cancelling it if it has not finished after `duration`.
///
/// ```swift
/// let reply = try await withTimeout(.seconds(2)) { try await stream.read() }
/// ```
///
/// - Throws: ``TimeoutError`` if the deadline passed and the operation ended by throwing
///   (typically `CancellationError`); otherwise what the operation threw.
public func withTimeout<Success: Sendable>(
    _ duration: Duration,
    operation: @escaping @Sendable () async throws -> Success
) async throws -> Success {
    if let host = TimerHost.current {
        return try await withTimeout(duration, on: host.owner, operation: operation)
    }
    typealias Outcome = TimeoutOutcome<Success>
    return try await withThrowingTaskGroup(of: Outcome.self) { group in
        group.addTask {
            do {
                return .finished(.success(try await operation()))
            } catch {
                return .finished(.failure(error))
            }
        }
        group.addTask {
            // Cancelled when the operation finishes first; then its result is ignored.
            try? await Task.sleep(for: duration)  // not on a Spindle thread: Swift's own timer
            return .timedOut
        }
        guard let first = try await group.next() else { throw CancellationError() }
        group.cancelAll()
        switch first {
        case .finished(let result):
            return try result.get()
        case .timedOut:
            // The operation has been cancelled: wait for it, and keep a value that raced in.
            while let next = try await group.next() {
                guard case .finished(let result) = next else { continue }
                if case .success(let value) = result { return value }
                if Task.isCancelled { _ = try result.get() }
                throw TimeoutError(duration: duration)
            }
            throw TimeoutError(duration: duration)
        }
    }
}

/// `withTimeout` on a Spindle runtime or loop: one child, and a wheel entry the operation wakes.
private func withTimeout<Success: Sendable>(
    _ duration: Duration, on owner: any TimerScheduler,
    operation: @escaping @Sendable () async throws -> Success
) async throws -> Success {
    let deadline = owner.timerDeadline(after: duration)  // the loop's clock on a virtual loop
    let activity = SpawnedTaskRecord.ofCurrentTask  // for the task dump
    activity?.suspending(on: TaskWait.timeout(until: deadline))
    defer { activity?.resumed() }
    let waiter = SleepWaiter()
    return try await withThrowingTaskGroup(of: Success.self) { group in
        group.addTask {
            defer { waiter.wake() }
            return try await operation()
        }
        // Nothing throws here: the waiter is never cancelled, only fired or woken.
        try? await withUnsafeThrowingContinuation { (continuation: UnsafeContinuation<Void, any Error>) in
            if waiter.arm(continuation) {
                owner.scheduleTimer(.wake(Unmanaged.passRetained(waiter)), deadline: deadline)
            } else {
                continuation.resume()  // the operation finished first
            }
        }
        let timedOut = !waiter.wasWoken
        if timedOut { group.cancelAll() }
        do {
            guard let value = try await group.next() else { throw CancellationError() }
            return value  // in time, or raced in with the cancellation
        } catch {
            if timedOut && !Task.isCancelled { throw TimeoutError(duration: duration) }
            throw error
        }
    }
}

/// How one child of `withTimeout`'s group ended.
enum TimeoutOutcome<Success: Sendable>: Sendable {
    case finished(Result<Success, any Error>)
    case timedOut
}
