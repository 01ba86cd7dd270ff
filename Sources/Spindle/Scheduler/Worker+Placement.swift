// Where a job made runnable on this worker goes: the decision is Placement.swift's; this
// performs it, and handles a full local queue.
//
// A full local queue is handled in one of two ways, chosen by who filled it:
// - By many jobs, each making a few more (a recursive tree like skynet): move the oldest half
//   to the injector (Tokio's overflow). The newest jobs stay local and run first, which keeps
//   the expansion close to depth-first and the number of live tasks small. (Strict FIFO here
//   turned skynet into a breadth-first expansion: 2.8 s instead of 2.0 s on one worker.)
// - By one job that keeps making more (a task spawning a million children): spill. New jobs go
//   to the injector's tail, 128 per lock, until the injector has drained, so everything local
//   stays older than everything spilled and jobs run in creation order. (With Tokio's overflow
//   here the newest children finished first, and Swift's task group, which searches its child
//   list from the oldest child for each result, spent half its time searching: 7.1 µs per task
//   on one worker instead of 3.1.)
// The switch is the number of jobs the running job has made: a full queue's worth (256).

import Synchronization

extension Worker {
    @inline(__always)
    static func identity(_ job: UnownedJob) -> UnsafeRawPointer {
        unsafeBitCast(job, to: UnsafeRawPointer.self)
    }

    @inline(__always)
    static func bits(_ job: UnownedJob) -> UInt { unsafeBitCast(job, to: UInt.self) }

    @inline(__always)
    static func job(_ bits: UInt) -> UnownedJob? {
        bits == 0 ? nil : unsafeBitCast(bits, to: UnownedJob.self)
    }

    /// Puts `job` in the LIFO slot and returns the previous occupant.
    @inline(__always)
    func swapLifo(_ job: UnownedJob) -> UnownedJob? {
        Self.job(lifo.exchange(Self.bits(job), ordering: .acquiringAndReleasing))
    }

    /// Empties the LIFO slot (a plain load first, so an empty slot costs no atomic exchange).
    @inline(__always)
    func takeLifo() -> UnownedJob? {
        if lifo.load(ordering: .relaxed) == 0 { return nil }
        return Self.job(lifo.exchange(0, ordering: .acquiringAndReleasing))
    }

    var hasLocalWork: Bool { lifo.load(ordering: .relaxed) != 0 || !queue.isEmpty }

    /// Jobs waiting in the LIFO slot and local queue (any thread; a snapshot, for reports).
    var queuedJobCount: Int { queue.count + (lifo.load(ordering: .relaxed) != 0 ? 1 : 0) }

    /// Owner only: a job made runnable by code running on this worker (see Placement.swift).
    @inline(__always)
    func schedule(_ job: UnownedJob, isTask: Bool = true) {
        let activity = owner.pointee.activity
        let placement = PlacementPolicy.place(
            isRunningJob: Self.identity(job) == owner.pointee.runningJob, isTask: isTask,
            activity: activity, resumedInBatch: owner.pointee.resumedInBatch,
            lifoOccupied: activity == .firingTimers && lifo.load(ordering: .relaxed) != 0)
        if activity == .firingTimers && placement != .yield { owner.pointee.resumedInBatch += 1 }
        switch placement {
        case .yield:
            // Back of the queue, and let another worker help if this one has a backlog.
            pushLocal(job)
            shared.notifyParked(from: self)
        case .queueResumed:
            pushLocal(job, resumed: true)
            owner.pointee.notifyAfterBatch = true
        case .lifo:
            guard let previous = swapLifo(job) else { return }
            if activity == .runningJob {
                pushLocal(previous)
                shared.notifyParked(from: self)
            } else {
                pushLocal(previous, resumed: true)
                owner.pointee.notifyAfterBatch = true  // once per batch, not once per completion
            }
        }
    }

    /// `resumed`: a job resumed by a completion or a timer, not one the running job created.
    /// It never joins a spill (spilling keeps a spawning job's children in creation order, and
    /// a resumption queued behind 100,000 spilled spawns waited for all of them: W7's lateness
    /// was flat at the backlog's drain time); if the local queue is full it goes to the
    /// injector's front.
    @inline(__always)
    func pushLocal(_ job: UnownedJob, resumed: Bool = false) {
        if resumed {
            if queue.tryPush(job) {
                counters.queueDepthHighWater.raise(to: UInt64(queue.count))
            } else {
                counters.overflows.bump()
                shared.injector.pushFront([job])
            }
            return
        }
        if owner.pointee.spilling {
            if owner.pointee.spillCount == 0 && shared.injector.isEmpty {
                owner.pointee.spilling = false  // everything spilled has been taken: local order is global again
            } else {
                spill[owner.pointee.spillCount] = job
                owner.pointee.spillCount += 1
                if owner.pointee.spillCount == Self.spillBatch { flushSpill() }
                return
            }
        }
        owner.pointee.pushesThisJob &+= 1
        if queue.tryPush(job) {
            counters.queueDepthHighWater.raise(to: UInt64(queue.count))
            return
        }
        counters.overflows.bump()
        if owner.pointee.pushesThisJob < Int(LocalQueue.capacity) {
            if queue.pushOverflow(job, to: shared.injector) { return }
            if queue.tryPush(job) { return }  // a thief made room meanwhile
        }
        owner.pointee.spilling = true
        spill[0] = job
        owner.pointee.spillCount = 1
    }

    /// Owner only: publishes spilled jobs to the injector, oldest first, and lets a parked
    /// worker help with them.
    func flushSpill() {
        let count = owner.pointee.spillCount
        if count == 0 { return }
        let spill = self.spill
        shared.injector.push(count: count) { spill[$0] }
        owner.pointee.spillCount = 0
        shared.notifyParked(from: self)
    }
}
