// What the executor core needs of an executor's timers: a way to set one from any thread.
//
// A runtime and an event loop both keep timer wheels on their threads (Timers/) and a shared
// wheel for other threads; each decides where a timer set by the caller goes. The core's
// waits (a shutdown waiting out its grace period, TaskRegistry+Drain.swift) and `withTimeout`
// set timers through this, without knowing which kind of executor they are on.

protocol TimerScheduler: AnyObject, Sendable {
    /// Sets `action` to fire at `deadline` (CLOCK_MONOTONIC ns): on the calling thread's wheel
    /// if that thread is one of this executor's, else on the executor's shared wheel (or, once
    /// it has stopped, wherever its timers go then: Afterlife.swift).
    func scheduleTimer(_ action: TimerAction, deadline: UInt64)

    /// The present on the clock of this executor's timers (CLOCK_MONOTONIC ns; a virtual
    /// event loop's own clock, EventLoop/SpindleEventLoop+VirtualTime.swift). Any thread.
    var timerNow: UInt64 { get }
}

extension TimerScheduler {
    /// Real time, unless the executor says otherwise (a virtual event loop).
    var timerNow: UInt64 { monotonicNanos() }

    /// A deadline `duration` after `timerNow`, saturating: where every timer set through this
    /// executor begins.
    func timerDeadline(after duration: Duration) -> UInt64 {
        let now = timerNow
        let nanos = duration.clampedNanoseconds
        return nanos >= UInt64.max - now ? UInt64.max - 1 : now + nanos
    }

    /// Nanoseconds from `timerNow` until `deadline`, zero once it has passed.
    func timerRemaining(until deadline: UInt64) -> Int64 {
        let now = timerNow
        return deadline > now ? Int64(clamping: deadline - now) : 0
    }
}
