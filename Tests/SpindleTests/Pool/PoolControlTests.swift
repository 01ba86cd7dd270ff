import CSpindle
import Glibc
import Synchronization
import Testing
@testable import Spindle

/// Pure transitions of the pool's control word: no threads.
@Suite struct PoolControlTests {
    @Test func submissionsWakeIdleThreadsThenStartThreadsUpToTheLimitThenQueue() {
        var control = PoolControl.initial
        var actions: [PoolControl.Dispatch] = []
        for _ in 0..<3 {
            let (next, action) = control.dispatching(maxThreads: 2, cpuBudget: 2)
            control = next
            actions.append(action)
        }
        #expect(actions == [.startThread, .startThread, .leaveQueued])
        #expect(control.live == 2 && control.idle == 0)
        control = control.enteringIdle()!
        #expect(control.idle == 1)
        let (claimed, action) = control.dispatching(maxThreads: 2, cpuBudget: 2)
        #expect(action == .wakeIdleThread && claimed.idle == 0 && claimed.live == 2)
        // A claimed thread cannot retire or leave idle by itself: its permit is coming.
        #expect(claimed.retiringIdle() == nil)
        #expect(claimed.leavingIdle() == nil)
    }

    @Test func pastTheCPUBudgetSubmittersDeferToTheMonitor() {
        var control = PoolControl.initial
        var actions: [PoolControl.Dispatch] = []
        for _ in 0..<4 {
            let (next, action) = control.dispatching(maxThreads: 3, cpuBudget: 2)
            control = next
            actions.append(action)
        }
        #expect(actions == [.startThread, .startThread, .deferToMonitor, .deferToMonitor])
        #expect(control.live == 2)
        control = control.addingThread(maxThreads: 3)!
        #expect(control.dispatching(maxThreads: 3, cpuBudget: 2).1 == .leaveQueued)
        #expect(control.addingThread(maxThreads: 3) == nil)
        #expect(control.closing().addingThread(maxThreads: 8) == nil)
    }

    @Test func growthStartsThreadsOnlyForBlockedThreads() {
        // All of the budget runnable: nothing, however long the queue.
        #expect(PoolGrowth.threadsToStart(runnable: 2, cpuBudget: 2, waiting: 500, live: 2, room: 510) == 0)
        #expect(PoolGrowth.threadsToStart(runnable: 5, cpuBudget: 2, waiting: 500, live: 9, room: 503) == 0)
        // Some runnable: top them up to the budget.
        #expect(PoolGrowth.threadsToStart(runnable: 1, cpuBudget: 4, waiting: 500, live: 8, room: 504) == 3)
        // All blocked: at most double, within what waits and what the limit allows.
        #expect(PoolGrowth.threadsToStart(runnable: 0, cpuBudget: 2, waiting: 500, live: 2, room: 510) == 2)
        #expect(PoolGrowth.threadsToStart(runnable: 0, cpuBudget: 2, waiting: 500, live: 64, room: 448) == 64)
        #expect(PoolGrowth.threadsToStart(runnable: 0, cpuBudget: 2, waiting: 3, live: 64, room: 448) == 3)
        #expect(PoolGrowth.threadsToStart(runnable: 0, cpuBudget: 2, waiting: 500, live: 64, room: 10) == 10)
        #expect(PoolGrowth.threadsToStart(runnable: 0, cpuBudget: 2, waiting: 0, live: 2, room: 510) == 0)
    }

    @Test func aComputingThreadIsRunnableASleepingOneIsNotAndAGoneOneIsNil() {
        let computing = Atomic<Int32>(0), sleeping = Atomic<Int32>(0), stop = Gate(), stopped = Lock(0)
        onForeignThread {
            computing.store(spindle_gettid(), ordering: .releasing)
            while !stop.wait(deadline: 0) { burnCPU(milliseconds: 1) }
            stopped.withLock { $0 += 1 }
        }
        onForeignThread {
            sleeping.store(spindle_gettid(), ordering: .releasing)
            stop.wait()
            stopped.withLock { $0 += 1 }
        }
        while computing.load(ordering: .acquiring) == 0 || sleeping.load(ordering: .acquiring) == 0 { usleep(1_000) }
        usleep(20_000)
        let computingState = PoolGrowth.isRunnable(threadID: computing.load(ordering: .acquiring))
        let sleepingState = PoolGrowth.isRunnable(threadID: sleeping.load(ordering: .acquiring))
        stop.open()
        while stopped.withLock({ $0 }) < 2 { usleep(1_000) }
        #expect(computingState == true)
        #expect(sleepingState == false)
        #expect(PoolGrowth.isRunnable(threadID: Int32.max) == nil)
    }

    @Test func retiringTakesTheThreadOutOfBothCounts() {
        var control = PoolControl.initial
        control = control.dispatching(maxThreads: 4, cpuBudget: 4).0
        control = control.enteringIdle()!
        let retired = control.retiringIdle()!
        #expect(retired.live == 0 && retired.idle == 0 && !retired.isClosed)
    }

    @Test func closingClaimsEveryIdleThreadAndRefusesEverything() {
        var control = PoolControl.initial
        for _ in 0..<3 { control = control.dispatching(maxThreads: 8, cpuBudget: 8).0 }
        control = control.enteringIdle()!.enteringIdle()!
        let closed = control.closing()
        #expect(closed.isClosed && closed.live == 3 && closed.idle == 0)
        #expect(closed.enteringIdle() == nil)
        #expect(closed.dispatching(maxThreads: 8, cpuBudget: 8).1 == .closed)
        #expect(closed.exiting().exiting().exiting().live == 0)
    }

    @Test func countsUseTheirWholeFieldsWithoutCarryingIntoEachOther() {
        var control = PoolControl.initial
        let limit = PoolControl.maxThreadLimit
        for _ in 0..<3 { control = control.dispatching(maxThreads: limit, cpuBudget: limit).0 }
        control = PoolControl(rawValue: control.rawValue | UInt64(limit - 3))  // live = limit
        #expect(control.live == limit && control.idle == 0)
        #expect(control.dispatching(maxThreads: limit, cpuBudget: limit).1 == .leaveQueued)
        control = control.enteringIdle()!
        #expect(control.live == limit && control.idle == 1)
    }
}
