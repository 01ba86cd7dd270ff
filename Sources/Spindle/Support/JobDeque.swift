// A growable FIFO ring of jobs for single-threaded owners (the injector under its lock, the
// event loop's run queue). It grows by doubling and never shrinks, so a steady state allocates
// nothing per job.

struct JobDeque: ~Copyable {
    private var storage: UnsafeMutablePointer<UnownedJob?>
    private var capacity: Int
    private var head = 0
    private(set) var count = 0

    init(capacity: Int = 64) {
        precondition(capacity > 0 && capacity & (capacity - 1) == 0, "capacity must be a power of two")
        self.capacity = capacity
        storage = .allocate(capacity: capacity)
        storage.initialize(repeating: nil, count: capacity)
    }

    deinit {
        storage.deinitialize(count: capacity)
        storage.deallocate()
    }

    var isEmpty: Bool { count == 0 }

    mutating func append(_ job: UnownedJob) {
        if count == capacity { grow() }
        storage[(head + count) & (capacity - 1)] = job
        count += 1
    }

    /// Puts `job` before every queued job.
    mutating func prepend(_ job: UnownedJob) {
        if count == capacity { grow() }
        head = (head - 1) & (capacity - 1)
        storage[head] = job
        count += 1
    }

    mutating func popFirst() -> UnownedJob? {
        guard count > 0 else { return nil }
        let job = storage[head]
        storage[head] = nil
        head = (head + 1) & (capacity - 1)
        count -= 1
        return job
    }

    private mutating func grow() {
        let newCapacity = capacity * 2
        let newStorage = UnsafeMutablePointer<UnownedJob?>.allocate(capacity: newCapacity)
        newStorage.initialize(repeating: nil, count: newCapacity)
        for i in 0..<count {
            newStorage[i] = storage[(head + i) & (capacity - 1)]
        }
        storage.deinitialize(count: capacity)
        storage.deallocate()
        storage = newStorage
        capacity = newCapacity
        head = 0
    }
}
