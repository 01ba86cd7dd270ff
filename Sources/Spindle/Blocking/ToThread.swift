// The free functions users call: `toThread` (asyncio's `to_thread`, Tokio's `spawn_blocking`)
// and `runInExecutor` (asyncio's `run_in_executor` with a pool the user made).

/// Runs `body` on a thread of the current runtime's blocking pool and returns its value or
/// rethrows its error; the awaiting task then resumes on its own executor.
///
/// ```swift
/// let data = try await toThread { try readWholeFile(path) }
/// ```
///
/// The pool is that of the ``Runtime`` or ``SpindleEventLoop`` the caller runs on, or
/// ``BlockingPool/shared`` when it runs on neither (a plain Swift task). Cancellation follows
/// ``BlockingPool/run(_:)``: a job not yet started is removed and throws `CancellationError`;
/// a started one finishes, and its outcome is dropped if the task was cancelled meanwhile.
public nonisolated(nonsending) func toThread<Success: Sendable>(
    _ body: @escaping @Sendable () throws -> Success
) async throws -> Success {
    try await runRecorded(on: BlockingPool.current, body)
}

/// Runs `body` on a thread of `pool` and returns its value or rethrows its error; the
/// awaiting task then resumes on its own executor. See ``BlockingPool/run(_:)``.
///
/// ```swift
/// let cpuPool = try BlockingPool(name: "cpu", maxThreads: 2)
/// let digest = try await runInExecutor(cpuPool) { sha256(bytes) }
/// ```
public nonisolated(nonsending) func runInExecutor<Success: Sendable>(
    _ pool: BlockingPool, _ body: @escaping @Sendable () throws -> Success
) async throws -> Success {
    try await runRecorded(on: pool, body)
}

/// `pool.run(body)`, recorded as the caller's wait for the task dump (Support/TaskActivity.swift).
private nonisolated(nonsending) func runRecorded<Success: Sendable>(
    on pool: BlockingPool, _ body: @escaping @Sendable () throws -> Success
) async throws -> Success {
    let activity = SpawnedTaskRecord.ofCurrentTask
    activity?.suspending(on: TaskWait.blockingJob)
    defer { activity?.resumed() }
    // On a virtual-time loop the clock waits for the job, as Tokio's does for `spawn_blocking`.
    let holdsTime = SpindleEventLoop.beginBlockingWait()
    defer { holdsTime?.endBlockingWait() }
    return try await pool.run(body)
}

extension BlockingPool {
    /// The current host's pool (``currentSpindleHost``), else ``shared``.
    static var current: BlockingPool { currentSpindleHost?.blockingPool ?? shared }
}
