import Testing
@testable import Spindle

/// Where a worker puts a job made runnable on it (Scheduler/Placement.swift), without threads.
@Suite struct PlacementTests {
    private func place(
        self isRunningJob: Bool = false, task: Bool = true, _ activity: WorkerActivity,
        resumed: Int = 0, lifoOccupied: Bool = false
    ) -> Placement {
        PlacementPolicy.place(
            isRunningJob: isRunningJob, isTask: task, activity: activity, resumedInBatch: resumed,
            lifoOccupied: lifoOccupied)
    }

    @Test func aJobMadeRunnableByTheRunningJobTakesTheLifoSlot() {
        #expect(place(.runningJob) == .lifo)
        #expect(place(.runningJob, lifoOccupied: true) == .lifo)
    }

    @Test func theRunningJobReEnqueuingItselfIsAYield() {
        for activity in [WorkerActivity.runningJob, .reapingCompletions, .firingTimers] {
            #expect(place(self: true, activity) == .yield)
        }
    }

    /// Swift 6.3's `Task.yield()` enqueues a helper job that is not a task.
    @Test func aHelperJobFromARunningJobIsAYield() {
        #expect(place(task: false, .runningJob) == .yield)
    }

    /// While completions or timers are dispatched nobody yields: a non-task job then (an
    /// actor's) is a resumption.
    @Test func aNonTaskJobResumedByACompletionOrATimerIsNotAYield() {
        #expect(place(task: false, .reapingCompletions) == .lifo)
        #expect(place(task: false, .firingTimers) == .lifo)
    }

    @Test func everyCompletionTakesTheSlotInTurn() {
        for resumed in 0..<3 {
            #expect(place(.reapingCompletions, resumed: resumed, lifoOccupied: resumed > 0) == .lifo)
        }
    }

    /// Tasks whose timers fell due together run in deadline order: the first takes the slot,
    /// the rest queue behind it, and the first does not displace an earlier batch's.
    @Test func onlyTheFirstTimerResumptionOfABatchTakesAnEmptySlot() {
        #expect(place(.firingTimers, resumed: 0) == .lifo)
        #expect(place(.firingTimers, resumed: 1) == .queueResumed)
        #expect(place(.firingTimers, resumed: 5) == .queueResumed)
        #expect(place(.firingTimers, resumed: 0, lifoOccupied: true) == .queueResumed)
    }
}
