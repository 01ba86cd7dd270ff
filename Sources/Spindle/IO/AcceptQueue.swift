// The acceptor's state as a pure value: connections accepted but not yet taken, the tasks
// waiting for one (first come, first served), and where the multishot ACCEPT stands. The
// `Acceptor` keeps it behind a lock and performs what each transition returns (resume a
// waiter, arm or cancel the request); nothing here touches a thread, a ring or a descriptor,
// so the transitions are tested on their own (AcceptorTests).
//
// Several tasks may iterate one listener at once, as with Tokio's `accept(&self)` or Go's
// `Accept`: each connection goes to exactly one of them, the longest-waiting first. A waiter is
// known by an id, so a cancelled one removes itself and nobody else.
//
// Backpressure. A multishot request accepts every connection the kernel completes, whether or
// not anybody asks. Once `limit` accepted connections wait here untaken, the request is
// cancelled and further connections stay in the kernel's listen backlog (where the backlog,
// not this process, bounds them, and clients are slowed by TCP itself). The request is armed
// again when a consumer has taken the queue down to half the limit, or finds it empty. The
// cancel takes effect at the ring's next submission; connections the kernel accepted before it
// (at most what was in the backlog then) still arrive and are kept, never dropped.

/// What a task waiting in `Acceptor.next()` is resumed with.
enum AcceptDelivery: Equatable, Sendable {
    /// An accepted connection's descriptor, now the waiter's.
    case connection(Int32)
    /// The request failed with this errno (the waiter decides: re-arm, back off, throw).
    case failure(Int32)
    /// The task was cancelled.
    case cancelled
    /// The request ended under the waiter without a result for it: wait again (and arm).
    case retry
}

struct AcceptQueue<Waiter, Request> {
    /// Set by `closing`: a request armed from now on is cancelled at once.
    private var isClosing = false

    /// Where the multishot request stands.
    enum Multishot {
        /// None armed: the next waiter (or a consumer below the low-water mark) arms one.
        case idle
        /// A task is arming it on its ring right now.
        case arming
        /// Armed; `Request` says where, to cancel it.
        case armed(Request)
        /// Cancelled for backpressure; its last completion has not arrived yet.
        case stopping
    }

    /// What `next()` must do after asking for a connection.
    enum Take: Equatable {
        /// Return this descriptor; arm the request first if `arm` (it had stopped for
        /// backpressure and the queue is now low).
        case connection(Int32, arm: Bool)
        /// The task is cancelled and nothing is ready: throw.
        case cancelled
        /// Registered as a waiter; arm the request first if `arm`.
        case wait(arm: Bool)
    }

    /// What a completion of the multishot request asks the acceptor to do.
    struct Completed {
        /// Resume this waiter with this delivery.
        var deliver: (waiter: Waiter, delivery: AcceptDelivery)? = nil
        /// Resume these waiters with `.retry`: the request ended and they must arm a new one.
        var retry: [Waiter] = []
        /// Cancel this request (backpressure).
        var cancel: Request? = nil
    }

    /// The most accepted connections kept untaken before the request is cancelled.
    let limit: Int
    private var ready: [Int32] = []
    private var readyHead = 0
    private var waiters: [(id: UInt64, waiter: Waiter)] = []
    private var lastID: UInt64 = 0
    private(set) var multishot: Multishot = .idle

    init(limit: Int) {
        self.limit = max(1, limit)
    }

    /// Connections accepted and not yet taken.
    var readyCount: Int { ready.count - readyHead }
    /// Tasks waiting for a connection.
    var waiterCount: Int { waiters.count }

    /// A fresh id for a waiter.
    mutating func makeID() -> UInt64 {
        lastID &+= 1
        return lastID
    }

    /// A task asks for a connection: a ready one, or it waits (unless it is cancelled).
    mutating func take(id: UInt64, waiter: Waiter, isCancelled: Bool) -> Take {
        if let fd = popReady() {
            return .connection(fd, arm: claimArmingIfLow())
        }
        if isCancelled { return .cancelled }
        waiters.append((id, waiter))
        guard case .idle = multishot else { return .wait(arm: false) }
        multishot = .arming
        return .wait(arm: true)
    }

    /// A ready connection without waiting or arming (a task that is not on a ring).
    mutating func takeReady() -> Int32? { popReady() }

    /// The cancelled waiter `id`, if it still waits.
    mutating func removeWaiter(_ id: UInt64) -> Waiter? {
        guard let index = waiters.firstIndex(where: { $0.id == id }) else { return nil }
        return waiters.remove(at: index).waiter
    }

    /// The request that `take` asked for has been submitted. Returns it if the listener was
    /// closed while it was being armed: the caller cancels it.
    mutating func didArm(_ request: Request) -> Request? {
        guard case .arming = multishot else { return nil }
        if isClosing {
            multishot = .stopping
            return request
        }
        multishot = .armed(request)
        return nil
    }

    /// The listener is closing: returns the armed request, if any, for the caller to cancel
    /// (one being armed right now is returned by `didArm`). Closing the descriptor is not
    /// enough: `shutdown(2)` ends a multishot accept on a TCP listener, but not on an AF_UNIX
    /// one (Linux 6.18), whose iterators then waited forever.
    mutating func closing() -> Request? {
        isClosing = true
        guard case .armed(let request) = multishot else { return nil }
        multishot = .stopping
        return request
    }

    /// The request could not be armed (the listener was closed): every waiter must learn it.
    mutating func armFailed() -> [Waiter] {
        multishot = .idle
        defer { waiters.removeAll() }
        return waiters.map(\.waiter)
    }

    /// One completion of the multishot request; `hasMore` is false for its last.
    mutating func complete(result: Int32, hasMore: Bool) -> Completed {
        var actions = Completed()
        if !hasMore { multishot = .idle }
        if !waiters.isEmpty {
            let first = waiters.removeFirst().waiter
            actions.deliver = (first, result >= 0 ? .connection(result) : .failure(-result))
        } else if result >= 0 {
            ready.append(result)
        }
        // Errors matter only to a waiter; nobody waits, so the next one re-arms.
        if !hasMore {
            actions.retry = waiters.map(\.waiter)
            waiters.removeAll()
        } else if readyCount >= limit, case .armed(let request) = multishot {
            multishot = .stopping
            actions.cancel = request
        }
        return actions
    }

    /// Every connection accepted and never taken (the acceptor is going away).
    mutating func drainReady() -> [Int32] {
        defer {
            ready.removeAll()
            readyHead = 0
        }
        return Array(ready[readyHead...])
    }

    private mutating func popReady() -> Int32? {
        guard readyHead < ready.count else { return nil }
        let fd = ready[readyHead]
        readyHead += 1
        if readyHead == ready.count {
            ready.removeAll(keepingCapacity: true)
            readyHead = 0
        } else if readyHead >= 64 && readyHead * 2 >= ready.count {
            ready.removeFirst(readyHead)
            readyHead = 0
        }
        return fd
    }

    /// Whether taking a connection must re-arm a request that stopped: the queue is down to
    /// half the limit (so the pipeline refills before the consumer runs dry).
    private mutating func claimArmingIfLow() -> Bool {
        guard case .idle = multishot, readyCount <= limit / 2 else { return false }
        multishot = .arming
        return true
    }
}
