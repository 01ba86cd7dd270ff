// Which Spindle executor, if any, the calling thread belongs to.
//
// Each worker and event loop thread records itself in a C thread-local when it starts running
// jobs (CSpindle's `spindle_current_worker`, `spindle_current_loop`, and the reactor's
// `spindle_current_ring`): a plain TLS load, cheaper than a Swift task-local and readable from
// code that has no task (a completion handler, a timer). The layers above read their own
// entry (Runtime.current, SpindleEventLoop.current, Ring.current); this is what they share.

internal import CSpindle

enum ExecutorContext {
    /// Whether the caller is on a thread of a Spindle runtime's worker or of an event loop
    /// (where `run` and `runBlocking` refuse to nest).
    static var isOnSpindleThread: Bool {
        spindle_current_worker() != nil || spindle_current_loop() != nil
    }
}
