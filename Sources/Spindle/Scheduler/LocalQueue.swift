// A worker's bounded run queue: one producer (the owning worker), many consumers (the owner
// and thieves).
//
// Shape (the one Tokio and Go converged on): a fixed ring of 256 job pointers. The owner pushes
// at the tail and pops at the head, so local order is FIFO, which keeps task-group children
// finishing roughly in creation order (docs/architecture.md, "Departures from the first design", 1). Thieves
// take half of the queue from the head.
//
// The head is one 64-bit atomic packing two 32-bit indices, `steal` (high) and `real` (low).
// When they are equal nobody is stealing. A thief claims a range by moving `real` forward with
// one compare-and-swap while leaving `steal` behind; it then copies the claimed jobs and only
// afterwards moves `steal` up to `real`. The owner computes free space from `steal`, so it never
// overwrites a slot a thief is still copying, and it keeps popping (moving `real`) while a
// thief copies. 32-bit indices wrap far later than a ring of 256 could confuse them (ABA).
//
// Orderings, each an edge between the owner and a thief:
// - owner writes a slot, then stores `tail` with release; a thief loads `tail` with acquire
//   before reading slots below it, so it sees the job pointer.
// - a thief's final CAS on `head` (setting steal = real) is release; the owner loads `head`
//   with acquire before deciding a slot is free, so the thief's reads of that slot happen
//   before the owner's next write to it.
// - claiming CASes are acquire-release so that competing thieves and the owner's pop agree on
//   who owns which index.
// Slots themselves are plain memory: every access is ordered by one of the edges above.
//
// Rejected: a Chase–Lev deque (LIFO for the owner, growable): LIFO order breaks the task-group
// ordering above, and growth needs epoch reclamation. A full queue either moves its oldest half
// to the injector (Tokio's overflow) or makes its worker spill new jobs to the injector's tail;
// Worker+Placement.swift says which, and why both are needed.

import Synchronization

final class LocalQueue: @unchecked Sendable {
    // @unchecked Sendable: the buffer is raw memory whose accesses are ordered by `head` and
    // `tail` as described above; only the owning worker calls `push`, `pop` and `pushBatch`.

    static let capacity: UInt32 = 256
    private static let mask: UInt32 = capacity - 1

    /// Packed (steal << 32 | real).
    private let head = Atomic<UInt64>(0)
    /// Written only by the owner.
    private let tail = Atomic<UInt32>(0)
    private let buffer: UnsafeMutablePointer<UnownedJob?>

    init() {
        buffer = .allocate(capacity: Int(Self.capacity))
        buffer.initialize(repeating: nil, count: Int(Self.capacity))
    }

    deinit {
        buffer.deinitialize(count: Int(Self.capacity))
        buffer.deallocate()
    }

    @inline(__always)
    private static func pack(steal: UInt32, real: UInt32) -> UInt64 {
        UInt64(steal) << 32 | UInt64(real)
    }

    @inline(__always)
    private static func unpack(_ value: UInt64) -> (steal: UInt32, real: UInt32) {
        (UInt32(truncatingIfNeeded: value >> 32), UInt32(truncatingIfNeeded: value))
    }

    /// Approximate number of queued jobs (exact when called by the owner with no thief active).
    var count: Int {
        let (_, real) = Self.unpack(head.load(ordering: .acquiring))
        let t = tail.load(ordering: .acquiring)
        return Int(t &- real)
    }

    var isEmpty: Bool { count == 0 }

    /// Owner only. Appends `job`, or returns false when the ring is full (the worker then
    /// spills to the injector; see Worker+Placement.swift).
    @inline(__always)
    func tryPush(_ job: UnownedJob) -> Bool {
        // Acquire: a thief's release of `steal` must be visible before we reuse its slots.
        let (steal, _) = Self.unpack(head.load(ordering: .acquiring))
        // Relaxed: only this thread writes `tail`.
        let t = tail.load(ordering: .relaxed)
        if t &- steal >= Self.capacity { return false }
        buffer[Int(t & Self.mask)] = job
        // Release: publishes the slot write to thieves that acquire-load `tail`.
        tail.store(t &+ 1, ordering: .releasing)
        return true
    }

    /// Owner only, on a full queue: moves the oldest half plus `job` to `overflow` in one batch
    /// (Tokio's overflow). Returns false if a thief is active or raced us; the caller then
    /// retries `tryPush` (a thief frees room) or spills.
    func pushOverflow(_ job: UnownedJob, to overflow: Injector) -> Bool {
        let (steal, real) = Self.unpack(head.load(ordering: .acquiring))
        let t = tail.load(ordering: .relaxed)
        let half = Self.capacity / 2
        guard steal == real, t &- real == Self.capacity else { return false }
        let expected = Self.pack(steal: real, real: real)
        let claimed = Self.pack(steal: real &+ half, real: real &+ half)
        // Acquire-release: wins the oldest half against thieves (the owner does not pop
        // concurrently: we are the owner). After success no thief can claim
        // [real, real + half), so reading those slots below is race-free.
        guard head.compareExchange(
            expected: expected, desired: claimed, ordering: .acquiringAndReleasing
        ).exchanged else { return false }
        let buffer = self.buffer
        overflow.push(count: Int(half) + 1) { i in
            i < Int(half) ? buffer[Int((real &+ UInt32(i)) & Self.mask)]! : job
        }
        return true
    }

    /// Owner only. Takes the oldest job.
    func pop() -> UnownedJob? {
        var current = head.load(ordering: .acquiring)
        while true {
            let (steal, real) = Self.unpack(current)
            // Relaxed: only this thread writes `tail`.
            if real == tail.load(ordering: .relaxed) { return nil }
            let nextReal = real &+ 1
            // With no thief active, both indices advance together; otherwise leave `steal`
            // where the thief will release it.
            let next = steal == real
                ? Self.pack(steal: nextReal, real: nextReal)
                : Self.pack(steal: steal, real: nextReal)
            // Acquire-release: decides ownership of index `real` against claiming thieves.
            let (exchanged, observed) = head.compareExchange(
                expected: current, desired: next, ordering: .acquiringAndReleasing)
            if exchanged { return buffer[Int(real & Self.mask)] }
            current = observed
        }
    }

    /// Owner only. Appends jobs produced by `next` while there is room (used to move a batch
    /// from the injector without taking the lock once per job). Returns how many were added.
    func pushBatch(max: Int, _ next: () -> UnownedJob?) -> Int {
        let (steal, _) = Self.unpack(head.load(ordering: .acquiring))
        let t = tail.load(ordering: .relaxed)
        let room = Int(Self.capacity &- (t &- steal))
        var added: UInt32 = 0
        while Int(added) < min(room, max), let job = next() {
            buffer[Int((t &+ added) & Self.mask)] = job
            added &+= 1
        }
        // Release: publishes all slot writes at once.
        if added > 0 { tail.store(t &+ added, ordering: .releasing) }
        return Int(added)
    }

    /// Called by the worker that owns `destination`: moves half of this queue's jobs into it and
    /// returns one of them to run now, or nil when there was nothing to take. `stolen` is set to
    /// the number taken, including the returned one.
    func steal(into destination: LocalQueue, stolen: inout Int) -> UnownedJob? {
        // The destination is ours: relaxed for its tail, acquire for its head (its thieves).
        let destinationTail = destination.tail.load(ordering: .relaxed)
        let (destinationSteal, _) = Self.unpack(destination.head.load(ordering: .acquiring))
        if destinationTail &- destinationSteal > Self.capacity / 2 {
            return nil  // we have plenty of our own work; don't take more
        }
        var n = claimAndCopy(into: destination, at: destinationTail)
        stolen = Int(n)
        if n == 0 { return nil }
        n -= 1
        let job = destination.buffer[Int((destinationTail &+ n) & Self.mask)]
        // Release: the copied slots become visible to thieves of the destination.
        if n > 0 { destination.tail.store(destinationTail &+ n, ordering: .releasing) }
        return job
    }

    private func claimAndCopy(into destination: LocalQueue, at destinationTail: UInt32) -> UInt32 {
        var current = head.load(ordering: .acquiring)
        var claimed: UInt64
        var n: UInt32
        while true {
            let (steal, real) = Self.unpack(current)
            if steal != real { return 0 }  // another thief is copying from this queue
            // Acquire: pairs with the owner's release of `tail`, so the slots below are visible.
            let t = tail.load(ordering: .acquiring)
            n = t &- real
            n -= n / 2  // half, rounded up
            if n == 0 || n > Self.capacity / 2 + 1 {
                // Empty, or a stale (head, tail) pair raced with the owner; try again later.
                if n == 0 { return 0 }
                current = head.load(ordering: .acquiring)
                continue
            }
            claimed = Self.pack(steal: steal, real: real &+ n)
            // Acquire-release: claims [steal, steal + n) against the owner's pop and other thieves.
            let (exchanged, observed) = head.compareExchange(
                expected: current, desired: claimed, ordering: .acquiringAndReleasing)
            if exchanged { break }
            current = observed
        }
        let (first, _) = Self.unpack(claimed)
        for i in 0..<n {
            destination.buffer[Int((destinationTail &+ i) & Self.mask)] =
                buffer[Int((first &+ i) & Self.mask)]
        }
        // Release the claim: steal catches up with real (which the owner may have advanced).
        current = claimed
        while true {
            let (_, real) = Self.unpack(current)
            let released = Self.pack(steal: real, real: real)
            // Release: our slot reads happen before the owner reuses these slots.
            let (exchanged, observed) = head.compareExchange(
                expected: current, desired: released, ordering: .acquiringAndReleasing)
            if exchanged { return n }
            current = observed
        }
    }
}
