// How a blocking pool grows past the number of CPUs: only while its busy threads are blocked.
//
// Measured on the 2-CPU machine (W10, Benchmarks/README.md): starting a thread for every job
// that finds no idle thread, as Tokio's pool does, turns 200 simultaneous 5 ms CPU jobs into
// 200 runnable threads. The kernel then leaves a runtime worker or the event loop off the CPU
// for 100-400 ms at a time (a heartbeat's p99 lateness went from under 1 ms to 250-450 ms):
// the worker queues behind the crowd, stalls in `pthread_create` when it is the one starting
// the threads, and blocks on locks (the injector, the loop's inbox) that a preempted pool
// thread holds while resuming a task. Lowering the pool threads' priority alone did not help;
// running no more CPU-bound pool threads than there are CPUs did.
//
// So a submitter starts threads itself only up to `cpuBudget` (the CPUs this process may use).
// Past that, its job waits in the queue and this monitor, one thread per pool that runs only
// while jobs wait, looks every millisecond at each pool thread's scheduler state
// (/proc/self/task/<tid>/stat): `R` means it is on a CPU or waiting for one ("runnable"), any
// other state that it is blocked (I/O, sleep, a lock). Rejected: judging by CPU time used since
// the last look (pthread CPU clocks, or schedstat's run and wait times). On a machine busy with
// other work a computing pool thread at low priority gets no CPU for tens of milliseconds, and
// the kernel adds its wait time only when it next runs, so both looked blocked: 40 CPU jobs
// became 40 threads (the test with background load catches it).
// - no thread is runnable: start threads for the waiting jobs, at most doubling the thread
//   count per look, so a burst of blocking jobs has its threads within a few milliseconds;
// - some are: start only enough to bring the runnable ones up to the budget;
// - the whole budget is runnable: start nothing; the jobs run as threads free up, in order.
// A thread that has not registered its id yet counts as runnable. The monitor exits once the
// queue has been empty for 50 ms, and when the pool closes. Pool threads also run at a lower priority than the
// runtime's workers (`threadNiceness`), so that a worker preempts them.
//
// The cost: past the CPU count, a job whose predecessors block waits about a millisecond for
// its thread instead of getting one at once.

internal import CSpindle
import Glibc
import Synchronization

enum PoolGrowth {
    /// How many threads the monitor starts, given how many pool threads were runnable since
    /// its last look, the CPU budget, the jobs waiting, the live threads and the room left
    /// under `maxThreads`.
    static func threadsToStart(runnable: Int, cpuBudget: Int, waiting: Int, live: Int, room: Int) -> Int {
        guard waiting > 0, room > 0 else { return 0 }
        let wanted = runnable == 0 ? max(cpuBudget, live) : cpuBudget - runnable
        return max(0, min(wanted, waiting, room))
    }

    /// Whether the thread `threadID` of this process is running or waiting for a CPU (state
    /// `R`), or nil if it is gone.
    static func isRunnable(threadID: Int32) -> Bool? {
        let fd = open("/proc/self/task/\(threadID)/stat", O_RDONLY | O_CLOEXEC)
        if fd < 0 { return nil }
        defer { close(fd) }
        // "<tid> (<name>) <state> ...": the name may hold spaces and parentheses, so the state
        // is the first field after the last ')'. The whole line fits: the name is at most 15
        // bytes and the state comes right after it.
        return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 128) { buffer -> Bool? in
            let count = read(fd, buffer.baseAddress, buffer.count)
            if count <= 0 { return nil }
            let bytes = UnsafeMutableBufferPointer(rebasing: buffer[0..<count])
            guard let close = bytes.lastIndex(of: UInt8(ascii: ")")), close + 2 < bytes.endIndex else { return nil }
            return bytes[close + 2] == UInt8(ascii: "R")
        }
    }

    /// Milliseconds of an empty queue after which the monitor exits.
    static let quietTicks = 50
    /// How much lower than a worker's a pool thread's priority is (`nice` steps): a worker's
    /// weight is then about 9 times a pool thread's. In W10 (medians of 3, heartbeat p99 with
    /// 1 worker / 2 workers / the event loop) nice 0 gave 2.5 / 2.9 / 1.2 ms, 5 gave 1.9 / 1.9 /
    /// 1.6, 10 gave 0.9 / 1.1 / 1.1, 19 gave 0.1 / 1.6 / 0.1; the jobs' total time did not
    /// change. The price: a lone job's round trip rises from 12 to 22 us, because the woken
    /// pool thread waits for a worker's post-wake spin. Not `SCHED_IDLE`: blocking jobs must
    /// still progress when the workers are saturated.
    static let threadNiceness: Int32 = 10
}

extension BlockingPool {
    /// Makes sure the monitor runs (a submitter that deferred its job calls this).
    func ensureMonitor() {
        // Sequentially consistent: pairs with the monitor's "clear the flag, then look at the
        // queue" on exit, after this submitter's "queue, then look at the flag".
        if monitorRunning.load(ordering: .sequentiallyConsistent) { return }
        guard monitorRunning.compareExchange(
            expected: false, desired: true, ordering: .sequentiallyConsistent).exchanged else { return }
        // A shutdown that closed before our flag was set may already have stopped waiting for
        // the monitor: start none then. (One that closes later sees the flag and waits.)
        if control.load(ordering: .sequentiallyConsistent).isClosed {
            monitorRunning.store(false, ordering: .sequentiallyConsistent)
            return
        }
        do throws(SpindleError) {
            _ = try OSThread.spawn(name: "\(name)-mon") { [self] in monitorMain() }
        } catch {
            // No monitor: the busy threads still take the waiting jobs as they finish.
            monitorRunning.store(false, ordering: .sequentiallyConsistent)
        }
    }

    private func monitorMain() {
        var quiet = 0
        while true {
            usleep(1_000)
            // Sequentially consistent, as every access to `control` (BlockingPool.updateControl).
            if control.load(ordering: .sequentiallyConsistent).isClosed {
                leaveMonitor()
                return
            }

            // Relaxed: hints; a job counted late is seen on the next look.
            let queued = counters.queued.load(ordering: .relaxed)
            // Threads started (by anyone) that have not looked at the queue yet will each take
            // one of the waiting jobs: counting those jobs as unserved started a second thread
            // for the same job whenever a thread took longer than a look (a millisecond) to
            // start, as under the thread sanitizer (4 threads for 3 blocked jobs).
            let waiting = queued - counters.starting.load(ordering: .relaxed)
            if queued <= 0 {
                quiet += 1
                if quiet >= PoolGrowth.quietTicks {
                    if retireMonitor() { return }
                    quiet = 0
                }
                continue
            }
            quiet = 0
            let control = control.load(ordering: .sequentiallyConsistent)
            if waiting <= 0 || control.idle > 0 || control.live >= maxThreads { continue }
            // How many threads want a CPU now (enough to know the budget is full suffices).
            var runnable = 0
            for threadID in threads.withLock({ $0.threadIDs }) where runnable < cpuBudget {
                // A thread that has not registered its id yet is starting up: runnable.
                if let threadID, PoolGrowth.isRunnable(threadID: threadID) != true { continue }
                runnable += 1
            }
            let starts = PoolGrowth.threadsToStart(
                runnable: runnable, cpuBudget: cpuBudget, waiting: waiting,
                live: control.live, room: maxThreads - control.live)
            for _ in 0..<starts {
                guard let (before, _) = updateControl({ $0.addingThread(maxThreads: maxThreads).map { ($0, ()) } })
                else { break }
                counters.threadsHighWater.raiseShared(to: before.live + 1)
                startThread(for: nil)
            }
        }
    }

    /// Exits the monitor after a quiet spell, unless a job was deferred meanwhile. Returns
    /// whether it exited.
    private func retireMonitor() -> Bool {
        monitorRunning.store(false, ordering: .sequentiallyConsistent)
        // Sequentially consistent (see ensureMonitor): a submitter that deferred after our
        // store found the flag clear and started a monitor, or its job is visible here.
        if !queue.isEmpty, monitorRunning.compareExchange(
            expected: false, desired: true, ordering: .sequentiallyConsistent).exchanged {
            return false
        }
        threads.withLock { $0.exitingHelper(pthread_self(), joinable: false) }
        return true
    }

    /// Exits the monitor because the pool closed: the shutdown joins it.
    private func leaveMonitor() {
        threads.withLock { $0.exitingHelper(pthread_self(), joinable: true) }
        // After the filing (and a release, being sequentially consistent): the shutdown that
        // sees the flag clear and then takes the thread lock finds the handle filed above.
        monitorRunning.store(false, ordering: .sequentiallyConsistent)
    }
}
