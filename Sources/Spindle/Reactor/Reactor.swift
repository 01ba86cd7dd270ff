// The reactor of a thread that runs jobs (a worker, an event loop): where it parks when it has
// nothing to run, how other threads wake it, and where its tasks' I/O completes. Two backends:
// an io_uring (`Ring`, the fast path) and epoll (`EpollReactor`, for sandboxes that refuse
// io_uring), chosen once per runtime or loop when it starts (ReactorSelection.swift).
//
// An enum over the two classes, not an existential: it is one word (the payloads' spare bits
// tell the cases apart), and each call is a test and a direct call the optimizer can inline,
// on the paths every job crosses (flush, park, the in-flight check before a spin).
//
// What differs between the backends is not the scheduler (its queues, timers, parking protocol
// and wake-ups are shared) but how an operation waits: on a ring, a task prepares an SQE and
// resumes with its completion (IO/Submission.swift); on epoll, it tries its non-blocking system
// call and, on EAGAIN, waits for its descriptor's readiness (Readiness.swift,
// IO/ReadinessIO.swift). The thread-local pointer of each backend says which one the
// calling thread has.

internal import CSpindle

enum Reactor {
    case ring(Ring)
    case epoll(EpollReactor)

    /// Creates a reactor of `backend` on the calling thread, its owner. `adoptable` asks for a
    /// ring the blocked-worker watch may reap (Ring+Adoption.swift); epoll has no adoption.
    init(_ backend: ReactorBackend, counters: RingCounters, adoptable: Bool = false) throws(SpindleError) {
        switch backend {
        case .ioUring: self = .ring(try Ring(counters: counters, adoptable: adoptable))
        case .epoll: self = .epoll(try EpollReactor(counters: counters))
        }
    }

    var backend: ReactorBackend {
        switch self {
        case .ring: return .ioUring
        case .epoll: return .epoll
        }
    }

    /// The ring, on io_uring.
    var ring: Ring? {
        if case .ring(let ring) = self { return ring }
        return nil
    }

    /// The epoll reactor, on epoll.
    var epoll: EpollReactor? {
        if case .epoll(let epoll) = self { return epoll }
        return nil
    }

    /// The reactor of the thread running the caller, or nil.
    static var current: Reactor? {
        if let ring = Ring.current { return .ring(ring) }
        if let epoll = EpollReactor.current { return .epoll(epoll) }
        return nil
    }

    /// Owner only: makes `reactor` the calling thread's (nil clears it).
    static func setCurrent(_ reactor: Reactor?) {
        Ring.setCurrent(reactor?.ring)
        spindle_set_current_epoll(reactor?.epoll.map { Unmanaged.passUnretained($0).toOpaque() })
    }

    /// Owner only: submits what was prepared and handles what completed, without waiting.
    @inline(__always)
    func flush() {
        switch self {
        case .ring(let ring): ring.flush()
        case .epoll(let epoll): epoll.flush()
        }
    }

    /// Owner only: sleeps until I/O completes, a wake, or `deadline` (CLOCK_MONOTONIC ns;
    /// `.max` for none).
    @inline(__always)
    func park(deadline: UInt64) {
        switch self {
        case .ring(let ring): ring.park(deadline: deadline)
        case .epoll(let epoll): epoll.park(deadline: deadline)
        }
    }

    /// Any thread: ends the owner's current or next park.
    @inline(__always)
    func wake() {
        switch self {
        case .ring(let ring): ring.wake()
        case .epoll(let epoll): epoll.wake()
        }
    }

    /// Any thread: operations in flight (a ring's requests, epoll's readiness waiters).
    @inline(__always)
    var inFlightCount: Int {
        switch self {
        case .ring(let ring): return ring.inFlightCount
        case .epoll(let epoll): return epoll.inFlightCount
        }
    }

    /// Owner only, once, when its thread stops: a ring cancels what is in flight and waits for
    /// those completions (Ring+Close.swift); epoll resumes its waiters (nothing of theirs is in
    /// the kernel's hands).
    func close() {
        switch self {
        case .ring(let ring): ring.close()
        case .epoll(let epoll): epoll.close()
        }
    }
}
