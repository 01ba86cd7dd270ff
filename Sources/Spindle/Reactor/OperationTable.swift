// The operations a ring has in flight, as slots addressed by the user_data of their requests.
//
// user_data = generation << 32 | index. A slot's generation changes every time the slot is
// freed, so a completion or a cancel request that names an old generation (the operation
// already completed and the slot now serves another) is recognised and ignored. Values whose
// top 32 bits are all ones are reserved for the ring's own requests (wake read, cancels), so a
// generation never takes that value.
//
// A slot waits in one of two ways:
// - a one-shot operation holds the continuation of the task that submitted it; the first
//   completion resumes it and frees the slot;
// - a multishot operation (accept) holds a sink, which receives every completion; the slot is
//   freed by the completion that arrives without IORING_CQE_F_MORE.
// A cancel can name a slot that is reserved but not yet submitted: the task was cancelled
// between reserving the slot and attaching its request, and the ring drained the request before
// the attach (the blocked-worker watch drains a stuck worker's inbox while that worker's job may
// still be submitting, see Ring+Adoption.swift). `noteCancel` then marks the slot, and `attach` refuses
// it: the request is never submitted and the caller resumes with -ECANCELED, as if the kernel
// had cancelled it. So no cancellation is lost, whichever comes first.
//
// No locks, no atomics: the table belongs to whichever thread holds its ring's token (the ring's
// owner, or the watch while the owner is stuck; Ring+Token.swift). The slot array grows on demand and
// freed slots are reused last-in first-out (so the hot ones stay in cache).

internal import CSpindle

/// The outcome of one io_uring request: `result` is the CQE's `res` (a count, a descriptor, or
/// a negated errno) and `flags` its flags.
struct IOCompletion: Sendable {
    var result: Int32
    var flags: UInt32

    /// Marks an operation that was never submitted because the task moved to another thread
    /// between reserving its slot and submitting (the caller retries on the new thread).
    static let notSubmitted = IOCompletion(result: Int32.min, flags: 0)
}

/// Receives the completions of a multishot request, on the ring's thread.
protocol CompletionSink: AnyObject {
    /// `hasMore` is false for the request's last completion.
    func complete(result: Int32, hasMore: Bool)
}

struct OperationTable {
    private struct Slot {
        var generation: UInt32 = 1
        var waiter: UnsafeContinuation<IOCompletion, Never>? = nil
        var sink: (any CompletionSink)? = nil
        var isReserved = false
        var inFlight = false
        /// A cancel arrived before the request was attached (see the file comment).
        var cancelledEarly = false
        var nextFree: Int32 = -1
    }

    private var slots: ContiguousArray<Slot> = []
    private var firstFree: Int32 = -1
    private(set) var inFlightCount = 0

    @inline(__always)
    private static func split(_ userData: UInt64) -> (index: Int, generation: UInt32) {
        (Int(truncatingIfNeeded: userData & 0xFFFF_FFFF), UInt32(truncatingIfNeeded: userData >> 32))
    }

    /// Reserves a slot and returns its user_data.
    mutating func reserve() -> UInt64 {
        let index: Int
        if firstFree >= 0 {
            index = Int(firstFree)
            firstFree = slots[index].nextFree
        } else {
            index = slots.count
            slots.append(Slot())
        }
        slots[index].isReserved = true
        return UInt64(slots[index].generation) << 32 | UInt64(index)
    }

    /// Marks a reserved slot as submitted, waiting with `waiter`. Returns false, and frees the
    /// slot, if a cancel for it arrived first (`noteCancel`): the caller must then not submit
    /// the request, and resumes `waiter` itself.
    @discardableResult
    mutating func attach(_ userData: UInt64, waiter: UnsafeContinuation<IOCompletion, Never>) -> Bool {
        let (index, _) = Self.split(userData)
        if slots[index].cancelledEarly {
            free(index)
            return false
        }
        slots[index].waiter = waiter
        slots[index].inFlight = true
        inFlightCount += 1
        return true
    }

    /// Marks a reserved slot as submitted, feeding `sink`.
    mutating func attach(_ userData: UInt64, sink: any CompletionSink) {
        let (index, _) = Self.split(userData)
        slots[index].sink = sink
        slots[index].inFlight = true
        inFlightCount += 1
    }

    /// Whether `userData` names a submitted operation that has not finished.
    func isInFlight(_ userData: UInt64) -> Bool {
        let (index, generation) = Self.split(userData)
        return index < slots.count && slots[index].generation == generation && slots[index].inFlight
    }

    /// A cancel request for `userData`. Returns true if the operation is in flight (the ring
    /// must submit an ASYNC_CANCEL for it); a slot that is reserved and not yet attached is
    /// marked so that `attach` refuses it; a stale user_data is ignored.
    mutating func noteCancel(_ userData: UInt64) -> Bool {
        let (index, generation) = Self.split(userData)
        guard index < slots.count, slots[index].generation == generation, slots[index].isReserved else {
            return false
        }
        if slots[index].inFlight { return true }
        slots[index].cancelledEarly = true
        return false
    }

    /// Frees a slot that was reserved but never submitted.
    mutating func release(_ userData: UInt64) {
        let (index, generation) = Self.split(userData)
        guard index < slots.count, slots[index].generation == generation,
            slots[index].isReserved, !slots[index].inFlight
        else { return }
        free(index)
    }

    private mutating func free(_ index: Int) {
        var generation = slots[index].generation &+ 1
        if generation == 0 || generation == UInt32.max { generation = 1 }
        slots[index] = Slot(generation: generation, nextFree: firstFree)
        firstFree = Int32(index)
    }

    /// Delivers a completion. A stale one (old generation) is dropped.
    mutating func complete(_ userData: UInt64, result: Int32, flags: UInt32) {
        let (index, generation) = Self.split(userData)
        guard index < slots.count, slots[index].generation == generation, slots[index].inFlight else {
            return
        }
        if let sink = slots[index].sink {
            let hasMore = spindle_cqe_has_more(flags) != 0
            if !hasMore {
                inFlightCount -= 1
                free(index)
            }
            sink.complete(result: result, hasMore: hasMore)
            return
        }
        let waiter = slots[index].waiter
        inFlightCount -= 1
        free(index)
        waiter?.resume(returning: IOCompletion(result: result, flags: flags))
    }
}
