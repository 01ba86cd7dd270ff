import Testing
import Spindle

@Test func smoke() async throws {
    let sum = try await Runtime.run(workers: 2) {
        try await withThrowingTaskGroup(of: Int.self) { group in
            for i in 0..<100_000 { group.addTask { i } }
            return try await group.reduce(0, +)
        }
    }
    #expect(sum == (0..<100_000).reduce(0, +))
    let slept = try await Runtime.run(workers: 2) {
        let start = ContinuousClock.now
        try await Task.sleep(for: .milliseconds(20))
        return ContinuousClock.now - start
    }
    #expect(slept >= .milliseconds(20))
}
