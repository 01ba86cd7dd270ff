// `sleep(for:)` and `sleep(until:)`.
//
// On a Spindle worker or event loop thread the sleep is an entry in that thread's timer wheel
// holding the task's continuation (SleepWaiter.swift): one small object per sleep, resumed in
// place by the owner when the deadline comes. `Task.sleep` on a Spindle executor reaches the
// same wheels, but Swift 6.3 implements it with a helper task per sleep (an allocation the
// size of a task, its own run and completion), so this path is the cheaper one (W7 in
// docs/benchmarks.md). Elsewhere (a task on Swift's default executor) it is `Task.sleep`.
//
// Both are cancellable: a cancelled sleep throws `CancellationError` at once, and its wheel
// entry is dropped by the wheel's next sweep (TimerWheel.swift) or at its deadline.
//
// `nonisolated(nonsending)`: the sleep runs on its caller's executor, so calling it costs no
// executor hop (Swift's check at each hop takes the task's status-record lock), and the thread
// it looks at is the caller's. A caller on a Spindle thread (a task preferring a runtime or
// loop, or an actor running on one) sets its timer there and is resumed on its own executor by
// the continuation; any other caller gets `Task.sleep`.

internal import CSpindle

/// Suspends the current task for `duration`.
///
/// - Throws: `CancellationError` if the task is cancelled first.
public nonisolated(nonsending) func sleep(for duration: Duration) async throws {
    guard let host = TimerHost.current else { return try await Task.sleep(for: duration) }
    try await sleep(on: host, deadline: host.deadline(after: duration))
}

/// Suspends the current task until `deadline`.
///
/// - Throws: `CancellationError` if the task is cancelled first.
public nonisolated(nonsending) func sleep(until deadline: ContinuousClock.Instant) async throws {
    guard let host = TimerHost.current else {
        return try await Task.sleep(until: deadline, clock: .continuous)
    }
    let delay = ContinuousClock.now.duration(to: deadline)
    try await sleep(on: host, deadline: host.deadline(after: max(delay, .zero)))
}

/// Sleeps until `deadline` on `host`'s clock; `host` may be another thread's (LoopClock).
nonisolated(nonsending) func sleep(on host: TimerHost, deadline: UInt64) async throws {
    if Task.isCancelled { throw CancellationError() }
    let activity = SpawnedTaskRecord.ofCurrentTask  // for the task dump
    activity?.suspending(on: TaskWait.sleep(until: deadline))
    defer { activity?.resumed() }
    let waiter = SleepWaiter()
    try await withTaskCancellationHandler {
        try await withUnsafeThrowingContinuation { (continuation: UnsafeContinuation<Void, any Error>) in
            guard waiter.arm(continuation) else {
                continuation.resume(throwing: CancellationError())
                return
            }
            // Still on the thread that was current when the sleep began (the closure runs
            // synchronously), so the host's wheel is this thread's; for a `LoopClock` sleep from
            // elsewhere, the loop puts the timer on its shared wheel.
            host.schedule(.wake(Unmanaged.passRetained(waiter)), deadline: deadline)
        }
    } onCancel: {
        waiter.cancel()
    }
}

/// The timer wheel of the calling thread, if it is a Spindle worker or event loop.
enum TimerHost {
    case worker(Unmanaged<Worker>)
    case loop(Unmanaged<SpindleEventLoop>)

    static var current: TimerHost? {
        if let raw = spindle_current_worker() { return .worker(Unmanaged.fromOpaque(raw)) }
        if let raw = spindle_current_loop() { return .loop(Unmanaged.fromOpaque(raw)) }
        return nil
    }

    /// The runtime or loop whose thread this is.
    var owner: any TimerScheduler {
        switch self {
        case .worker(let worker): return worker._withUnsafeGuaranteedRef { $0.shared }
        case .loop(let loop): return loop.takeUnretainedValue()
        }
    }

    /// A deadline `duration` from now on this host's timer clock: real on a worker, the loop's
    /// (perhaps virtual) on an event loop.
    func deadline(after duration: Duration) -> UInt64 {
        switch self {
        case .worker: return monotonicDeadline(after: duration)
        case .loop(let loop): return loop._withUnsafeGuaranteedRef { $0.timerDeadline(after: duration) }
        }
    }

    /// Sets the timer on this thread's wheel (or, if the owner is stopping, wherever its
    /// timers go then: the runtime's shared wheel or the afterlife).
    func schedule(_ action: TimerAction, deadline: UInt64) {
        switch self {
        case .worker(let worker):
            worker._withUnsafeGuaranteedRef { $0.shared.scheduleTimer(action, deadline: deadline) }
        case .loop(let loop):
            loop._withUnsafeGuaranteedRef { $0.scheduleTimer(action, deadline: deadline) }
        }
    }
}
