// Jobs waiting for a deadline (`Task.sleep` on a Spindle executor), as a binary min-heap keyed
// by (deadline, arrival order), so equal deadlines fire in the order they were scheduled.
// One heap per worker or loop, touched only by its thread; a shared one behind a lock takes
// deadlines scheduled from other threads. The hierarchical timer wheel of design.md replaces
// this when timers become io_uring-driven (the I/O issue); the interface stays.

struct TimerHeap {
    private struct Entry {
        let deadline: UInt64
        let sequence: UInt64
        let job: UnownedJob

        @inline(__always)
        func precedes(_ other: Entry) -> Bool {
            deadline != other.deadline ? deadline < other.deadline : sequence < other.sequence
        }
    }

    private var entries: ContiguousArray<Entry> = []
    private var nextSequence: UInt64 = 0

    var isEmpty: Bool { entries.isEmpty }
    var count: Int { entries.count }
    /// The earliest deadline, or `.max` when empty.
    var nextDeadline: UInt64 { entries.first?.deadline ?? .max }

    mutating func insert(_ job: UnownedJob, deadline: UInt64) {
        entries.append(Entry(deadline: deadline, sequence: nextSequence, job: job))
        nextSequence &+= 1
        var child = entries.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard entries[child].precedes(entries[parent]) else { break }
            entries.swapAt(child, parent)
            child = parent
        }
    }

    /// Removes and returns the earliest job if its deadline is at or before `now`.
    mutating func popDue(now: UInt64) -> UnownedJob? {
        guard let first = entries.first, first.deadline <= now else { return nil }
        let last = entries.removeLast()
        if !entries.isEmpty {
            entries[0] = last
            var parent = 0
            while true {
                let left = 2 * parent + 1
                if left >= entries.count { break }
                var smallest = left
                if left + 1 < entries.count, entries[left + 1].precedes(entries[left]) { smallest = left + 1 }
                guard entries[smallest].precedes(entries[parent]) else { break }
                entries.swapAt(parent, smallest)
                parent = smallest
            }
        }
        return first.job
    }

    /// Removes every job regardless of deadline (shutdown, hand-off), with its deadline.
    mutating func removeAll() -> [Afterlife.Timed] {
        defer { entries.removeAll() }
        return entries.map { ($0.job, $0.deadline) }
    }
}
