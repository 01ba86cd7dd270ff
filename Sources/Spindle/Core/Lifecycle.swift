// The lifecycle every Spindle executor goes through, as one state machine: a pure value with
// transitions that say what the caller must do (`LifecycleState`), and an atomic cell that
// holds it (`Lifecycle`). Runtime+Lifecycle.swift and SpindleEventLoop+Lifecycle.swift perform the
// actions; neither spells the states itself.
//
// Two things happen to an executor, and they are not the same thing:
// - *Shutdown begins*: spawn refuses, the spawned tasks are cancelled and given a grace period.
//   Exactly one caller begins it (`beginShutdown` returns `.begin` once); every later caller
//   waits for that one's report.
// - *The run phase moves on*: running -> stopping (the threads finish what they hold and exit)
//   -> stopped (the last thread is out; from now on a job that arrives goes straight to the
//   after-stop path, Afterlife.swift).
// A runtime stops only after its shutdown, so for it the two advance together. An event loop
// can also be stopped without a shutdown (the main executor's `stop()`), and a shutdown can
// begin after that: the loop must still cancel its spawned tasks then. Hence two components,
// not one counter.
//
// Ordering: the cell is read and written sequentially consistent wherever a decision pairs
// with another thread's (an enqueuer's "push, then check stopped" against the last thread's
// "mark stopped, then drain": one of them sees the other). The hot path's question, "is this
// executor stopping?", is a relaxed load: a stale answer only routes one job to the queue it
// would have taken a moment earlier, and that queue is drained after the stop.

import Synchronization

/// The lifecycle as a value: whether shutdown has begun, and the run phase.
struct LifecycleState: Equatable, Sendable {
    enum Phase: UInt8, Comparable, Sendable {
        case running = 0, stopping = 1, stopped = 2
        static func < (a: Phase, b: Phase) -> Bool { a.rawValue < b.rawValue }
    }

    private(set) var shutdownBegun = false
    private(set) var phase = Phase.running

    init() {}

    /// What a call to shutdown must do.
    enum ShutdownAction: Equatable {
        /// This caller begins the shutdown: cancel the spawned tasks, wait out the grace
        /// period, stop.
        case begin
        /// Another caller began it: wait for its report.
        case awaitReport
    }

    mutating func beginShutdown() -> ShutdownAction {
        if shutdownBegun { return .awaitReport }
        shutdownBegun = true
        return .begin
    }

    /// True if this call moved the phase from running to stopping (the caller then wakes the
    /// threads so they see it).
    mutating func requestStop() -> Bool {
        guard phase == .running else { return false }
        phase = .stopping
        return true
    }

    /// The last thread is out. From any phase: a start that failed stops at once.
    mutating func markStopped() {
        phase = .stopped
    }

    var isStopping: Bool { phase >= .stopping }
    var isStopped: Bool { phase == .stopped }

    // The cell's encoding: bit 0 shutdown begun, bits 1-2 the phase.
    init(bits: UInt8) {
        shutdownBegun = bits & 1 != 0
        phase = Phase(rawValue: bits >> 1) ?? .stopped
    }

    var bits: UInt8 { (shutdownBegun ? 1 : 0) | phase.rawValue << 1 }
}

/// The atomic cell that holds an executor's `LifecycleState` (see the file comment).
final class Lifecycle: Sendable {
    private let cell = Atomic<UInt8>(LifecycleState().bits)

    /// The state as of a sequentially consistent load.
    var state: LifecycleState { LifecycleState(bits: cell.load(ordering: .sequentiallyConsistent)) }

    /// The hot path's check (relaxed, see the file comment).
    @inline(__always)
    var isStopping: Bool { cell.load(ordering: .relaxed) >> 1 >= LifecycleState.Phase.stopping.rawValue }

    /// Whether the last thread has stopped (sequentially consistent).
    var isStopped: Bool { state.isStopped }

    /// Whether shutdown has begun (sequentially consistent).
    var isShutDown: Bool { state.shutdownBegun }

    func beginShutdown() -> LifecycleState.ShutdownAction { update { $0.beginShutdown() } }

    @discardableResult
    func requestStop() -> Bool { update { $0.requestStop() } }

    func markStopped() { update { $0.markStopped() } }

    /// Applies `transition` atomically: a compare-and-exchange loop over the pure transition.
    private func update<Action>(_ transition: (inout LifecycleState) -> Action) -> Action {
        var bits = cell.load(ordering: .sequentiallyConsistent)
        while true {
            var next = LifecycleState(bits: bits)
            let action = transition(&next)
            let (exchanged, original) = cell.compareExchange(
                expected: bits, desired: next.bits, ordering: .sequentiallyConsistent)
            if exchanged { return action }
            bits = original
        }
    }
}
