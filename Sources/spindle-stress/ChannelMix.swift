// Channels: ping-pong pairs (a ping sends 0, 1, 2... through one channel, the pong echoes each
// back through another) and a fan-in (several producers, several consumers, one channel), with
// random small capacities so that senders and receivers both wait. Every message carries the
// index of the worker that sent it; a delivery to a task on another worker is counted as
// cross-worker. A woken receiver goes to its waker's LIFO slot, so a pair would stay on one
// worker (a yield does not move it either: measured, about 1 delivery in 1,000 crossed); so
// each ping and pong, after every `hop`-th message (1-64, per pair), hops through the blocking
// pool, and resumes on whichever worker takes the pool's completion first. Its next message
// then crosses to its partner, which, woken into the LIFO slot of the sender's worker, joins
// it (measured: 1 delivery in 37 crosses with this workload alone, 1 in 3,000 in the full mix,
// where both workers are busy and the completion mostly goes back to the worker the task left).
//
// Invariants: a pong receives 0, 1, 2... in order and the ping gets each back in order; every
// fan-in message is received exactly once, and each consumer sees each producer's messages in
// increasing order; no send fails unless the round was cancelled; and a send that threw
// (cancelled) did not deliver its message. One round in eight is cancelled at a random point.

import Spindle
import Synchronization

enum ChannelMix {
    /// A message: the sequence number and the sender's worker (255 off the workers).
    static func message(_ sequence: Int) -> Int { sequence << 8 | (Runtime.currentWorkerIndex ?? 255) }
    static func sequence(_ message: Int) -> Int { message >> 8 }
    static func crossedWorkers(_ message: Int) -> Bool {
        let sender = message & 0xFF
        return sender != 255 && sender != (Runtime.currentWorkerIndex ?? 255)
    }

    struct Plan: Sendable {
        var pairs: [(messages: Int, capacities: (Int, Int), hop: Int)]
        var producers: Int
        var perProducer: Int
        var consumers: Int
        var capacity: Int
        var fanInMessages: Int { producers * perProducer }
    }

    /// What the round's tasks report: messages delivered, cross-worker deliveries.
    typealias Tally = (delivered: Int, crossed: Int)

    static func run(_ round: Round) async {
        var rng = round.rng()
        let plan = Plan(
            pairs: (0..<rng.int(1...6)).map { _ in (rng.int(100...2_000), (rng.int(1...8), rng.int(1...8)), rng.int(1...64)) },
            producers: rng.int(1...4), perProducer: rng.int(100...1_000), consumers: rng.int(1...4),
            capacity: rng.int(1...16))
        let ledger = Ledger(count: plan.fanInMessages, round: round)
        round.phase("\(plan.pairs.count) ping-pong pairs, fan-in \(plan.producers)x\(plan.perProducer) to \(plan.consumers)")
        let cancelRequested = rng.oneIn(8)
        let allowed = CancelAllowance(requested: cancelRequested, round: round)
        let probe = round.probe(
            names: plan.pairs.indices.flatMap { ["ping \($0)", "pong \($0)"] }
                + (0..<plan.producers).map { "producer \($0)" } + (0..<plan.consumers).map { "consumer \($0)" },
            labels: Step.labels)
        let tasks = Tasks(plan: plan, ledger: ledger, round: round, allowed: allowed, probe: probe)
        guard let root = round.spawn({ await tasks.runAll() }) else { return }
        let canceller = cancelRequested ? round.cancelLater(root, &rng) : nil
        let (tally, sent) = await root.value
        await canceller?.value
        let cancelled = allowed.isAllowed
        for producer in 0..<plan.producers {
            let base = producer * plan.perProducer
            if let unsent = sent[producer].failedAt, ledger.runs(base + unsent) != 0 {
                round.fail("producer \(producer)'s send of \(unsent) threw, but the message was delivered")
            }
            if !cancelled {
                for index in 0..<plan.perProducer where ledger.runs(base + index) != 1 {
                    round.fail("fan-in message \(index) of producer \(producer) was received \(ledger.runs(base + index)) times")
                }
            }
        }
        let expected = plan.pairs.reduce(0) { $0 + 2 * $1.messages } + plan.fanInMessages
        if !cancelled && tally.delivered != expected {
            round.fail("\(tally.delivered) messages delivered, not the \(expected) sent")
        }
        round.counters.add(units: tally.delivered, cancelled: cancelled ? 1 : 0, extra: UInt64(tally.crossed))
    }

    /// Whether a cancellation error is allowed in this round (asked for, or the cycle ending).
    struct CancelAllowance: Sendable {
        let requested: Bool
        let round: Round
        var isAllowed: Bool { requested || round.cycleEndsAbruptly }

        /// Fails the round for `error` unless cancellation may have caused it.
        func check(_ error: any Error, _ what: String) {
            if !isAllowed { round.fail("\(what) threw \(error) in a round nobody cancelled") }
        }
    }

    struct Sent: Sendable {
        var count = 0
        var failedAt: Int?
    }

    /// The round's tasks and what they share.
    struct Tasks: Sendable {
        let plan: Plan
        let ledger: Ledger
        let round: Round
        let allowed: CancelAllowance
        let probe: Probe

        func runAll() async -> (Tally, [Sent]) {
            async let pairs = withTaskGroup(of: Tally.self) { group in
                for (index, pair) in plan.pairs.enumerated() {
                    let ping = SpindleChannel<Int>(capacity: pair.capacities.0)
                    let pong = SpindleChannel<Int>(capacity: pair.capacities.1)
                    group.addTask { await pinger(index, pair.messages, pair.hop, ping, pong) }
                    group.addTask { await ponger(index, pair.hop, ping, pong) }
                }
                return await group.reduce((0, 0)) { ($0.0 + $1.0, $0.1 + $1.1) }
            }
            async let fanIn = fanIn()
            let (pairTally, (fanTally, sent)) = await (pairs, fanIn)
            return ((pairTally.0 + fanTally.0, pairTally.1 + fanTally.1), sent)
        }

        func pinger(_ pair: Int, _ count: Int, _ hop: Int, _ ping: SpindleChannel<Int>, _ pong: SpindleChannel<Int>) async -> Tally {
            let slot = 2 * pair
            var tally: Tally = (0, 0)
            defer { ping.close() }
            do {
                for i in 0..<count {
                    probe.set(slot, Step.sending, i)
                    try await ping.send(message(i))
                    probe.set(slot, Step.receiving, i)
                    guard let back = try await pong.receive() else {
                        probe.set(slot, Step.closed, i)
                        allowed.check(ChannelClosedError(), "pair \(pair)'s pong channel (closed early)")
                        return tally
                    }
                    if sequence(back) != i { round.fail("pair \(pair): sent \(i), got back \(sequence(back))") }
                    tally.delivered += 1
                    if crossedWorkers(back) { tally.crossed += 1 }
                    if i % hop == hop - 1 { await ChannelMix.hopWorkers() }
                }
                probe.set(slot, Step.done, count)
            } catch {
                probe.set(slot, Step.threw, tally.delivered)
                allowed.check(error, "pair \(pair)'s ping")
                pong.close()
            }
            return tally
        }

        func ponger(_ pair: Int, _ hop: Int, _ ping: SpindleChannel<Int>, _ pong: SpindleChannel<Int>) async -> Tally {
            let slot = 2 * pair + 1
            var tally: Tally = (0, 0)
            defer { pong.close() }
            do {
                var expected = 0
                probe.set(slot, Step.receiving, 0)
                while let value = try await ping.receive() {
                    if sequence(value) != expected { round.fail("pair \(pair): expected \(expected), received \(sequence(value))") }
                    expected += 1
                    tally.delivered += 1
                    if crossedWorkers(value) { tally.crossed += 1 }
                    probe.set(slot, Step.sending, expected - 1)
                    try await pong.send(message(sequence(value)))
                    probe.set(slot, Step.receiving, expected)
                    if expected % hop == 0 { await ChannelMix.hopWorkers() }
                }
                probe.set(slot, Step.done, expected)
            } catch {
                probe.set(slot, Step.threw, tally.delivered)
                allowed.check(error, "pair \(pair)'s pong")
                ping.close()
            }
            return tally
        }

        func fanIn() async -> (Tally, [Sent]) {
            let channel = SpindleChannel<Int>(capacity: plan.capacity)
            async let sent = withTaskGroup(of: (Int, Sent).self) { group in
                for producer in 0..<plan.producers {
                    group.addTask {
                        var sent = Sent()
                        let slot = 2 * plan.pairs.count + producer
                        for i in 0..<plan.perProducer {
                            do {
                                probe.set(slot, Step.sending, i)
                                try await channel.send(message(producer * plan.perProducer + i))
                                sent.count += 1
                            } catch {
                                probe.set(slot, Step.threw, i)
                                allowed.check(error, "producer \(producer)'s send")
                                sent.failedAt = i
                                break
                            }
                        }
                        if sent.failedAt == nil { probe.set(slot, Step.done, sent.count) }
                        return (producer, sent)
                    }
                }
                var all = [Sent](repeating: Sent(), count: plan.producers)
                for await (producer, sent) in group { all[producer] = sent }
                channel.close()
                return all
            }
            let tally = await withTaskGroup(of: Tally.self) { group in
                for consumer in 0..<plan.consumers {
                    group.addTask {
                        var tally: Tally = (0, 0)
                        var last = [Int](repeating: -1, count: plan.producers)
                        let slot = 2 * plan.pairs.count + plan.producers + consumer
                        do {
                            probe.set(slot, Step.receiving, 0)
                            while let value = try await channel.receive() {
                                let index = sequence(value)
                                let (producer, i) = index.quotientAndRemainder(dividingBy: plan.perProducer)
                                if i <= last[producer] {
                                    round.fail("consumer \(consumer) got producer \(producer)'s \(i) after its \(last[producer])")
                                }
                                last[producer] = i
                                ledger.mark(index)
                                tally.delivered += 1
                                if crossedWorkers(value) { tally.crossed += 1 }
                                probe.set(slot, Step.receiving, tally.delivered)
                            }
                            probe.set(slot, Step.done, tally.delivered)
                        } catch {
                            probe.set(slot, Step.threw, tally.delivered)
                            allowed.check(error, "consumer \(consumer)'s receive")
                        }
                        return tally
                    }
                }
                return await group.reduce((0, 0)) { ($0.0 + $1.0, $0.1 + $1.1) }
            }
            return (tally, await sent)
        }
    }

    /// Resumes the caller on whichever worker picks up a blocking-pool completion first. A
    /// failure (cancelled, or the pool closed by an abrupt shutdown) is the next channel
    /// operation's to report.
    static func hopWorkers() async {
        _ = try? await toThread { () }
    }

    /// The states of a task in the probe.
    enum Step {
        static let labels = ["not started", "sending", "receiving", "done", "threw", "found closed"]
        static let sending = 1, receiving = 2, done = 3, threw = 4, closed = 5
    }
}
