// The clock of an event loop whose time is virtual (Tokio's paused clock, `start_paused`).
//
// It starts at CLOCK_MONOTONIC's reading when the loop is made, rounded up to a whole
// millisecond (the wheels' tick), and from then on moves only when its loop jumps it: the loop,
// finding nothing to run, no I/O completion ready and no blocking-pool job of its own running,
// advances it to the earliest timer's deadline instead of sleeping until that deadline
// (EventLoop/SpindleEventLoop+VirtualTime.swift). Every jump lands on a whole tick, so a
// deadline a whole number of milliseconds after a jump is met exactly, and the offsets of a
// run's timestamps from the start are the same on every run.
//
// One writer (the loop's thread) and any number of readers: code on other threads reads it to
// set a timer on the loop. Relaxed is enough: a reader needs a value the clock had, not an
// ordering with anything else; a stale one sets a deadline a little early in virtual time, as
// a real clock read just before a context switch would. The loop reads its own writes.

import Synchronization

final class VirtualClock: Sendable {
    private let nanoseconds: Atomic<UInt64>

    /// A clock at `start` (CLOCK_MONOTONIC ns), rounded up to a whole tick.
    init(startingAt start: UInt64 = monotonicNanos()) {
        nanoseconds = Atomic(Self.ceilingTick(start))
    }

    /// The virtual present, in CLOCK_MONOTONIC-compatible nanoseconds.
    @inline(__always)
    var now: UInt64 { nanoseconds.load(ordering: .relaxed) }

    /// Owner only: moves the present to `deadline` rounded up to its tick (the moment the wheel
    /// fires a timer due then); never backwards.
    func advance(to deadline: UInt64) {
        let target = Self.ceilingTick(deadline)
        if target > now { nanoseconds.store(target, ordering: .relaxed) }
    }

    private static func ceilingTick(_ nanos: UInt64) -> UInt64 {
        let tick = TimerWheel.nanosPerTick
        let rest = nanos % tick
        return rest == 0 || nanos > UInt64.max - tick ? nanos : nanos - rest + tick
    }
}
