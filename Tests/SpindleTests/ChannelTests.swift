import Synchronization
import Testing
@testable import Spindle

extension SpindleTests {
    @Suite struct ChannelTests {
        @Test func deliversInOrderAndEndsAfterClose() async throws {
            let received = try await Runtime.run(workers: 2) { () -> [Int] in
                let channel = Channel<Int>(capacity: 4)
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
            let states = try await EventLoop.run { () -> (Bool, Bool) in
                let channel = Channel<Int>(capacity: 1)
                try await channel.send(1)
                final class Flag: Sendable { let sent = Atomic<Bool>(false) }
                let flag = Flag()
                let sender = Task(executorPreference: EventLoop.current!) {
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
                let empty = Channel<Int>(capacity: 1)
                let receiver = Task(executorPreference: runtime) { try await empty.receive() }
                let full = Channel<Int>(capacity: 1)
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
                let channel = Channel<Int>(capacity: 1)
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

        @Test func manyProducersAndConsumersDeliverEachElementOnce() async throws {
            let producers = 4, consumers = 4, perProducer = 25_000
            let counts = try await bounded(60, "MPMC channel") {
                try await Runtime.run(workers: 2) { () -> [Int] in
                    let channel = Channel<Int>(capacity: 8)
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
