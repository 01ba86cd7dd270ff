// The one owner of a file descriptor: every socket and file type holds exactly one, and nothing
// else closes the number.
//
// Operations bracket their use of the descriptor with `begin`/`end`, so the number stays valid
// (and is never reused by another open) while the kernel works on it. `close()` marks the
// descriptor closed at once: new operations fail with `SpindleIOError.closed`; if some are in flight,
// a socket is shut down to make them complete (pending receives see end of stream, accepts
// fail, sends fail), and whichever of `close` or the last `end` finds the count at zero closes
// the number. So a double close cannot happen, and close never races an operation.
//
// `state` packs the closed flag (bit 0) and the number of operations in flight (the rest).
// Every update is acquire-release: the final close happens after every operation's last use
// of the number (their `end` releases, the closer's update acquires).
//
// On epoll, the descriptor also has a `Readiness` (Reactor/Readiness.swift), made by the first
// operation that has to wait and registered with that task's reactor, once: `close()` resumes
// its waiters (they see `SpindleIOError.closed`), and the final close removes it from the epoll set
// before the number is closed, so a reused number is never reported as this one.

internal import CSpindle
import Glibc
import Synchronization

final class Descriptor: Sendable {
    let fd: Int32
    private let isSocket: Bool
    private let state = Atomic<UInt64>(0)
    /// Set once, by the first operation that waits for readiness on epoll.
    private let readinessSlot = AtomicLazyReference<Readiness>()

    init(_ fd: Int32, isSocket: Bool) {
        self.fd = fd
        self.isSocket = isSocket
    }

    deinit {
        // No operation can be in flight: each holds a reference to its owner, which holds us.
        if state.load(ordering: .acquiring) & 1 == 0 { closeNumber() }
    }

    private func closeNumber() {
        readinessSlot.load()?.deregister()
        Glibc.close(fd)
    }

    /// Tasks waiting for this descriptor's readiness on epoll (for tests).
    var readinessWaiters: Int { readinessSlot.load()?.waiterCount ?? 0 }

    /// The descriptor's readiness on epoll, made and registered with `reactor` by the first
    /// caller (a descriptor stays with the reactor it was first registered with). With
    /// `nonBlocking`, the first caller also sets O_NONBLOCK (a listener, for accept4).
    func readiness(on reactor: EpollReactor, nonBlocking: Bool = false) -> Readiness {
        if let existing = readinessSlot.load() { return existing }
        if nonBlocking { _ = spindle_set_nonblocking(fd, 1) }
        let readiness = readinessSlot.storeIfNil(Readiness(fd: fd, reactor: reactor))
        // A `close()` that looked for the readiness before it existed: its closed flag is set
        // before it loads the slot, and ours is checked after we stored it (both
        // read-modify-writes, then loads), so one of the two sees the other.
        if isClosed { readiness.close() }
        return readiness
    }

    var isClosed: Bool { state.load(ordering: .acquiring) & 1 != 0 }

    /// Starts an operation; returns the descriptor number, valid until `end()`.
    func begin(_ operation: SpindleIOError.Operation) throws(SpindleIOError) -> Int32 {
        var current = state.load(ordering: .relaxed)
        while true {
            if current & 1 != 0 { throw SpindleIOError.closed(operation) }
            let (exchanged, original) = state.weakCompareExchange(
                expected: current, desired: current + 2, ordering: .acquiringAndReleasing)
            if exchanged { return fd }
            current = original
        }
    }

    /// Ends an operation started by `begin`.
    func end() {
        if state.subtract(2, ordering: .acquiringAndReleasing).newValue == 1 { closeNumber() }
    }

    /// Runs `body` between `begin` and `end`.
    nonisolated(nonsending) func using<T>(
        _ operation: SpindleIOError.Operation, _ body: nonisolated(nonsending) (Int32) async throws -> T
    ) async throws -> T {
        let fd = try begin(operation)
        defer { end() }
        return try await body(fd)
    }

    /// Closes the descriptor now, or as soon as the operations in flight have completed (a
    /// socket's are made to complete). Later calls do nothing.
    func close() {
        // Mark closed and hold a use of our own, so the shutdown below can never touch a
        // number that the last operation's `end` has already closed (and the process reused).
        var current = state.load(ordering: .relaxed)
        while true {
            if current & 1 != 0 { return }
            let (exchanged, original) = state.weakCompareExchange(
                expected: current, desired: (current | 1) + 2, ordering: .acquiringAndReleasing)
            if exchanged { break }
            current = original
        }
        if current >> 1 > 0 && isSocket { _ = Glibc.shutdown(fd, Int32(SHUT_RDWR)) }
        readinessSlot.load()?.close()  // epoll: wake the waiters (they see the closed flag)
        end()
    }
}
