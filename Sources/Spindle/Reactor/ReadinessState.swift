// The readiness of one descriptor on an epoll reactor, as a pure value: a sequence number per
// direction that every readiness event bumps, and the tasks waiting for the next event. The
// `Readiness` object keeps it behind a lock and resumes what each transition returns; nothing
// here touches a thread, a descriptor or the kernel (ReadinessStateTests).
//
// Why sequences rather than "ready" flags. An operation reads the sequence, tries its system
// call, and on EAGAIN waits for an event *after* that sequence. An event that arrives between
// the system call and the wait has already bumped the sequence, so the wait returns at once and
// the call is tried again: no edge of the edge-triggered registration is lost, and no flag has
// to be cleared (the race Tokio closes with its readiness "tick").
//
// A stream has at most one reader and one writer at a time (StreamCore's flags), so one waiter
// per direction is kept inline; more (several tasks accepting on one listener) go to an array.
// Close (the descriptor, or the reactor under it) resumes every waiter and makes later waits
// return at once.

/// Which readiness an operation waits for.
enum ReadinessInterest: Sendable {
    case read, write
}

/// How a readiness wait ended.
enum ReadinessWakeup: Sendable, Equatable {
    /// An event arrived after the sequence the waiter had read: try the system call again.
    case ready
    /// The waiting task was cancelled (nothing was consumed: the data stays in the socket).
    case cancelled
    /// The descriptor was closed, or the reactor it is registered with was closed.
    case closed
}

struct ReadinessState<Waiter> {
    /// The waiters an event resumes with `.ready`, outside the lock.
    struct Woken {
        var reader: Waiter? = nil
        var writer: Waiter? = nil
        var more: [Waiter] = []
        var count: Int { (reader == nil ? 0 : 1) + (writer == nil ? 0 : 1) + more.count }
    }

    private(set) var readSequence: UInt64 = 0
    private(set) var writeSequence: UInt64 = 0
    /// Set by `close`: how every later wait ends.
    private(set) var closedAs: ReadinessWakeup? = nil
    private var reader: (id: UInt64, waiter: Waiter)? = nil
    private var writer: (id: UInt64, waiter: Waiter)? = nil
    private var moreReaders: [(id: UInt64, waiter: Waiter)] = []
    private var moreWriters: [(id: UInt64, waiter: Waiter)] = []
    private var lastID: UInt64 = 0

    /// Tasks waiting now.
    var waiterCount: Int {
        (reader == nil ? 0 : 1) + (writer == nil ? 0 : 1) + moreReaders.count + moreWriters.count
    }

    func sequence(_ interest: ReadinessInterest) -> UInt64 {
        interest == .read ? readSequence : writeSequence
    }

    /// A fresh id for a waiter.
    mutating func makeID() -> UInt64 {
        lastID &+= 1
        return lastID
    }

    /// A task waits for an event after `sequence`: returns how it ends at once (an event came
    /// since, the descriptor is closed, the task is cancelled), or nil when it now waits.
    mutating func wait(
        id: UInt64, _ interest: ReadinessInterest, after sequence: UInt64, waiter: Waiter, isCancelled: Bool
    ) -> ReadinessWakeup? {
        if let closedAs { return closedAs }
        if self.sequence(interest) != sequence { return .ready }
        if isCancelled { return .cancelled }
        switch interest {
        case .read:
            if reader == nil { reader = (id, waiter) } else { moreReaders.append((id, waiter)) }
        case .write:
            if writer == nil { writer = (id, waiter) } else { moreWriters.append((id, waiter)) }
        }
        return nil
    }

    /// The waiter `id` if it still waits (it was cancelled: the caller resumes it).
    mutating func remove(_ id: UInt64) -> Waiter? {
        if let entry = reader, entry.id == id {
            reader = moreReaders.isEmpty ? nil : moreReaders.removeFirst()
            return entry.waiter
        }
        if let entry = writer, entry.id == id {
            writer = moreWriters.isEmpty ? nil : moreWriters.removeFirst()
            return entry.waiter
        }
        if let index = moreReaders.firstIndex(where: { $0.id == id }) { return moreReaders.remove(at: index).waiter }
        if let index = moreWriters.firstIndex(where: { $0.id == id }) { return moreWriters.remove(at: index).waiter }
        return nil
    }

    /// An event: bumps the sequences it concerns and hands back their waiters.
    mutating func deliver(readable: Bool, writable: Bool) -> Woken {
        var woken = Woken()
        if readable {
            readSequence &+= 1
            woken.reader = reader?.waiter
            reader = nil
            if !moreReaders.isEmpty {
                woken.more = moreReaders.map(\.waiter)
                moreReaders.removeAll()
            }
        }
        if writable {
            writeSequence &+= 1
            woken.writer = writer?.waiter
            writer = nil
            if !moreWriters.isEmpty {
                woken.more += moreWriters.map(\.waiter)
                moreWriters.removeAll()
            }
        }
        return woken
    }

    /// The descriptor (`.closed`) or its reactor (`.closed` too: the operation cannot go on
    /// there) goes away: every waiter is handed back, and later waits end at once.
    mutating func close(as wakeup: ReadinessWakeup) -> [Waiter] {
        if closedAs == nil { closedAs = wakeup }
        var all: [Waiter] = []
        if let reader { all.append(reader.waiter) }
        if let writer { all.append(writer.waiter) }
        all += moreReaders.map(\.waiter) + moreWriters.map(\.waiter)
        reader = nil
        writer = nil
        moreReaders.removeAll()
        moreWriters.removeAll()
        return all
    }
}
