// Where each task of a round is, for a hang's diagnostic: a slot per task holding what it is
// doing (a short label) and a number (the message or byte it is at). Cheap enough to update
// on every step: one relaxed store.

import Synchronization

final class Probe: @unchecked Sendable {
    // @unchecked Sendable: the slots are atomics, initialised in init before the probe is
    // shared and freed in deinit; `names` and `labels` are immutable.
    private let slots: UnsafeMutablePointer<Atomic<Int>>
    private let names: [String]
    private let labels: [String]

    /// One slot per name; `labels` are the states a slot can be in (the first is "not started").
    init(names: [String], labels: [String]) {
        self.names = names
        self.labels = labels
        slots = .allocate(capacity: max(names.count, 1))
        for i in 0..<names.count { (slots + i).initialize(to: Atomic(0)) }
    }

    deinit {
        slots.deinitialize(count: names.count)
        slots.deallocate()
    }

    /// Records that task `slot` is in state `label` (an index into `labels`) at `value`.
    /// Relaxed: read only for printing.
    func set(_ slot: Int, _ label: Int, _ value: Int = 0) {
        slots[slot].store(label << 40 | (value & 0xFF_FFFF_FFFF), ordering: .relaxed)
    }

    var description: String {
        (0..<names.count).compactMap { i -> String? in
            let word = slots[i].load(ordering: .relaxed)
            let label = labels[min(word >> 40, labels.count - 1)]
            return "\(names[i]): \(label) \(word & 0xFF_FFFF_FFFF)"
        }.joined(separator: "; ")
    }
}
