// `sleep(for:)` and `sleep(until:)`: on a Spindle runtime or event loop, Swift routes the sleep
// to the executor's timers (its `SchedulingExecutor` conformance), so the task wakes from the
// worker's own timer structure and the worker's park timeout; elsewhere it is Swift's sleep.
// Both are cancellable: a cancelled sleep throws `CancellationError` at once.

/// Suspends the current task for `duration`.
///
/// - Throws: `CancellationError` if the task is cancelled first.
public func sleep(for duration: Duration) async throws {
    try await Task.sleep(for: duration)
}

/// Suspends the current task until `deadline`.
///
/// - Throws: `CancellationError` if the task is cancelled first.
public func sleep(until deadline: ContinuousClock.Instant) async throws {
    try await Task.sleep(until: deadline, clock: .continuous)
}
