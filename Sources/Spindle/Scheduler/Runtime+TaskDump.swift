// The runtime's task dump (asyncio's `all_tasks`, Tokio's task dump, Go's SIGQUIT dump): the
// live spawned tasks, what each is doing, from the registry's records and each worker's
// published job. See Core/TaskSnapshot.swift for what each state can and cannot promise.

extension Runtime {
    /// A snapshot of the live tasks started with `spawn`:
    /// each one's name, age, and state: running (on which worker), queued (not started),
    /// suspended in one of Spindle's waits (an I/O request and its descriptor, a sleep and its
    /// deadline, a `withTimeout`, a channel, a blocking-pool job), or none of these. Tasks that
    /// were not spawned (plain `Task(executorPreference:)`, task-group children) are not listed.
    ///
    /// ```swift
    /// let server = try runtime.spawn(name: "server") { try await serve(listener) }
    /// for task in runtime.taskDump() { print(task) }   // task 0 'server', age 1.2 s: suspended in accept on descriptor 7
    /// ```
    ///
    /// Cheap enough to call at any time from any thread: one lock to copy the registry's
    /// records, no stop of the workers. A sample, not a consistent cut: a task may change state
    /// while the dump looks at the others.
    public func taskDump() -> [TaskSnapshot] {
        let running = shared.workers.map { $0.publishedJob.load(ordering: .relaxed) }
        return registry.snapshots { address in running.firstIndex(of: address).map { Optional($0) } }
    }

    /// ``taskDump()`` as text: a header line and one line per task, oldest first.
    public func formattedTaskDump() -> String {
        TaskSnapshot.format(taskDump(), title: "runtime (\(workerCount) worker\(workerCount == 1 ? "" : "s"))")
    }
}
