// The event loop's task dump: as Runtime+TaskDump.swift, with the loop's one published job.

extension SpindleEventLoop {
    /// A snapshot of the live tasks started with `spawn`: name, age and state (see
    /// ``Runtime/taskDump()``; a running task's worker is nil). Callable from any thread.
    public func taskDump() -> [TaskSnapshot] {
        let running = publishedJob.load(ordering: .relaxed)
        return registry.snapshots(timerNow: now) { address in address == running ? .some(nil) : nil }
    }

    /// ``taskDump()`` as text: a header line and one line per task, oldest first.
    public func formattedTaskDump() -> String {
        TaskSnapshot.format(taskDump(), title: "event loop")
    }
}
