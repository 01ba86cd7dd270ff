// The blocking pool's thread accounting as a pure value: how many pool threads are alive, how
// many of those are idle (asleep on the pool's semaphore, or about to be), and whether the
// pool is closed. The pool keeps it in one atomic word and moves it with compare-and-swap, so
// that a submitter's "wake an idle thread, else start one, else leave the job queued" is one
// decision that cannot double-count against a thread retiring or the pool closing at the same
// moment. Each transition returns nil when it does not apply.
//
// An idle thread is counted in `idle` from the moment it decides to sleep. Whoever takes it out
// of `idle` on its behalf (a submitter claiming it, or `closing`) posts one semaphore permit for
// it; permits are interchangeable, so "idle + permits in flight = threads in their idle phase"
// is the invariant. A thread that finds `idle == 0` when it wants to stop being idle knows a
// permit is on its way, but another thread going idle may take it (`idle` then counts the first
// again), so it waits for a permit only briefly before it looks at `idle` once more.

import Synchronization

struct PoolControl: RawRepresentable, AtomicRepresentable, Equatable, Sendable, CustomStringConvertible {
    var rawValue: UInt64

    init(rawValue: UInt64) { self.rawValue = rawValue }

    static let initial = PoolControl(rawValue: 0)

    private static let fieldMask: UInt64 = (1 << 24) - 1
    private static let oneIdle: UInt64 = 1 << 24
    private static let closedBit: UInt64 = 1 << 63

    /// The largest thread limit the packed counts can hold.
    static let maxThreadLimit = Int(fieldMask)

    /// Pool threads started and not yet exited (or committed to exiting).
    var live: Int { Int(rawValue & Self.fieldMask) }
    /// Live threads that are idle and not yet claimed.
    var idle: Int { Int((rawValue >> 24) & Self.fieldMask) }
    /// Whether shutdown has begun.
    var isClosed: Bool { rawValue & Self.closedBit != 0 }

    var description: String { "live \(live), idle \(idle)\(isClosed ? ", closed" : "")" }

    /// What a submitter must do after putting its job in the queue.
    enum Dispatch: Equatable {
        /// Post one permit: an idle thread has been claimed for the job.
        case wakeIdleThread
        /// Start a thread: one more has been counted in `live`.
        case startThread
        /// As many threads run as there are CPUs: leave the job queued for the first thread
        /// that finishes, and make sure the growth monitor is watching (it starts more threads
        /// if the busy ones turn out to be blocked rather than computing).
        case deferToMonitor
        /// Nothing: every thread is busy and the limit is reached; one of them takes the job
        /// (in FIFO order) when it finishes its own.
        case leaveQueued
        /// The pool closed meanwhile: the submitter withdraws its job if it is still queued.
        case closed
    }

    /// The submitter's decision, taken after its job is in the queue. `cpuBudget` (at most
    /// `maxThreads`) is how many threads a submitter may start at once.
    func dispatching(maxThreads: Int, cpuBudget: Int) -> (PoolControl, Dispatch) {
        if isClosed { return (self, .closed) }
        if idle > 0 { return (PoolControl(rawValue: rawValue - Self.oneIdle), .wakeIdleThread) }
        if live < cpuBudget { return (PoolControl(rawValue: rawValue + 1), .startThread) }
        if live < maxThreads { return (self, .deferToMonitor) }
        return (self, .leaveQueued)
    }

    /// The growth monitor counts one more thread; nil once closed, or at the limit.
    func addingThread(maxThreads: Int) -> PoolControl? {
        !isClosed && live < maxThreads ? PoolControl(rawValue: rawValue + 1) : nil
    }

    /// A thread that found the queue empty becomes idle; nil once closed (it exits instead).
    func enteringIdle() -> PoolControl? {
        isClosed ? nil : PoolControl(rawValue: rawValue + Self.oneIdle)
    }

    /// An idle thread that found work after all stops being idle; nil when every idle thread
    /// has been claimed (a permit is on its way to this one).
    func leavingIdle() -> PoolControl? {
        idle > 0 ? PoolControl(rawValue: rawValue - Self.oneIdle) : nil
    }

    /// An idle thread whose keep-alive ran out leaves the pool; nil when every idle thread has
    /// been claimed (a permit is on its way to this one, with a job behind it).
    func retiringIdle() -> PoolControl? {
        idle > 0 ? PoolControl(rawValue: rawValue - Self.oneIdle - 1) : nil
    }

    /// A thread that is not idle (it saw `isClosed`, was claimed to retire, or never started)
    /// leaves the pool.
    func exiting() -> PoolControl {
        precondition(live > 0, "blocking pool: thread count underflow")
        return PoolControl(rawValue: rawValue - 1)
    }

    /// Shutdown: closed for good, and every idle thread claimed (the caller posts one permit
    /// per idle thread of the old value, so they wake and exit).
    func closing() -> PoolControl {
        PoolControl(rawValue: (rawValue | Self.closedBit) & ~(Self.fieldMask << 24))
    }

    /// Every idle thread claimed so that it retires (the caller posts a permit for each).
    func claimingAllIdle() -> PoolControl {
        PoolControl(rawValue: rawValue & ~(Self.fieldMask << 24))
    }
}
