import Synchronization
import Testing
@testable import Spindle

extension SpindleTests {
    @Suite struct ChannelTests {
        @Test func deliversInOrderAndEndsAfterClose() async throws {
            let received = try await Runtime.run(workers: 2) { () -> [Int] in
                let channel = SpindleChannel<Int>(capacity: 4)
                Task(executorPreference: Runtime.current!) {
                    for i in 0..<1_000 { try await channel.send(i) }
                    channel.close()
                }
                var all: [Int] = []
                for try await value in channel { all.append(value) }
                return all
            }
            #expect(received == Array(0..<1_000))
        }

        @Test func sendWaitsWhileFull() async throws {
            let states = try await SpindleEventLoop.run { () -> (Bool, Bool) in
                let channel = SpindleChannel<Int>(capacity: 1)
                try await channel.send(1)
                final class Flag: Sendable { let sent = Atomic<Bool>(false) }
                let flag = Flag()
                let sender = Task(executorPreference: SpindleEventLoop.current!) {
                    try await channel.send(2)
                    flag.sent.store(true, ordering: .releasing)
                }
                for _ in 0..<10 { await Task.yield() }
                let blockedWhileFull = !flag.sent.load(ordering: .acquiring)
                _ = try await channel.receive()
                try await sender.value
                return (blockedWhileFull, try await channel.receive() == 2)
            }
            #expect(states.0)
            #expect(states.1)
        }

        @Test func closeWakesWaitersAndRefusesSends() async throws {
            let outcome = try await Runtime.run(workers: 2) { () -> (Bool, Bool, Bool) in
                let runtime = Runtime.current!
                let empty = SpindleChannel<Int>(capacity: 1)
                let receiver = Task(executorPreference: runtime) { try await empty.receive() }
                let full = SpindleChannel<Int>(capacity: 1)
                try await full.send(0)
                let sender = Task(executorPreference: runtime) { () -> Bool in
                    do { try await full.send(1); return false } catch { return error is ChannelClosedError }
                }
                try await Task.sleep(for: .milliseconds(10))
                empty.close()
                full.close()
                let receiverGotNil = try await receiver.value == nil
                let senderRefused = await sender.value
                // Buffered elements are still delivered after close, then nil.
                let drained = try await full.receive() == 0
                let end = try await full.receive() == nil
                return (receiverGotNil, senderRefused, drained && end)
            }
            #expect(outcome.0)
            #expect(outcome.1)
            #expect(outcome.2)
        }

        @Test func cancelledWaitersLeaveTheQueueAndLoseNothing() async throws {
            let outcome = try await Runtime.run(workers: 2) { () -> (Bool, Bool, Int?) in
                let runtime = Runtime.current!
                let channel = SpindleChannel<Int>(capacity: 1)
                let receiver = Task(executorPreference: runtime) { () -> Bool in
                    do { _ = try await channel.receive(); return false } catch { return error is CancellationError }
                }
                try await Task.sleep(for: .milliseconds(10))
                receiver.cancel()
                let receiverCancelled = await receiver.value
                // The cancelled receiver must not swallow the next element.
                try await channel.send(7)
                let sender = Task(executorPreference: runtime) { () -> Bool in
                    do { try await channel.send(8); return false } catch { return error is CancellationError }
                }
                try await Task.sleep(for: .milliseconds(10))
                sender.cancel()
                let senderCancelled = await sender.value
                let first = try await channel.receive()
                channel.close()
                let next = try await channel.receive()  // 8 was cancelled, so nothing follows 7
                return (receiverCancelled, senderCancelled && next == nil, first)
            }
            #expect(outcome.0)
            #expect(outcome.1)
            #expect(outcome.2 == 7)
        }

        /// A task that is already cancelled when it calls `receive` on an empty channel, or
        /// `send` on a full one, throws at once. (The cancellation handler used to run before
        /// the waiter was registered, find nothing to remove, and the task then waited until an
        /// element or room arrived.) Waiting is what is cancelled: an element that is there, or
        /// room that is free, is still taken.
        @Test(arguments: [Host.twoWorkers, Host.eventLoop])
        func anAlreadyCancelledTaskDoesNotWaitOnAnEmptyOrFullChannel(host: Host) async throws {
            let outcome = try await host.run(20) { () -> [String] in
                let empty = SpindleChannel<Int>(capacity: 1)
                let full = SpindleChannel<Int>(capacity: 1)
                try await full.send(1)
                let receive = await thrownName("receive on an empty channel from a cancelled task") {
                    await Task { () -> (any Error)? in
                        withUnsafeCurrentTask { $0?.cancel() }
                        do { _ = try await empty.receive(); return nil } catch { return error }
                    }.value
                }
                let send = await thrownName("send on a full channel from a cancelled task") {
                    await Task { () -> (any Error)? in
                        withUnsafeCurrentTask { $0?.cancel() }
                        do { try await full.send(2); return nil } catch { return error }
                    }.value
                }
                // Not waiting: the buffered element and free room are still used.
                let taken = try await Task { () -> Int? in
                    withUnsafeCurrentTask { $0?.cancel() }
                    return try await full.receive()
                }.value
                try await Task {
                    withUnsafeCurrentTask { $0?.cancel() }
                    try await empty.send(3)
                }.value
                let buffered = try await empty.receive()
                full.close()
                let after = try await full.receive()  // 2 was refused: nothing follows 1
                return [
                    "receive: \(receive)", "send: \(send)",
                    "taken \(String(describing: taken)), buffered \(String(describing: buffered)), after \(String(describing: after))",
                ]
            }
            #expect(outcome == [
                "receive: CancellationError", "send: CancellationError",
                "taken Optional(1), buffered Optional(3), after nil",
            ])
        }

        @Test func manyProducersAndConsumersDeliverEachElementOnce() async throws {
            let producers = 4, consumers = 4, perProducer = 25_000
            let counts = try await bounded(60, "MPMC channel") {
                try await Runtime.run(workers: 2) { () -> [Int] in
                    let channel = SpindleChannel<Int>(capacity: 8)
                    return try await withThrowingTaskGroup(of: [Int].self) { group in
                        for p in 0..<producers {
                            group.addTask {
                                for i in 0..<perProducer { try await channel.send(p * perProducer + i) }
                                return []
                            }
                        }
                        for _ in 0..<consumers {
                            group.addTask {
                                var seen: [Int] = []
                                while let value = try await channel.receive() { seen.append(value) }
                                return seen
                            }
                        }
                        var all: [Int] = []
                        var finishedProducers = 0
                        for try await part in group {
                            if part.isEmpty {
                                finishedProducers += 1
                                if finishedProducers == producers { channel.close() }
                            }
                            all += part
                        }
                        return all
                    }
                }
            }
            #expect(counts.count == producers * perProducer)
            #expect(Set(counts).count == producers * perProducer)
        }
    }
}

/// What `body` threw (its type's name), "returned", or the timeout, within 5 s.
func thrownName(_ what: String, _ body: @escaping @Sendable () async -> (any Error)?) async -> String {
    do {
        return try await bounded(5, what, body).map { "\(type(of: $0))" } ?? "returned"
    } catch {
        return "\(error)"
    }
}
