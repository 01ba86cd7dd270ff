// The code samples of README.md, compiled so they cannot rot. Keep the two in sync.
// Run: swift run spindle-readme-examples

import Spindle

// README: "Run a program on Spindle"
let sum = try await Runtime.run(workers: 2) {
    await withTaskGroup(of: Int.self) { group in
        for i in 0..<10_000 { group.addTask { i } }
        return await group.reduce(0, +)
    }
}
print("sum:", sum)

// README: "Keep a runtime and spawn onto it"
let runtime = try Runtime()
let task = try runtime.spawn(name: "worker") { () async -> String in
    try? await Task.sleep(for: .milliseconds(10))
    return "ran on worker \(Runtime.currentWorkerIndex ?? -1)"
}
print(await task.value)
print("jobs run:", runtime.metrics().jobsRun)
await runtime.shutdown(gracePeriod: .seconds(5))

// README: "The single-threaded event loop"
let answer = try await EventLoop.run {
    try await Task.sleep(for: .milliseconds(5))
    return 42
}
print("answer:", answer)
