// A `Spindle.sleep` in progress: the sleeping task's continuation and who resumes it.
//
// Two parties race to end a sleep: the timer, on the thread that owns the wheel, and
// cancellation, on whatever thread cancels the task. Exactly one resumes the continuation,
// decided by one atomic state:
//
//     idle ──arm──▶ armed ──fire or cancel──▶ finished
//       └────────────cancel (before arm)───────▶ finished
//       └──────wake (before or after arm)──────▶ woken
//
// - `arm` (the sleeping task, inside `withUnsafeThrowingContinuation`) stores the
//   continuation, then moves idle → armed. If cancellation came first (finished already), the
//   task resumes itself with `CancellationError` and never reaches a wheel.
// - `fire` (the wheel's owner at the deadline) moves armed → finished and resumes normally.
// - `cancel` (the cancellation handler) exchanges in finished; if it took the state from
//   armed, it resumes with `CancellationError`. A cancelled waiter's wheel entry stays until
//   the wheel sweeps it or its deadline comes; then it does nothing.
//
// - `wake` (`withTimeout`'s operation, on finishing) ends the wait early and normally: it
//   exchanges in woken and resumes if it took the state from armed; if it came before `arm`,
//   `arm` fails and the waiting task resumes itself. The waiter tells the two endings apart
//   with `wasWoken`.
//
// The wheel holds one strong reference to the waiter and the sleeping task another, so the
// object outlives both the timer and the cancellation handler whichever runs last.

import Synchronization

final class SleepWaiter: @unchecked Sendable {
    // @unchecked Sendable: `continuation` is written once, by the sleeping task, before the
    // releasing idle → armed exchange, and read only by the party that moves the state from
    // armed to finished with an acquiring operation; so the write happens before the read and
    // at most one party reads it. `state` is atomic.
    private var continuation: UnsafeContinuation<Void, any Error>?
    private let state = Atomic<UInt8>(SleepWaiter.idle)

    private static let idle: UInt8 = 0
    private static let armed: UInt8 = 1
    private static let finished: UInt8 = 2
    private static let woken: UInt8 = 3

    init() {}

    /// Sleeping task: publishes the continuation. Returns false if the task was cancelled
    /// first; the caller then resumes the continuation itself and does not set a timer.
    func arm(_ continuation: UnsafeContinuation<Void, any Error>) -> Bool {
        self.continuation = continuation
        // Releasing: the continuation is visible to whoever later takes the state from armed.
        return state.compareExchange(
            expected: Self.idle, desired: Self.armed, ordering: .releasing).exchanged
    }

    /// Timer owner, at the deadline: resumes the sleep unless it was cancelled.
    func fire() {
        // Acquiring: pairs with `arm`'s release, so `continuation` is the stored one.
        let (exchanged, found) = state.compareExchange(
            expected: Self.armed, desired: Self.finished, ordering: .acquiring)
        // Only an armed waiter reaches a wheel; otherwise it was cancelled or woken first.
        assert(exchanged || found >= Self.finished, "a sleep's timer fired before it was armed")
        guard exchanged else { return }
        continuation.unsafelyUnwrapped.resume()
    }

    /// Cancellation handler: ends the sleep with `CancellationError` if it is still waiting.
    func cancel() {
        // Acquiring for the armed case (as in `fire`); releasing so that a later `arm` that
        // fails sees a consistent state (it reads nothing else, but the exchange is one RMW).
        let previous = state.exchange(Self.finished, ordering: .acquiringAndReleasing)
        guard previous == Self.armed else { return }
        continuation.unsafelyUnwrapped.resume(throwing: CancellationError())
    }

    /// Ends the wait early, without an error (see the file comment). Any thread.
    func wake() {
        // Acquiring for the armed case (as in `fire`); releasing so that the waiter, reading
        // the state after it resumes, sees what the waking thread did before.
        let previous = state.exchange(Self.woken, ordering: .acquiringAndReleasing)
        guard previous == Self.armed else { return }
        continuation.unsafelyUnwrapped.resume()
    }

    /// Waiting task, after it resumed: whether `wake` ended the wait (rather than the timer).
    var wasWoken: Bool { state.load(ordering: .acquiring) == Self.woken }

    /// Whether the wait has ended (fired, cancelled or woken). Relaxed: the sweep uses it only
    /// to drop entries that will do nothing; a stale "not ended" keeps an entry a little
    /// longer, and an ended wait never starts again.
    var isFinished: Bool { state.load(ordering: .relaxed) >= Self.finished }
}
