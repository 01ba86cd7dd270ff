// What the blocked-worker watch (BlockedWorkerWatch.swift) takes off a worker stuck inside one
// job, so the other workers run it.

import Synchronization

extension Worker {
    /// Watch thread only, while this worker is stuck inside one job: moves its LIFO slot and
    /// queued jobs to the injector (oldest first) and its timers to the runtime's shared heap,
    /// so other workers run them. (Its ring's completions are reaped separately, by the watch
    /// as the ring's adopter: Ring+Adoption.swift, BlockedWorkerWatch.swift.) `scratch` is a queue owned
    /// by the watch thread. Returns the number of jobs moved. Safe against the owner waking up
    /// meanwhile: every step is a steal or an exchange the owner's own operations are built to
    /// race with.
    func handOff(using scratch: LocalQueue) -> Int {
        // Everything queued here is older than what this worker spilled to the injector, so it
        // goes to the injector's front, oldest first: global FIFO order (and with it Swift's
        // task groups) survives the hand-off.
        var jobs: [UnownedJob] = []
        while true {
            var stolen = 0
            guard let first = queue.steal(into: scratch, stolen: &stolen) else { break }
            while let job = scratch.pop() { jobs.append(job) }
            jobs.append(first)  // `steal` returns the newest of the batch it took
        }
        if let job = takeLifo() { jobs.append(job) }
        shared.injector.pushFront(jobs)
        let moved = jobs.count
        let timerJobs = takeAllTimers()
        for timer in timerJobs { shared.scheduleSharedTimer(timer.action, deadline: timer.deadline) }
        return moved + timerJobs.count
    }
}
