// asyncio's `wait_for`: run an operation with a deadline; at the deadline the operation is
// cancelled and `TimeoutError` is thrown.
//
// The operation and a timer run as two children of one task group (so both inherit the
// caller's executor preference and run on the same runtime, and the timer is Spindle's when
// the caller is on Spindle). The first to finish decides, with one rule that matters for I/O:
// when the timer wins, the operation is cancelled and awaited, and if it still produced a value
// (a read whose data raced in with the cancellation), that value is returned rather than lost.

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
            try? await sleep(for: duration)  // Spindle's: a wheel entry, swept once cancelled
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

/// How one child of `withTimeout`'s group ended.
enum TimeoutOutcome<Success: Sendable>: Sendable {
    case finished(Result<Success, any Error>)
    case timedOut
}
