// libdispatch, which runs Swift's global executor on Linux, creates its epoll and eventfd
// descriptors lazily, when its first worker thread starts, and traps (SIGILL in
// `_dispatch_epoll_init`) if the process is out of descriptors at that moment. Spindle's tasks
// can touch the global executor (a `Task.sleep` wake-up went through it until due timer jobs
// ran in place, see DueTimerJob.swift; a nonisolated function called from an actor on the
// default executor still does), so a server that runs out of descriptors, which Spindle
// otherwise survives (accept backs off), could die on its first such hop. Every runtime and loop therefore makes Dispatch
// start once, at creation, while descriptors are still available.

//
// The first caller waits for that start, but at most 50 ms: it may itself be one of Dispatch's
// few threads (a test or a plain task creating a runtime), and with every Dispatch thread
// blocked the warm-up job could not run. Then the start happens moments later instead.

import Synchronization

enum DispatchWarmUp {
    /// Relaxed: only decides which caller starts the warm-up; nothing else is published.
    private static let started = Atomic<Bool>(false)

    static func ensure() {
        if started.exchange(true, ordering: .relaxed) { return }
        let running = Gate()
        Task.detached { running.open() }
        running.wait(deadline: monotonicNanos() &+ 50_000_000)
    }
}
