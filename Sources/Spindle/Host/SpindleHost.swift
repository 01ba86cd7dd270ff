// One spelling for "the Spindle executor I am on" (Tokio's `Handle::current()` and
// `tokio::spawn`, asyncio's `get_running_loop()` and `create_task`).
//
// `Runtime` and `SpindleEventLoop` have the same lifecycle surface (spawn, task dump, blocking
// pool, shutdown); `SpindleHost` names it, so code that runs on either needs no branch on
// `Runtime.current` and `SpindleEventLoop.current`. `currentSpindleHost` reads the thread's
// context (the C thread-locals a worker or a loop sets when it starts: one load each), not the
// task's: Swift's task executor preference says where a task *wants* to run, but the question
// "may I spawn here" is about the thread that asks, and synchronous code (a completion handler,
// a `toThread` body) has no task to ask. The free `spawn` is then `currentSpindleHost.spawn`,
// with a typed error instead of a crash off Spindle's threads.
//
// The protocol requirements take every argument; the defaults live on the concrete types (a
// call on `Runtime` or `SpindleEventLoop` is dispatched statically, as before) and, for calls
// through `any SpindleHost`, in the extension's shorter overloads.

/// A Spindle executor that tasks can be spawned on: a ``Runtime`` or a ``SpindleEventLoop``.
///
/// Code that may run on either uses the host it is on, found with ``currentSpindleHost``, or
/// the free function ``spawn(name:priority:_:)->Task<Success,Never>``:
///
/// ```swift
/// func startHeartbeat() throws(SpindleError) {
///     try spawn(name: "heartbeat") {            // on the runtime or loop the caller is on
///         while !Task.isCancelled { try? await sleep(for: .seconds(1)) }
///     }
/// }
/// ```
///
/// Spindle's own ``Runtime`` and ``SpindleEventLoop`` are the only conforming types.
public protocol SpindleHost: TaskExecutor {
    /// Starts a task on this host. Shutdown cancels it if it is still running; the task is
    /// listed by ``taskDump()`` while it lives.
    ///
    /// - Throws: ``SpindleError/shutDown`` once shutdown has begun.
    func spawn<Success: Sendable>(
        name: String?, priority: TaskPriority?, _ operation: sending @escaping () async -> Success
    ) throws(SpindleError) -> Task<Success, Never>

    /// Starts a throwing task on this host. Shutdown cancels it if it is still running; the
    /// task is listed by ``taskDump()`` while it lives, and an error it throws when nobody can
    /// await it any more is logged (see ``Runtime/spawn(name:priority:_:)->Task<Success,Never>``).
    ///
    /// - Throws: ``SpindleError/shutDown`` once shutdown has begun.
    func spawn<Success: Sendable>(
        name: String?, priority: TaskPriority?, _ operation: sending @escaping () async throws -> Success
    ) throws(SpindleError) -> Task<Success, any Error>

    /// A snapshot of the live tasks started with `spawn` (see ``Runtime/taskDump()``).
    func taskDump() -> [TaskSnapshot]

    /// ``taskDump()`` as text: a header line and one line per task, oldest first.
    func formattedTaskDump() -> String

    /// The pool that ``toThread(_:)`` uses on this host.
    var blockingPool: BlockingPool { get }

    /// The I/O backend of this host's rings.
    var reactorBackend: ReactorBackend { get }

    /// Whether shutdown has begun (spawn now fails).
    var isShutDown: Bool { get }

    /// Whether the caller runs on one of this host's threads.
    var isCurrent: Bool { get }

    /// Cancels the spawned tasks, waits up to `gracePeriod` for them, and stops the host (see
    /// ``Runtime/shutdown(gracePeriod:)`` and ``SpindleEventLoop/shutdown(gracePeriod:)``).
    func shutdown(gracePeriod: Duration) async -> ShutdownReport
}

extension SpindleHost {
    /// Starts a task on this host, for calls through `any SpindleHost` (see
    /// ``spawn(name:priority:_:)->Task<Success,Never>``).
    @discardableResult
    public func spawn<Success: Sendable>(
        name: String? = nil, _ operation: sending @escaping () async -> Success
    ) throws(SpindleError) -> Task<Success, Never> {
        try spawn(name: name, priority: nil, operation)
    }

    /// Starts a throwing task on this host, for calls through `any SpindleHost` (see
    /// ``spawn(name:priority:_:)->Task<Success,Never>``).
    @discardableResult
    public func spawn<Success: Sendable>(
        name: String? = nil, _ operation: sending @escaping () async throws -> Success
    ) throws(SpindleError) -> Task<Success, any Error> {
        try spawn(name: name, priority: nil, operation)
    }

    /// ``shutdown(gracePeriod:)`` with a 10-second grace period.
    @discardableResult
    public func shutdown() async -> ShutdownReport {
        await shutdown(gracePeriod: .seconds(10))
    }
}

extension Runtime: SpindleHost {}

extension SpindleEventLoop: SpindleHost {
    /// Whether the caller is on this loop's thread (``inEventLoop``).
    public var isCurrent: Bool { inEventLoop }
}

/// The ``Runtime`` whose worker thread the caller is on, else the ``SpindleEventLoop`` whose
/// thread it is on, else nil (asyncio's `get_running_loop`, Tokio's `Handle::try_current`).
///
/// It describes the calling *thread*. A task of a runtime that is inside a ``toThread(_:)``
/// body, or any other code on a blocking-pool thread, a thread of its own or Swift's global
/// executor, sees nil: take the host before leaving it.
///
/// ```swift
/// let host = currentSpindleHost                      // on a worker: its runtime
/// try await toThread {
///     // currentSpindleHost is nil here (a pool thread); `host` is still the runtime.
///     _ = try host?.spawn(name: "follow-up") { await notify() }
/// }
/// ```
public var currentSpindleHost: (any SpindleHost)? {
    if let runtime = Runtime.current { return runtime }
    return SpindleEventLoop.current
}

/// Starts a task on the ``Runtime`` or ``SpindleEventLoop`` the caller runs on (asyncio's
/// `create_task`, `tokio::spawn`). Shutdown of that host cancels the task if it is still
/// running; its task dump lists the task while it lives.
///
/// ```swift
/// try await Runtime.run {
///     let worker = try spawn(name: "worker") { await crunch() }   // on this runtime
///     await worker.value
/// }
/// ```
///
/// Which host is the caller's follows ``currentSpindleHost``: the thread decides, so inside a
/// ``toThread(_:)`` body (a blocking-pool thread) this throws; spawn there on a host captured
/// before, or with ``Runtime/spawn(name:priority:_:)->Task<Success,Never>`` on a runtime at hand.
///
/// - Throws: ``SpindleError/notOnSpindle`` when the caller is on no runtime worker and no
///   event loop thread; ``SpindleError/shutDown`` once the host's shutdown has begun.
@discardableResult
public func spawn<Success: Sendable>(
    name: String? = nil,
    priority: TaskPriority? = nil,
    _ operation: sending @escaping () async -> Success
) throws(SpindleError) -> Task<Success, Never> {
    if let runtime = Runtime.current { return try runtime.spawn(name: name, priority: priority, operation) }
    if let loop = SpindleEventLoop.current { return try loop.spawn(name: name, priority: priority, operation) }
    throw .notOnSpindle
}

/// Starts a throwing task on the ``Runtime`` or ``SpindleEventLoop`` the caller runs on
/// (asyncio's `create_task`, `tokio::spawn`). An error it throws when nobody can await it any
/// more is logged through that host's logger, as ``Runtime/spawn(name:priority:_:)->Task<Success,Never>``
/// describes.
///
/// - Throws: ``SpindleError/notOnSpindle`` when the caller is on no runtime worker and no
///   event loop thread (for example inside a ``toThread(_:)`` body); ``SpindleError/shutDown``
///   once the host's shutdown has begun.
@discardableResult
public func spawn<Success: Sendable>(
    name: String? = nil,
    priority: TaskPriority? = nil,
    _ operation: sending @escaping () async throws -> Success
) throws(SpindleError) -> Task<Success, any Error> {
    if let runtime = Runtime.current { return try runtime.spawn(name: name, priority: priority, operation) }
    if let loop = SpindleEventLoop.current { return try loop.spawn(name: name, priority: priority, operation) }
    throw .notOnSpindle
}
