import Glibc
import Synchronization
import Testing
@testable import Spindle

/// A flag tasks raise and watch (Atomic cannot be captured by escaping closures).
final class Flag: Sendable {
    private let value = Atomic<Bool>(false)
    var isSet: Bool { value.load(ordering: .relaxed) }
    func set() { value.store(true, ordering: .relaxed) }
}

extension SpindleTests {
    @Suite struct TaskDumpTests {
        /// The dump's state of the task named `name`, if it lists one.
        static func state(of name: String, in dump: [TaskSnapshot]) -> TaskSnapshot.State? {
            dump.first { $0.name == name }?.state
        }

        @Test func theDumpNamesWhatEachSpawnedTaskWaitsOn() async throws {
            let runtime = try Runtime(workers: 2, blockedWorkerThreshold: nil)
            let (client, server) = try await connectedPair()
            let channel = SpindleChannel<Int>(capacity: 1)
            let full = SpindleChannel<Int>(capacity: 1)
            try await full.send(0)  // a send on it waits for room
            let quiet = SpindleChannel<Int>(capacity: 1)
            let release = Gate()
            let stopSpinning = Flag()
            let operations: [(String, @Sendable () async throws -> Void)] = [
                ("reader", { _ = try await server.read() }),
                ("sleeper", { try await Spindle.sleep(for: .seconds(3600)) }),
                ("receiver", { _ = try await channel.receive() }),
                ("sender", { try await full.send(1) }),
                ("blocking", { _ = try await toThread { release.wait() } }),
                ("timeout", { _ = try await withTimeout(.seconds(3600)) { try await quiet.receive() } }),
                ("spinner", { while !stopSpinning.isSet {} }),
            ]
            let tasks = try operations.map { name, operation in try runtime.spawn(name: name, operation) }
            defer {
                stopSpinning.set()
                release.open()
                for task in tasks { task.cancel() }
                client.close()
                server.close()
            }
            var dump: [TaskSnapshot] = []
            try await eventually("every task reaches its wait", seconds: 20) {
                dump = runtime.taskDump()
                return dump.count == 7 && dump.allSatisfy {
                    if case .suspended = $0.state { return true }
                    if case .running = $0.state { return $0.name == "spinner" }
                    return false
                } && channel.state.withLock { $0.receivers.count } == 1 && full.state.withLock { $0.senders.count } == 1
            }
            let fd = server.core.descriptor.fd
            #expect(Self.state(of: "reader", in: dump) == .suspended(.io(operation: "recv", descriptor: fd)))
            guard case .suspended(.sleep(let left)) = Self.state(of: "sleeper", in: dump) else {
                Issue.record("sleeper: \(dump)")
                return
            }
            #expect(left > .seconds(3500) && left <= .seconds(3600))
            let channelAddress = UInt(bitPattern: ObjectIdentifier(channel))
            let fullAddress = UInt(bitPattern: ObjectIdentifier(full))
            #expect(Self.state(of: "receiver", in: dump) == .suspended(.channel(isSend: false, channel: channelAddress)))
            #expect(Self.state(of: "sender", in: dump) == .suspended(.channel(isSend: true, channel: fullAddress)))
            #expect(Self.state(of: "blocking", in: dump) == .suspended(.blockingJob))
            guard case .suspended(.timeout(let timeoutLeft)) = Self.state(of: "timeout", in: dump) else {
                Issue.record("timeout: \(dump)")
                return
            }
            #expect(timeoutLeft > .seconds(3500))
            guard case .running(let worker?) = Self.state(of: "spinner", in: dump) else {
                Issue.record("spinner: \(dump)")
                return
            }
            #expect((0..<2).contains(worker))
            #expect(dump.allSatisfy { $0.age >= .zero && $0.age < .seconds(600) })
            let text = runtime.formattedTaskDump()
            #expect(text.contains("7 spawned tasks"))
            #expect(text.contains("'reader'") && text.contains("recv on descriptor \(fd)"))
            #expect(text.contains("'spinner'") && text.contains("running on worker"))
            #expect(text.contains("channel receive (channel 0x\(String(channelAddress, radix: 16)))"))
            #expect(text.contains("channel send (channel 0x\(String(fullAddress, radix: 16)))"))
            stopSpinning.set()
            release.open()
            for task in tasks { task.cancel() }
            for task in tasks { _ = try await bounded(10, "tasks end") { try? await task.value } }
            #expect(runtime.taskDump().isEmpty)
            await runtime.shutdown()
        }

        /// On the epoll backend a read waits for readiness, not for an io_uring request: the
        /// dump names that wait and its descriptor.
        @Test func theDumpNamesAnEpollReadinessWait() async throws {
            let runtime = try Runtime(workers: 1, blockedWorkerThreshold: nil, reactor: .epoll)
            let (client, server) = try await runtime.spawn { try await connectedPair() }.value
            let reader = try runtime.spawn(name: "reader") { _ = try await server.read() }
            defer {
                reader.cancel()
                client.close()
                server.close()
            }
            let fd = server.core.descriptor.fd
            let expected = TaskSnapshot.State.suspended(.io(operation: "epoll wait for readable", descriptor: fd))
            try await eventually("the reader waits for readiness", seconds: 20) {
                Self.state(of: "reader", in: runtime.taskDump()) == expected
            }
            #expect(runtime.formattedTaskDump().contains("epoll wait for readable on descriptor \(fd)"))
            try await client.write([1])
            _ = try await bounded(10, "the reader ends") { try await reader.value }
            #expect(runtime.taskDump().isEmpty)
            await runtime.shutdown()
        }

        @Test func aChildsWaitIsNotItsParents() async throws {
            let runtime = try Runtime(workers: 2, blockedWorkerThreshold: nil)
            let childWaiting = Flag()
            let parent = try runtime.spawn(name: "parent") {
                await withTaskGroup(of: Void.self) { group in
                    group.addTask {
                        childWaiting.set()
                        try? await Spindle.sleep(for: .seconds(3600))
                    }
                }
            }
            // The child is in its sleep once a wheel holds its timer.
            try await eventually("the child waits") {
                childWaiting.isSet && runtime.metrics().workers.reduce(0) { $0 + $1.timersPending } >= 1
            }
            #expect(Self.state(of: "parent", in: runtime.taskDump()) == .notRunning)
            parent.cancel()
            try await bounded(10, "parent ends") { await parent.value }
            await runtime.shutdown()
        }

        @Test func anEventLoopDumpsRunningAndQueuedTasks() async throws {
            let loop = try SpindleEventLoop()
            let spinning = Flag()
            let stopSpinning = Flag()
            let spinner = try loop.spawn(name: "spinner") {
                spinning.set()
                while !stopSpinning.isSet {}
            }
            defer { stopSpinning.set() }
            try await eventually("the spinner runs") { spinning.isSet }
            // The loop's one thread is busy: a task spawned now cannot start.
            let waiting = try loop.spawn(name: "waiting") {}
            let dump = loop.taskDump()
            #expect(Self.state(of: "spinner", in: dump) == .running(worker: nil))
            #expect(Self.state(of: "waiting", in: dump) == .queued)
            #expect(loop.formattedTaskDump().contains("event loop: 2 spawned tasks"))
            stopSpinning.set()
            try await bounded(10, "tasks end") {
                await spinner.value
                await waiting.value
            }
            await loop.shutdown()
        }
    }
}
