// Timers waiting for a deadline (`Task.sleep` jobs and `Spindle.sleep` waiters, see
// TimerAction.swift; `withTimeout` on a Spindle executor), as a hierarchical timing wheel: 6
// levels of 64 slots at 1 ms resolution, so level k's slots are 64^k ms wide and the whole
// wheel spans 64^6 ms (about 2.2 years). One wheel per
// worker and per event loop, touched only under its owner's discipline (the owner thread, or a
// lock for the shared ones); the nearest deadline is the owner's park timeout.
//
// Why a wheel: inserting and expiring are O(1) (a heap is O(log n) with poor locality), and
// 100,000 sleeping tasks cost one slot list entry each in a pooled array, no per-timer
// allocation. The shape is Tokio's (`runtime/time/wheel`), itself after Varghese & Lauck.
//
// Placement. `elapsed` is the tick (ms) the wheel has advanced to. A deadline is rounded *up* to
// its tick, so a timer can fire up to 1 ms late but never early. An entry for tick t goes to the
// level of the highest 6-bit group in which t and `elapsed` differ, in the slot given by t's
// bits of that group. Invariant: every occupied slot starts after `elapsed` (level 0's slots
// are single ticks; level k's slot covers a 64^k-tick range whose start is its expiry).
//
// Advancing to `now` repeatedly takes the occupied slot with the earliest start (the minimum
// over the levels: one rotate and count-trailing-zeros each), moves `elapsed` to that start, and
// empties it: entries whose tick has come join the ready queue in order; the others move down
// to a lower level (cascade). When no slot starts at or before `now`, `elapsed` jumps to `now`.
// Entries in one slot keep their insertion order, so timers fire in tick order, and within a
// tick in the order they were set.
//
// A deadline beyond the wheel's span is placed in the last level's farthest slot and placed
// again when that slot comes round (its real tick is kept in the entry).
//
// Cancelled sleeps. A cancelled `Spindle.sleep` resumes its task at once (SleepWaiter.swift),
// but its entry, owned by this wheel's owner, stays where it is: the canceller may be another
// thread. Entries are dropped lazily, Go's way with deleted timers, by a pass over the slots
// that frees every cancelled entry. It runs (1) on an insertion that finds the count at
// `sweepAt`: twice what the last sweep left, at least `sweepThreshold`, and lowered as the
// count shrinks, so the wheel holds at most about twice its recent size, plus the threshold;
// between two such sweeps the count at least doubles, so each costs O(1) per insertion; and
// (2) when the owner parks with at least `sweepThreshold` entries and a second has passed since
// the last sweep, so a wheel whose sleeps were all cancelled, and which sees no new ones, gives
// the memory back too. `removeAll` drops cancelled entries as well.

struct TimerWheel: ~Copyable {
    static let levels = 6
    static let slotBits: UInt64 = 6
    static let slotsPerLevel = 64
    static let nanosPerTick: UInt64 = 1_000_000
    /// Ticks the wheel spans from `elapsed`.
    static let span: UInt64 = 1 << (slotBits * UInt64(levels))

    /// Below this many entries the wheel never sweeps.
    static let sweepThreshold = 1024

    private struct Entry {
        var action: TimerAction?
        var deadline: UInt64
        var tick: UInt64
        var next: Int32
    }

    /// The entries, pooled: a freed index is reused, so a steady state allocates nothing.
    private var entries: ContiguousArray<Entry> = []
    private var firstFree: Int32 = -1
    /// Per slot (level * 64 + slot), the first and last entry of its FIFO list, -1 when empty.
    private var heads = [Int32](repeating: -1, count: TimerWheel.levels * TimerWheel.slotsPerLevel)
    private var tails = [Int32](repeating: -1, count: TimerWheel.levels * TimerWheel.slotsPerLevel)
    /// Per level, a bit per occupied slot.
    private var occupied = [UInt64](repeating: 0, count: TimerWheel.levels)
    /// Actions whose tick has come, in firing order: `ready[readyHead...]`.
    private var ready: ContiguousArray<TimerAction> = []
    private var readyHead = 0
    /// The entry count at which the next sweep for cancelled sleeps runs.
    private var sweepAt = TimerWheel.sweepThreshold
    /// When the last sweep ran (CLOCK_MONOTONIC ns).
    private var lastSweep: UInt64 = 0
    private var elapsed: UInt64 = 0
    private(set) var count = 0
    /// The clock used to start an empty wheel at the present (tests substitute their own).
    private let clock: () -> UInt64

    init(clock: @escaping () -> UInt64 = monotonicNanos) {
        self.clock = clock
    }

    var isEmpty: Bool { count == 0 }

    /// The earliest time (CLOCK_MONOTONIC ns) at which a job may be due: a ready job's `now`,
    /// or the start of the earliest occupied slot (for a higher level, the owner wakes then to
    /// cascade, a little before the job's own deadline). `.max` when empty.
    var nextDeadline: UInt64 {
        if count == 0 { return .max }
        if readyHead < ready.count { return elapsed &* Self.nanosPerTick }
        guard let (_, _, tick) = earliestSlot() else { return .max }
        return tick >= UInt64.max / Self.nanosPerTick ? .max - 1 : tick * Self.nanosPerTick
    }

    mutating func insert(_ action: TimerAction, deadline: UInt64) {
        if count >= sweepAt { sweepCancelled() }
        if count == 0 {
            // Nothing is placed relative to `elapsed`: move it to the present, so the new
            // entry lands in a low level. (Never past the present: that would fire it early.)
            elapsed = max(elapsed, clock() / Self.nanosPerTick)
        }
        let tick = deadline / Self.nanosPerTick + (deadline % Self.nanosPerTick == 0 ? 0 : 1)
        let index: Int32
        let entry = Entry(action: action, deadline: deadline, tick: tick, next: -1)
        if firstFree >= 0 {
            index = firstFree
            firstFree = entries[Int(index)].next
            entries[Int(index)] = entry
        } else {
            index = Int32(entries.count)
            entries.append(entry)
        }
        count += 1
        place(index)
    }

    /// Puts entry `index` in its slot, or in the ready queue if its tick has come.
    private mutating func place(_ index: Int32) {
        let tick = entries[Int(index)].tick
        if tick <= elapsed {
            ready.append(entries[Int(index)].action!)
            free(index)
            return
        }
        let target = min(tick, elapsed + Self.span - 1)
        // A target within the span may still differ from `elapsed` above bit 36 (it crosses a
        // top-level rotation): it belongs to the top level, whose slots wrap.
        let significant = min((target ^ elapsed) | (UInt64(Self.slotsPerLevel) - 1), Self.span - 1)
        let level = (63 - significant.leadingZeroBitCount) / Int(Self.slotBits)
        let slot = Int((target >> (Self.slotBits * UInt64(level))) & (UInt64(Self.slotsPerLevel) - 1))
        let key = level * Self.slotsPerLevel + slot
        entries[Int(index)].next = -1
        if tails[key] >= 0 {
            entries[Int(tails[key])].next = index
        } else {
            heads[key] = index
        }
        tails[key] = index
        occupied[level] |= 1 << UInt64(slot)
    }

    /// Frees a slot of the pool; the action has moved to the ready queue (count drops when it
    /// leaves that queue) or was dropped.
    private mutating func free(_ index: Int32) {
        entries[Int(index)].action = nil
        entries[Int(index)].next = firstFree
        firstFree = index
    }

    /// The occupied slot that starts first: its level, slot and starting tick.
    private func earliestSlot() -> (level: Int, slot: Int, tick: UInt64)? {
        var best: (level: Int, slot: Int, tick: UInt64)? = nil
        for level in 0..<Self.levels where occupied[level] != 0 {
            let shift = Self.slotBits * UInt64(level)
            let slotRange: UInt64 = 1 << shift
            let levelRange: UInt64 = slotRange << Self.slotBits
            let current = Int((elapsed >> shift) & (UInt64(Self.slotsPerLevel) - 1))
            let bits = occupied[level]
            let rotated = current == 0 ? bits : (bits >> UInt64(current)) | (bits << UInt64(64 - current))
            let slot = (rotated.trailingZeroBitCount + current) % Self.slotsPerLevel
            let levelStart = elapsed & ~(levelRange &- 1)
            var tick = levelStart + UInt64(slot) * slotRange
            // A slot before the current one comes round in this level's next rotation. (The
            // current slot of a higher level is occupied only when `elapsed` has just reached
            // its start, and is due now.)
            if slot < current { tick &+= levelRange }
            if best == nil || tick < best!.tick { best = (level, slot, tick) }
        }
        return best
    }

    /// Removes and returns the next action due at `now` (CLOCK_MONOTONIC ns), in firing order.
    mutating func popDue(now: UInt64) -> TimerAction? {
        if readyHead == ready.count {
            ready.removeAll(keepingCapacity: true)
            readyHead = 0
            advance(to: now / Self.nanosPerTick)
            if ready.isEmpty { return nil }
        }
        let action = ready[readyHead]
        readyHead += 1
        count -= 1
        // A past burst sets no bar for later garbage: follow the count down.
        if count &* 4 < sweepAt { sweepAt = max(Self.sweepThreshold, count &* 2) }
        return action
    }

    /// Owner, before parking: sweeps if the wheel is large and the last sweep is a second old
    /// (see "Cancelled sleeps" above).
    mutating func sweepIfStale(now: UInt64) {
        if count < Self.sweepThreshold || now &- lastSweep < 1_000_000_000 { return }
        sweepCancelled()
        lastSweep = now
    }

    /// Frees the entries of cancelled sleeps (see "Cancelled sleeps" above) and sets the
    /// count at which the next sweep runs.
    private mutating func sweepCancelled() {
        for key in 0..<heads.count where heads[key] >= 0 {
            var index = heads[key]
            var last: Int32 = -1
            heads[key] = -1
            while index >= 0 {
                let next = entries[Int(index)].next
                if let action = entries[Int(index)].action, action.hasEnded {
                    action.discard()
                    free(index)
                    count -= 1
                } else {
                    entries[Int(index)].next = -1
                    if last >= 0 { entries[Int(last)].next = index } else { heads[key] = index }
                    last = index
                }
                index = next
            }
            tails[key] = last
            if last < 0 {
                let level = key / Self.slotsPerLevel, slot = key % Self.slotsPerLevel
                occupied[level] &= ~(1 << UInt64(slot))
            }
        }
        sweepAt = max(Self.sweepThreshold, count * 2)
    }

    private mutating func advance(to now: UInt64) {
        while let (level, slot, tick) = earliestSlot(), tick <= now {
            elapsed = max(elapsed, tick)
            let key = level * Self.slotsPerLevel + slot
            var index = heads[key]
            heads[key] = -1
            tails[key] = -1
            occupied[level] &= ~(1 << UInt64(slot))
            while index >= 0 {
                let next = entries[Int(index)].next
                place(index)  // due now, or into a lower level
                index = next
            }
            if readyHead < ready.count { return }
        }
        if now > elapsed && earliestSlot().map({ $0.tick > now }) ?? true { elapsed = now }
    }

    /// Removes every action regardless of deadline (shutdown, hand-off), with its deadline.
    mutating func removeAll() -> [TimedAction] {
        var all: [TimedAction] = []
        let now = elapsed &* Self.nanosPerTick
        for action in ready[readyHead...] {
            if action.hasEnded { action.discard() } else { all.append((action, now)) }
        }
        ready.removeAll(keepingCapacity: true)
        readyHead = 0
        for key in 0..<heads.count {
            var index = heads[key]
            while index >= 0 {
                let entry = entries[Int(index)]
                let action = entry.action!
                if action.hasEnded { action.discard() } else { all.append((action, entry.deadline)) }
                index = entry.next
            }
            heads[key] = -1
            tails[key] = -1
        }
        for level in 0..<Self.levels { occupied[level] = 0 }
        entries.removeAll(keepingCapacity: true)
        firstFree = -1
        count = 0
        sweepAt = Self.sweepThreshold
        return all
    }
}
