// What a spawned task is waiting on, for the task dump (asyncio's `all_tasks`, Tokio's task
// dump, Go's SIGQUIT traceback; Core/TaskSnapshot.swift reads it).
//
// Swift gives an executor jobs, not tasks, and no way to ask a suspended task where it is. So
// the places where Spindle suspends a task (a sleep, a timeout, a channel's send or receive, a
// blocking-pool job, an io_uring request) say so themselves: each writes one word into the
// record of the spawned task it runs in before suspending, and clears it after resuming. The
// record is found through a task-local that `spawn` binds for the task's operation
// (`SpawnedTaskRecord.current`, the same binding shutdown uses to recognise its caller), so a
// task that was not spawned pays one task-local lookup per suspension and nothing else.
//
// The word packs everything (a 4-bit kind and 60 bits of detail: a descriptor and opcode, a
// deadline, a channel's address), so one relaxed store sets it and one clears it, and a reader
// always sees one whole wait, never half of two. Relaxed suffices: the word publishes nothing
// but itself, and a dump is a sample; a reader on another thread may see a wait that has just
// ended (the task's resumption is then queued or running).
//
// Tasks the spawned task starts (task-group children, `async let`, `Task {}`) inherit the
// task-local, so the record also names its owner, the task's address, stored by the task
// itself before its operation starts; a suspension point writes only when the current task is
// the owner. A child waiting on a read therefore does not make its parent look as if it were
// reading (a server task would otherwise show its last connection's wait).

import Synchronization

/// The record of one spawned task: its identity and what it waits on. Created by `spawn`, held
/// by the registry's slot until the task ends, and bound as a task-local for its operation.
@usableFromInline
final class SpawnedTaskRecord: Sendable {
    /// The registry (of a runtime or loop) that spawned it, and its slot id there.
    let registry: ObjectIdentifier
    let id: UInt64
    let name: String?
    /// CLOCK_MONOTONIC nanoseconds at spawn.
    let spawnedAt: UInt64
    /// The task's address, stored by the task itself as its first step (0 until then). Relaxed:
    /// the task reads its own store; its children are created after it (task creation orders
    /// the two); a dump only samples it.
    let owner = Atomic<UInt>(0)
    /// What the task waits on (`TaskWait`), 0 outside Spindle's waits. Relaxed: see the file
    /// comment.
    let wait = Atomic<UInt64>(0)

    init(registry: ObjectIdentifier, id: UInt64, name: String?) {
        self.registry = registry
        self.id = id
        self.name = name
        self.spawnedAt = monotonicNanos()
    }

    /// The spawned task whose operation the caller runs in (inherited by the tasks it starts).
    @TaskLocal static var current: SpawnedTaskRecord? = nil

    /// The record of the calling task if it is a spawned task itself, not a task it started.
    @usableFromInline
    static var ofCurrentTask: SpawnedTaskRecord? {
        guard let record = current, record.owner.load(ordering: .relaxed) == currentTaskAddress() else {
            return nil
        }
        return record
    }

    /// Records that the task is about to suspend on `wait` (a `TaskWait` word).
    @usableFromInline
    func suspending(on wait: UInt64) {
        self.wait.store(wait, ordering: .relaxed)
    }

    /// Records that the task has resumed.
    @usableFromInline
    func resumed() {
        wait.store(0, ordering: .relaxed)
    }

    /// For a waiting path (``SpindleChannel``'s inlinable ones, an epoll readiness wait): looks up the calling
    /// spawned task's record and stores `wait` in it; nil, with nothing stored, for any other
    /// task. Out of line, so that the inlined async frame only keeps the returned reference
    /// across its suspension (an inlined lookup there made a channel ping-pong measurably
    /// slower).
    @usableFromInline @inline(never)
    static func noteSuspending(on wait: UInt64) -> SpawnedTaskRecord? {
        guard let record = ofCurrentTask else { return nil }
        record.suspending(on: wait)
        return record
    }
}

/// The address of the current task (the same bits as its `Task` handle), 0 outside a task.
func currentTaskAddress() -> UInt {
    withUnsafeCurrentTask { task in task.map { unsafeBitCast($0, to: UInt.self) } ?? 0 }
}

/// The words a suspension point writes into its record: a kind in the top 4 bits, detail in
/// the other 60.
@usableFromInline
enum TaskWait {
    static let kindShift: UInt64 = 60
    static let detailMask: UInt64 = (1 << 60) - 1

    enum Kind: UInt64 {
        case io = 1, sleep, timeout, blockingJob, channelSend, channelReceive, readiness
    }

    static func word(_ kind: Kind, _ detail: UInt64) -> UInt64 {
        kind.rawValue << kindShift | (detail & detailMask)
    }

    /// An io_uring request: its opcode and descriptor.
    static func io(opcode: UInt8, descriptor: Int32) -> UInt64 {
        word(.io, UInt64(opcode) << 32 | UInt64(UInt32(bitPattern: descriptor)))
    }

    /// A sleep until `deadline` (CLOCK_MONOTONIC ns; later than 2^60 ns reads as never).
    static func sleep(until deadline: UInt64) -> UInt64 { word(.sleep, min(deadline, detailMask)) }

    /// A `withTimeout` waiting for its operation, until `deadline`.
    static func timeout(until deadline: UInt64) -> UInt64 { word(.timeout, min(deadline, detailMask)) }

    /// A job on a blocking pool's thread (or in its queue).
    static let blockingJob = word(.blockingJob, 0)
    /// An epoll readiness wait on `descriptor`, for reading (`isWrite` false) or writing.
    static func readiness(descriptor: Int32, isWrite: Bool) -> UInt64 {
        word(.readiness, (isWrite ? 1 << 32 : 0) | UInt64(UInt32(bitPattern: descriptor)))
    }
    /// A channel's send or receive waiting, with the channel's address (user-space addresses
    /// fit in the 60 bits).
    @usableFromInline
    static func channel(_ channel: AnyObject, isSend: Bool) -> UInt64 {
        word(isSend ? .channelSend : .channelReceive, UInt64(UInt(bitPattern: ObjectIdentifier(channel))))
    }
}
