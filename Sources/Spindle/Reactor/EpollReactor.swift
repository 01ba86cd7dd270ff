// The epoll backend of a thread that runs jobs (Reactor.swift): for runs where io_uring is
// refused (Docker's and containerd's default seccomp profiles, kernel.io_uring_disabled, gVisor).
//
// One epoll instance per worker or event loop, created on its thread. A thread with nothing to
// run parks in `epoll_pwait2` until a readiness event, the next timer deadline (nanosecond
// timeout), or a wake-up: an eventfd registered once, level-triggered, which other threads
// write (sticky, like the ring's: a wake sent before the park makes it return at once). The
// owner drains the eventfd when it sees it.
//
// Operations do not go through the reactor: they try their non-blocking system call on the
// task's own thread, and only on EAGAIN wait on their descriptor's `Readiness`
// (Readiness.swift), registered edge-triggered with this reactor once per descriptor. The
// reactor's thread turns epoll events into resumed waiters. Unlike a ring, the kernel holds no
// buffer of ours here: a cancelled wait is simply removed, and the data stays in the socket.
//
// Registrations are held strongly by `registrations` (the epoll event carries the object's
// address). `remove` (any thread, at the descriptor's final close) deletes the descriptor from
// the epoll set first and then queues the object for release; the owner releases the queue at
// the start of its next wait, after it has handled every event the kernel handed it before the
// delete, so no event can name a freed object.
//
// Counters (RingCounters, so the metrics keep one shape): `cqesReaped` counts readiness events
// handled, `operationsInFlight` the tasks waiting for readiness; `sqesSubmitted` stays 0.

internal import CSpindle
internal import CURing
import Glibc
import Synchronization

final class EpollReactor: @unchecked Sendable {
    // @unchecked Sendable: `events` and `isOpen` are the owner's (the thread that created the
    // reactor); `wakeFD` is used by other threads only under `wakeLock`; the registrations are
    // behind their lock; the counters are atomics; the rest is immutable.

    static let capacity: Int32 = 256
    /// The tag of the wake eventfd's events (registrations are object addresses, never 0).
    static let wakeTag: UInt64 = 0
    static let readMask = spindle_epoll_read_mask()
    static let writeMask = spindle_epoll_write_mask()

    let epollFD: Int32
    let wakeFD: Int32
    let counters: RingCounters
    /// Tasks waiting for readiness on this reactor's descriptors. Relaxed: a hint for `flush`
    /// (skip the system call when nobody waits) and for metrics; a waiter that registers after
    /// the check is served by the next flush or park, and its event stays in the epoll set.
    let waiterCount = Atomic<Int>(0)
    private let wakeLock = Lock(false)  // true once closed
    private let registrations = Lock(Registrations())
    /// Whether `registrations.released` may be non-empty. Release on set (inside the lock),
    /// acquire on the owner's check: a seen flag means the lock acquisition sees the entries.
    private let hasReleases = Atomic<Bool>(false)
    /// Owner only: the buffer epoll fills.
    private let events: UnsafeMutableRawPointer
    /// Owner only.
    private var isOpen = true

    private struct Registrations {
        var live: [ObjectIdentifier: Readiness] = [:]
        var released: [Readiness] = []
        var isClosed = false
    }

    /// Creates a reactor owned by the calling thread, counting into `counters`.
    init(counters: RingCounters = RingCounters()) throws(SpindleError) {
        let epollFD = epoll_create1(Int32(EPOLL_CLOEXEC))
        if epollFD < 0 { throw SpindleError.systemCallFailed(call: "epoll_create1", errno: errno) }
        let wakeFD = eventfd(0, Int32(EFD_CLOEXEC | EFD_NONBLOCK))
        if wakeFD < 0 {
            let code = errno
            Glibc.close(epollFD)
            throw SpindleError.systemCallFailed(call: "eventfd", errno: code)
        }
        let added = spindle_epoll_add(epollFD, wakeFD, Self.wakeTag, 0)
        if added < 0 {
            Glibc.close(wakeFD)
            Glibc.close(epollFD)
            throw SpindleError.systemCallFailed(call: "epoll_ctl", errno: -added)
        }
        self.epollFD = epollFD
        self.wakeFD = wakeFD
        self.counters = counters
        events = .allocate(byteCount: Int(Self.capacity * spindle_epoll_event_size()), alignment: 8)
    }

    deinit {
        if isOpen { close() }
        events.deallocate()
    }

    /// The epoll reactor of the thread running the caller, or nil.
    static var current: EpollReactor? {
        guard let raw = spindle_current_epoll() else { return nil }
        return Unmanaged<EpollReactor>.fromOpaque(raw).takeUnretainedValue()
    }

    // MARK: Registrations (any thread)

    /// Adds `readiness`'s descriptor (edge-triggered, both directions). 0 or an errno.
    func add(_ readiness: Readiness) -> Int32 {
        // Under the lock, like `remove` and `close`: the epoll descriptor is never used after
        // `close` has closed its number (which the process may have reused).
        registrations.withLock { registrations -> Int32 in
            if registrations.isClosed { return EBADF }
            let tag = UInt64(UInt(bitPattern: Unmanaged.passUnretained(readiness).toOpaque()))
            let result = spindle_epoll_add(epollFD, readiness.fd, tag, 1)
            if result < 0 { return -result }
            registrations.live[ObjectIdentifier(readiness)] = readiness
            return 0
        }
    }

    /// Removes `readiness`'s descriptor from the set (before its number is closed) and queues
    /// the object for release by the owner.
    func remove(_ readiness: Readiness) {
        registrations.withLock { registrations in
            if registrations.isClosed { return }
            _ = epoll_ctl(epollFD, EPOLL_CTL_DEL, readiness.fd, nil)
            guard let removed = registrations.live.removeValue(forKey: ObjectIdentifier(readiness)) else { return }
            registrations.released.append(removed)
            hasReleases.store(true, ordering: .releasing)
        }
    }

    // MARK: Waking (any thread)

    /// Ends the owner's current or next park.
    func wake() {
        wakeLock.withLock { isClosed in
            if isClosed { return }
            var one: UInt64 = 1
            _ = write(wakeFD, &one, 8)
        }
    }

    // MARK: Waiting (owner only)

    /// Tasks waiting for readiness (the reactor's operations in flight).
    var inFlightCount: Int { waiterCount.load(ordering: .relaxed) }

    /// Handles the events already there, without waiting; no system call when nobody waits.
    func flush() {
        releaseRemoved()
        if waiterCount.load(ordering: .relaxed) > 0 { poll(nanoseconds: 0) }
    }

    /// Sleeps until an event, a wake, or `deadline` (CLOCK_MONOTONIC ns; `.max` for none).
    func park(deadline: UInt64) {
        releaseRemoved()
        if deadline == .max {
            poll(nanoseconds: -1)
        } else {
            let now = monotonicNanos()
            poll(nanoseconds: deadline > now ? Int64(clamping: deadline - now) : 0)
        }
    }

    private func poll(nanoseconds: Int64) {
        let buffer = events.assumingMemoryBound(to: epoll_event.self)
        var handled: UInt64 = 0
        while true {
            let count = spindle_epoll_wait(epollFD, buffer, Self.capacity, handled == 0 ? nanoseconds : 0)
            if count <= 0 { break }  // none, or EINTR (the caller comes back soon)
            for index in 0..<count {
                let tag = spindle_epoll_event_data(buffer, index)
                if tag == Self.wakeTag {
                    var value: UInt64 = 0
                    _ = read(wakeFD, &value, 8)
                    continue
                }
                let readiness = Unmanaged<Readiness>.fromOpaque(UnsafeRawPointer(bitPattern: UInt(tag))!)
                    .takeUnretainedValue()
                readiness.deliver(spindle_epoll_event_mask(buffer, index))
            }
            handled += UInt64(count)
            if count < Self.capacity { break }  // a full buffer: more may be waiting
        }
        if handled > 0 { counters.cqesReaped.bump(by: handled) }
        counters.operationsInFlight.store(UInt64(max(0, waiterCount.load(ordering: .relaxed))), ordering: .relaxed)
    }

    private func releaseRemoved() {
        // Acquire: pairs with the release in `remove`.
        guard hasReleases.load(ordering: .acquiring) else { return }
        let released = registrations.withLock { registrations -> [Readiness] in
            hasReleases.store(false, ordering: .relaxed)  // inside the lock: nothing is missed
            defer { registrations.released.removeAll() }
            return registrations.released
        }
        _ = released  // dropped here, after every event taken before their removal
    }

    /// Owner only, once, when the owning thread stops: every task still waiting is resumed
    /// (its operation ends with `SpindleIOError.closed`; nothing of ours is in the kernel's hands),
    /// then the epoll instance and the eventfd are closed.
    func close() {
        guard isOpen else { return }
        isOpen = false
        let live = registrations.withLock { registrations -> [Readiness] in
            registrations.isClosed = true
            defer {
                registrations.live.removeAll()
                registrations.released.removeAll()
            }
            return Array(registrations.live.values)
        }
        for readiness in live { readiness.close() }
        wakeLock.withLock { isClosed in
            isClosed = true
            Glibc.close(wakeFD)
        }
        _ = registrations.withLock { _ in Glibc.close(epollFD) }
        counters.operationsInFlight.store(0, ordering: .relaxed)
    }
}
