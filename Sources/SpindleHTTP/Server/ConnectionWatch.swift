// Timeouts without a timer per operation.
//
// Wrapping every read and write in `withTimeout` would cost a child task per operation, several
// per request. Instead each connection publishes a deadline (an atomic integer: monotonic
// nanoseconds, 0 for none) and what it is waiting for, and one watchdog task per server walks
// the connections every `Configuration.watchdogPeriod`, closing those whose deadline passed.
// Closing the stream ends the read or write in flight with `SpindleIOError.closed`; the connection's
// task then sees `expired` and logs why. Setting a deadline is two relaxed stores, so a
// request's timeouts cost two clock reads and no allocation. A timeout fires between its
// duration and that plus one period.
//
// Graceful shutdown uses the same walk: connections idle between requests are closed at once,
// the others finish their current request (answered with `Connection: close`), and whatever is
// left at the shutdown deadline is closed.

import Glibc
import Synchronization

/// What a connection is waiting for, for the watchdog's log and for shutdown.
enum ConnectionPhase: UInt8, Sendable {
    /// Between requests (or before the first), no byte of the next request yet.
    case idle
    /// Reading a request head.
    case head
    /// A handler runs (a body read or a write publishes its own deadline meanwhile).
    case handling
    /// A body read waits for bytes.
    case body
    /// A write waits for the client to take bytes.
    case writing

    var timeoutDescription: String {
        switch self {
        case .idle: "keep-alive idle timeout"
        case .head: "request head timeout"
        case .handling: "shutdown deadline"
        case .body: "request body idle timeout"
        case .writing: "write stall timeout (the client does not read)"
        }
    }
}

/// Monotonic nanoseconds.
func monotonicNanoseconds() -> Int64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return Int64(now.tv_sec) * 1_000_000_000 + Int64(now.tv_nsec)
}

extension Duration {
    var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }
}

/// A connection's deadline and phase, shared by its task and the watchdog.
final class ConnectionWatch: Sendable {
    let transport: Transport
    // Relaxed suffices for the deadline and phase: the watchdog only needs some recent value,
    // and acting on a stale one is harmless (a connection closed a period late, or a deadline
    // just cleared that had passed anyway). The shutdown hand-off uses `phase` with
    // sequentially consistent ordering, see `enterIdle`.
    private let deadline = Atomic<Int64>(0)
    private let phaseValue = Atomic<UInt8>(ConnectionPhase.idle.rawValue)
    /// The phase in which the watchdog closed the connection (its reason), or 255.
    private let expiredPhase = Atomic<UInt8>(255)

    init(transport: Transport) {
        self.transport = transport
    }

    var phase: ConnectionPhase { ConnectionPhase(rawValue: phaseValue.load(ordering: .sequentiallyConsistent))! }

    /// Enters `phase` with a deadline `timeout` from now (none if nil).
    func enter(_ phase: ConnectionPhase, timeout: Duration?) {
        deadline.store(timeout.map { monotonicNanoseconds() + $0.nanoseconds } ?? 0, ordering: .relaxed)
        phaseValue.store(phase.rawValue, ordering: .sequentiallyConsistent)
    }

    /// Closes the connection if its deadline passed before `now`.
    func expireIfDue(now: Int64) {
        let due = deadline.load(ordering: .relaxed)
        if due != 0 && due < now { expire() }
    }

    /// Closes the connection, remembering the phase it was in.
    func expire() {
        let phase = phaseValue.load(ordering: .relaxed)
        _ = expiredPhase.compareExchange(expected: 255, desired: phase, ordering: .relaxed)
        transport.close()
    }

    /// Why the watchdog closed the connection, if it did.
    var expiry: ConnectionPhase? { ConnectionPhase(rawValue: expiredPhase.load(ordering: .relaxed)) }
}

/// The connections of a server, for the watchdog and shutdown.
final class ConnectionRegistry: Sendable {
    private let connections = Mutex<[ObjectIdentifier: ConnectionWatch]>([:])

    func add(_ watch: ConnectionWatch) {
        _ = connections.withLock { $0.updateValue(watch, forKey: ObjectIdentifier(watch)) }
    }

    func remove(_ watch: ConnectionWatch) {
        _ = connections.withLock { $0.removeValue(forKey: ObjectIdentifier(watch)) }
    }

    var count: Int { connections.withLock { $0.count } }

    /// Calls `body` with each connection (under the lock: `body` must not block).
    func forEach(_ body: (ConnectionWatch) -> Void) {
        connections.withLock { for watch in $0.values { body(watch) } }
    }
}
