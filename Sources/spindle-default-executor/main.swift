// Spindle as the process-wide default executor: plain `Task {}`, `Task.detached`, `async let`,
// task groups and default actors all run on Spindle's workers, `Task.sleep` uses Spindle's
// timers, and the main actor runs on a SpindleEventLoop on the main thread.
//
// Run: swift run spindle-default-executor
// Prints one line per check and exits 1 if any check fails (the test suite runs it).

import Spindle

// Must be the first statement of the program, before anything suspends.
try Runtime.installAsDefaultExecutor(workers: 2)

actor Tally {
    var onSpindle = 0
    func record() { if Runtime.current != nil { onSpindle += 1 } }
}

nonisolated func checks() async -> [(String, Bool)] {
    var results: [(String, Bool)] = []
    results.append(("plain Task {} runs on a Spindle worker", await Task { Runtime.current != nil }.value))
    results.append(("Task.detached runs on a Spindle worker",
                    await Task.detached { Runtime.currentWorkerIndex != nil }.value))

    async let a = { Runtime.current != nil }()
    async let b = { Runtime.current != nil }()
    let (x, y) = await (a, b)
    results.append(("async let children run on Spindle workers", x && y))

    let groupOK = await withTaskGroup(of: Bool.self) { group in
        for _ in 0..<1_000 { group.addTask { Runtime.current != nil } }
        return await group.allSatisfy { $0 }
    }
    results.append(("task-group children run on Spindle workers", groupOK))

    let tally = Tally()
    await withTaskGroup(of: Void.self) { group in
        for _ in 0..<100 { group.addTask { await tally.record() } }
    }
    results.append(("default actors run on Spindle workers", await tally.onSpindle == 100))

    let start = ContinuousClock.now
    try? await Task.sleep(for: .milliseconds(20))
    results.append(("Task.sleep returns on Spindle, never early",
                    Runtime.current != nil && ContinuousClock.now - start >= .milliseconds(20)))

    results.append(("the main actor runs on the main-thread SpindleEventLoop",
                    await MainActor.run { SpindleEventLoop.current != nil }))
    return results
}

var failures = 0
for (name, ok) in await checks() {
    print("\(ok ? "ok  " : "FAIL") \(name)")
    if !ok { failures += 1 }
}
print(failures == 0 ? "all checks passed" : "\(failures) checks failed")
if failures > 0 { fatalError("default-executor checks failed") }
