import Glibc
import Logging
import Synchronization
import Testing
@testable import Spindle

/// Captures log messages for assertions.
final class LogRecorder: Sendable {
    /// One message as logged: its level, text and metadata (the handler's merged with the call's).
    struct Entry: Sendable {
        let level: Logger.Level
        let message: String
        let metadata: Logger.Metadata
    }

    let messages = Lock<[String]>([])
    let entries = Lock<[Entry]>([])
    var all: [String] { messages.withLock { $0 } }
    /// The entries whose message contains `text`.
    func entries(containing text: String) -> [Entry] { entries.withLock { $0 }.filter { $0.message.contains(text) } }
    /// A logger whose messages this records.
    var logger: Logger { Logger(label: "test") { _ in RecordingHandler(recorder: self) } }
}

struct RecordingHandler: LogHandler {
    let recorder: LogRecorder
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace
    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }
    func log(event: LogEvent) {
        recorder.messages.withLock { $0.append("\(event.level): \(event.message)") }
        let merged = metadata.merging(event.metadata ?? [:]) { $1 }
        recorder.entries.withLock { $0.append(.init(level: event.level, message: "\(event.message)", metadata: merged)) }
    }
}

extension SpindleTests {
    @Suite struct BlockedWorkerWatchTests {
        @Test func aSingleWorkerRuntimeReportsABlockedWorkerWithoutClaimingAHandOff() async throws {
            let recorder = LogRecorder()
            let logger = Logger(label: "test") { _ in RecordingHandler(recorder: recorder) }
            let runtime = try Runtime(workers: 1, blockedWorkerThreshold: .milliseconds(30), logger: logger)
            let blocker = try runtime.spawn(name: "alone") { () -> [Task<Void, Never>] in
                let tasks = (0..<5).map { _ in Task(executorPreference: runtime) {} }
                usleep(200_000)
                return tasks
            }
            let tasks = try await bounded(10, "blocker") { await blocker.value }
            for task in tasks { await task.value }
            #expect(runtime.metrics().blockedWorkerReports >= 1)
            let report = recorder.all.first { $0.contains("task 'alone'") }
            #expect(report?.contains("only worker") == true, "\(recorder.all)")
            #expect(report?.contains("handed") == false, "\(recorder.all)")
            await runtime.shutdown()
        }

        @Test func blockedWorkerIsReportedAndTasksQueuedBehindItRunElsewhere() async throws {
            let recorder = LogRecorder()
            let logger = Logger(label: "test") { _ in RecordingHandler(recorder: recorder) }
            let runtime = try Runtime(workers: 2, blockedWorkerThreshold: .milliseconds(50), logger: logger)
            final class Flag: Sendable { let done = Atomic<Bool>(false) }
            let flag = Flag()
            let children = 20
            let blocker = try runtime.spawn(name: "sleepy") { () -> [Task<Bool, Never>] in
                // These children are queued on this worker (the last one in its LIFO slot,
                // which no thief may take) before it blocks.
                let tasks = (0..<children).map { _ in
                    Task(executorPreference: runtime) { !flag.done.load(ordering: .acquiring) }
                }
                usleep(300_000)  // blocks the worker, not just the task
                flag.done.store(true, ordering: .releasing)
                return tasks
            }
            let tasks = try await bounded(10, "blocker") { await blocker.value }
            var ranWhileBlocked = 0
            for task in tasks where await task.value { ranWhileBlocked += 1 }
            #expect(ranWhileBlocked == children, "only \(ranWhileBlocked) of \(children) ran while the worker was blocked")
            #expect(runtime.metrics().blockedWorkerReports >= 1)
            #expect(recorder.all.contains { $0.contains("task 'sleepy'") && $0.contains("blocked") }, "\(recorder.all)")
            await runtime.shutdown()
        }

        @Test func timersOfABlockedWorkerStillFire() async throws {
            let runtime = try Runtime(workers: 2, blockedWorkerThreshold: .milliseconds(30),
                                      logger: Logger(label: "test") { _ in SwiftLogNoOpLogHandler() })
            let lateness = try await bounded(10, "timer behind a blocked worker") {
                await Task(executorPreference: runtime) { () -> Duration in
                    // The sleeper's timer lives on this worker, which then blocks.
                    let start = ContinuousClock.now
                    final class Started: Sendable { let flag = Atomic<Bool>(false) }
                    let started = Started()
                    let sleeper = Task(executorPreference: runtime) { () -> Duration in
                        started.flag.store(true, ordering: .releasing)
                        try? await Task.sleep(for: .milliseconds(20))
                        return ContinuousClock.now - start
                    }
                    while !started.flag.load(ordering: .acquiring) { await Task.yield() }
                    _ = usleep(400_000)
                    return await sleeper.value
                }.value
            }
            // Without the hand-off the sleeper would wake after the 400 ms block.
            #expect(lateness < .milliseconds(300), "sleeper woke after \(lateness)")
            await runtime.shutdown()
        }

        @Test func watchCanBeTurnedOff() async throws {
            let runtime = try Runtime(workers: 1, blockedWorkerThreshold: nil)
            await Task(executorPreference: runtime) { _ = usleep(150_000) }.value
            #expect(runtime.metrics().blockedWorkerReports == 0)
            #expect(threadCount(prefix: "spindle-watch") == 0)
            await runtime.shutdown()
        }
    }
}

