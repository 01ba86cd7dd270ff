// A ring's counters: what it submitted and reaped, and what is in flight.
//
// Written by whoever holds the ring's token (its owner, or the blocked-worker watch while the
// owner is stuck in a job): the token's acquire-release orders those writers one after the
// other (Ring+Token.swift), so the single-writer bumps of SingleWriterCounter.swift suffice.
// Read relaxed from any thread for snapshots; a reader learns that a request has reached the
// kernel, not anything about memory the ring wrote.

import Synchronization

final class RingCounters: Sendable {
    /// io_uring requests (SQEs) submitted, the park's eventfd read included.
    let sqesSubmitted = Atomic<UInt64>(0)
    /// Completions (CQEs) reaped.
    let cqesReaped = Atomic<UInt64>(0)
    /// Operations in flight, stored (not bumped) after each submission and reap.
    let operationsInFlight = Atomic<UInt64>(0)
    /// CQEs the blocked-worker watch reaped as the ring's adopter (a subset of `cqesReaped`).
    let cqesReapedByWatch = Atomic<UInt64>(0)
}
