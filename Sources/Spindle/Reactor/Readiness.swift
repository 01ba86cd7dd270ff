// One descriptor registered with an epoll reactor: its ReadinessState behind a lock, resumed
// by the reactor's thread when epoll reports the descriptor (EpollReactor.swift), and by
// whoever cancels a waiting task or closes the descriptor.
//
// Registration is edge-triggered for both directions and done once per descriptor, on the
// first wait (`ensureRegistered`): EPOLL_CTL_ADD reports the descriptor's current state as an
// event, so readiness that came before the registration is not missed either. The epoll event
// carries the object's address; the reactor holds a strong reference from registration until
// it has released it on its own thread after `deregister` (so no event it has already taken
// from the kernel can name a freed object).
//
// Waiters are resumed outside the lock. On a worker, a task resumed by its reactor's thread
// takes the LIFO slot, as a task resumed by a reaped io_uring completion does.

internal import CSpindle
import Glibc
import Synchronization

final class Readiness: @unchecked Sendable {
    // @unchecked Sendable: `state` is behind its lock; `registered` is behind the same lock;
    // the rest is immutable.

    typealias Waiter = UnsafeContinuation<ReadinessWakeup, Never>

    let fd: Int32
    let reactor: EpollReactor
    private let state = Lock(State())

    private struct State {
        var readiness = ReadinessState<Waiter>()
        var registered = false
        var deregistered = false
    }

    init(fd: Int32, reactor: EpollReactor) {
        self.fd = fd
        self.reactor = reactor
    }

    /// Adds the descriptor to the reactor's epoll set, once (later calls do nothing). Returns 0
    /// or the errno of EPOLL_CTL_ADD.
    func ensureRegistered() -> Int32 {
        state.withLock { state -> Int32 in
            if state.registered || state.deregistered { return 0 }
            let result = reactor.add(self)
            if result == 0 { state.registered = true }
            return result
        }
    }

    /// Tasks waiting now (for tests).
    var waiterCount: Int { state.withLock { $0.readiness.waiterCount } }

    /// The sequence of `interest` to pass to `wait` (read before the system call is tried).
    func sequence(_ interest: ReadinessInterest) -> UInt64 {
        state.withLock { $0.readiness.sequence(interest) }
    }

    /// Waits for a readiness event of `interest` after `sequence` (or cancellation, or close).
    nonisolated(nonsending) func wait(_ interest: ReadinessInterest, after sequence: UInt64) async -> ReadinessWakeup {
        let id = state.withLock { $0.readiness.makeID() }
        return await withTaskCancellationHandler {
            await withUnsafeContinuation { (continuation: Waiter) in
                let immediate = state.withLock { state -> ReadinessWakeup? in
                    let result = state.readiness.wait(
                        id: id, interest, after: sequence, waiter: continuation, isCancelled: Task.isCancelled)
                    if result == nil { reactor.waiterCount.add(1, ordering: .relaxed) }
                    return result
                }
                if let immediate { continuation.resume(returning: immediate) }
            }
        } onCancel: {
            let waiter = state.withLock { state -> Waiter? in
                let waiter = state.readiness.remove(id)
                if waiter != nil { reactor.waiterCount.subtract(1, ordering: .relaxed) }
                return waiter
            }
            waiter?.resume(returning: .cancelled)
        }
    }

    /// The reactor's thread: an epoll event with `events` for this descriptor.
    func deliver(_ events: UInt32) {
        let woken = state.withLock { state -> ReadinessState<Waiter>.Woken in
            let woken = state.readiness.deliver(
                readable: events & EpollReactor.readMask != 0, writable: events & EpollReactor.writeMask != 0)
            let count = woken.count
            if count > 0 { reactor.waiterCount.subtract(count, ordering: .relaxed) }
            return woken
        }
        woken.reader?.resume(returning: .ready)
        woken.writer?.resume(returning: .ready)
        for waiter in woken.more { waiter.resume(returning: .ready) }
    }

    /// The descriptor is closing (or the reactor is): resumes every waiter with `.closed`, and
    /// later waits end at once.
    func close() {
        let waiters = state.withLock { state -> [Waiter] in
            let waiters = state.readiness.close(as: .closed)
            if !waiters.isEmpty { reactor.waiterCount.subtract(waiters.count, ordering: .relaxed) }
            return waiters
        }
        for waiter in waiters { waiter.resume(returning: .closed) }
    }

    /// Before the descriptor's number is closed: removes it from the epoll set (so a reused
    /// number is never reported as this one) and lets the reactor drop its reference.
    func deregister() {
        let wasRegistered = state.withLock { state -> Bool in
            defer {
                state.registered = false
                state.deregistered = true
            }
            return state.registered
        }
        close()
        if wasRegistered { reactor.remove(self) }
    }
}
