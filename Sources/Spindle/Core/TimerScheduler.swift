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
}
