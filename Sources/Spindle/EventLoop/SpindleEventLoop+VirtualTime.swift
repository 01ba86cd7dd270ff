// Virtual time: an event loop whose clock stands still while it has work and jumps to the next
// timer's deadline when it has none (Tokio's `start_paused`, whose auto-advance this follows),
// so a test of an hour of timeouts and back-offs runs in milliseconds, the same way every run.
//
// What follows the loop's clock: every deadline set on its wheels, which is every timer the
// loop has. `Spindle.sleep(for:)`, `withTimeout`, the clock's own `sleep` (LoopClock), the grace
// period of the loop's shutdown, and `Task.sleep` on the loop's executor: the scheduling hook
// hands over a ContinuousClock instant, converted by its real distance (exact after rounding
// up to the tick, unless the thread was descheduled inside `Task.sleep`). What cannot: code that reads a real clock itself
// (`ContinuousClock.now`, `Date()`); such code should take the loop's `clock` (a Swift
// `Clock`). `Spindle.sleep(until:)` with a `ContinuousClock` instant converts it by its real
// distance from the present.
//
// When the loop jumps. Only in `park`, when it has run out of jobs: it polls its reactor
// without waiting (completions already there, I/O a peer has answered), and if that made
// nothing runnable and no job came from another thread, it moves the clock to the earliest
// deadline (rounded up to its millisecond tick) instead of sleeping, and the next turn fires
// what is due. I/O in flight does not hold time back: a read from a silent peer under a
// one-hour timeout times out at once, as in Tokio. What does: a blocking-pool job that one of
// the loop's tasks awaits (`toThread`, `runInExecutor`), as Tokio's `spawn_blocking` inhibits
// auto-advance; the loop then parks for real, with no timeout, until that job's end resumes
// its task (or other work comes). A loop with no timer at all parks for real too.
//
// The hazard, said plainly: work outside the loop that a task waits for without a blocking
// job (a task on another executor, a thread resuming a continuation, a file read the kernel
// runs in its worker threads) loses to any timer the loop has; run it with `toThread` to make
// time wait for it.
//
// Why only the event loop. A `Runtime` has N workers that run, steal and park independently:
// the moment when all of them are idle at once is a race, and after a jump the order in which
// the woken tasks run depends on which worker takes which first. Virtual time there would be
// neither safe (a worker may jump while another is about to set an earlier timer) nor
// deterministic; Tokio refuses `pause()` outside its current-thread runtime for the same reason.
//
// Cost of real time: one test of an optional at park time, and one in reading the clock when
// timers are set or fired; nothing on the path of a job.

import Synchronization

extension SpindleEventLoop {
    /// Which clock a loop's timers follow.
    ///
    /// ```swift
    /// // Throws TimeoutError after an hour of virtual time: a few milliseconds of real time.
    /// try await SpindleEventLoop.run(clock: .virtual) {
    ///     try await withTimeout(.seconds(3600)) { try await silentPeer.read() }
    /// }
    /// ```
    public enum ClockMode: Sendable, Equatable {
        /// CLOCK_MONOTONIC: timers fire when the real time comes.
        case real
        /// A virtual clock, for tests (Tokio's `start_paused`, swift-clocks' `TestClock` without
        /// the manual `advance`): it starts at the real monotonic time when the loop is made
        /// (rounded up to a millisecond), stands still while the loop has work, and when the
        /// loop has nothing to run and no I/O completion ready it jumps to the earliest timer's
        /// deadline. A blocking-pool job awaited by one of the loop's tasks holds it still.
        /// Read it with ``SpindleEventLoop/clock``. See docs/virtual-time.md.
        case virtual
    }

    /// Which clock this loop's timers follow.
    public var clockMode: ClockMode { virtualClock == nil ? .real : .virtual }

    /// The loop's present in CLOCK_MONOTONIC nanoseconds: the real one, or the virtual one.
    /// Any thread.
    @inline(__always)
    var now: UInt64 { virtualClock?.now ?? monotonicNanos() }

    /// What the loop's wheels read as the present: `virtual`'s, or CLOCK_MONOTONIC (initialisers).
    static func wheelClock(_ virtual: VirtualClock?) -> @Sendable () -> UInt64 {
        guard let virtual else { return monotonicNanos }
        return { virtual.now }
    }

    /// The `now` against which the afterlife re-arms this loop's timers once it has stopped.
    /// A virtual loop's deadlines mean nothing to a real clock: its timers fire at once there,
    /// as the loop, idle, would have jumped to them.
    var afterlifeNow: UInt64 { virtualClock == nil ? monotonicNanos() : .max }

    /// The caller's loop if its time is virtual, having counted a blocking-pool wait of one of
    /// its tasks (which holds its clock still until ``endBlockingWait()``); else nil.
    static func beginBlockingWait() -> SpindleEventLoop? {
        guard let loop = current, loop.virtualClock != nil else { return nil }
        loop.blockingWaits.add(1, ordering: .relaxed)  // relaxed: see `parkVirtually`
        return loop
    }

    /// Ends a wait counted by ``beginBlockingWait()``.
    func endBlockingWait() {
        blockingWaits.subtract(1, ordering: .relaxed)
    }

    /// `park`'s wait on a virtual loop: jump to `wakeAt` (the earliest deadline), or park for
    /// real when there is nothing to jump to or a blocking job must end first.
    func parkVirtually(until wakeAt: UInt64, clock: VirtualClock) {
        // Relaxed: this loop's tasks move the count on this thread. A count still above zero
        // for a job that has ended means its resumption is in the inbox or on its way there,
        // and that enqueue wakes the real park below (the `parked` protocol).
        if wakeAt == .max || blockingWaits.load(ordering: .relaxed) > 0 {
            reactor.park(deadline: .max)
            return
        }
        reactor.park(deadline: 0)  // take what has completed, without waiting
        if !runQueue.isEmpty || !resumed.isEmpty
            || inboxCount.load(ordering: .sequentiallyConsistent) > 0 {  // pairs as in `park`
            return
        }
        clock.advance(to: wakeAt)
    }
}
