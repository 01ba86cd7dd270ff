// Go's SIGQUIT dump for the example servers: `kill -USR1 <pid>` prints the live spawned tasks
// (every connection is one) and what each waits on, to standard error.

import Glibc
import Spindle

/// Dumps the tasks of the runtime or loop a server runs on each time `signal` arrives.
///
/// ```swift
/// let taskDump = TaskDumpSignal(SIGUSR1)   // at start-up: the signal is kept from now on
/// runServer(name: "spindle-echo", defaultPort: 7000) { listener in
///     taskDump.start()
///     await acceptLoop(listener) { connection in ... }
/// }
/// ```
public struct TaskDumpSignal: Sendable {
    public let signal: Int32

    /// Starts keeping `signal` instead of its default action (terminating the process), so one
    /// that arrives before ``start()`` is not fatal: it is dumped once the dump task waits.
    public init(_ signal: Int32) {
        self.signal = signal
        try? Signals.watch([signal])
    }

    /// Spawns the task (`task-dump`) that waits for the signal, on the runtime or loop the
    /// caller runs on; shutdown cancels it. Does nothing on any other thread.
    public func start() {
        let signal = signal
        guard let host = currentSpindleHost else { return }
        _ = try? host.spawn(name: "task-dump") { await Self.dump(on: signal) { host.formattedTaskDump() } }
    }

    private static func dump(on signal: Int32, _ text: @Sendable () -> String) async {
        while (try? await Signals.wait(for: [signal])) != nil {
            let bytes = Array(text().utf8)
            _ = bytes.withUnsafeBytes { write(STDERR_FILENO, $0.baseAddress, $0.count) }
        }
    }
}

/// Runs `operation` as a task spawned (with `name`) on the runtime or loop the caller runs on,
/// so the task dump lists it, and waits for it; cancelling the caller cancels it. Runs it in
/// place on any other thread.
func runSpawned(name: String, _ operation: @escaping @Sendable () async -> Void) async {
    let task = try? spawn(name: name, operation)
    guard let task else { return await operation() }
    await withTaskCancellationHandler { await task.value } onCancel: { task.cancel() }
}
