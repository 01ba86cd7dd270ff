// One runtime (or event loop) lifetime of the run: the workloads run as lanes of rounds on a
// fresh host until the cycle's time is up, then the host is shut down and the cycle checks
// that it gave back every thread and descriptor it took.

import Synchronization

final class CycleContext: Sendable {
    let number: Int
    let seed: UInt64
    let host: Host
    let config: Configuration
    let reporter: Reporter
    let watchdog: Watchdog
    /// Where the Unix-domain sockets of this run live.
    let socketDirectory: String
    var stats: Stats { reporter.stats }

    /// Set when the cycle's time is up and it ends gracefully: lanes start no new round.
    let ending = Atomic<Bool>(false)
    /// Set (sequentially consistent) before the host is shut down under running rounds, so a
    /// round that sees cancellation it did not ask for can tell that it was allowed.
    let endsAbruptly = Atomic<Bool>(false)

    init(number: Int, seed: UInt64, host: Host, reporter: Reporter, watchdog: Watchdog, socketDirectory: String) {
        self.number = number
        self.seed = seed
        self.host = host
        config = reporter.config
        self.reporter = reporter
        self.watchdog = watchdog
        self.socketDirectory = socketDirectory
    }

    /// Whether lanes should stop starting rounds. Relaxed: polled between rounds.
    var shouldStop: Bool { ending.load(ordering: .relaxed) || watchdog.shouldStop }

    /// Runs every workload's lanes until the cycle ends; returns when all rounds are done.
    func runLanes() async {
        await withTaskGroup(of: Void.self) { group in
            for kind in config.mixes {
                for lane in 0..<kind.lanes {
                    group.addTask { await self.runLane(kind, lane) }
                }
            }
        }
    }

    private func runLane(_ kind: MixKind, _ lane: Int) async {
        var number = 0
        while !shouldStop && !Task.isCancelled {
            let token = reporter.outstanding.begin("cycle \(self.number) \(kind.rawValue) lane \(lane) round \(number)")
            let round = Round(cycle: self, kind: kind, lane: lane, number: number, token: token)
            if round.injectsHang { await round.hangForever() }
            await kind.run(round)
            reporter.outstanding.done(token)
            round.counters.roundDone()
            number += 1
        }
    }
}

extension MixKind {
    /// Runs one round of this workload.
    func run(_ round: Round) async {
        switch self {
        case .spawn: await SpawnTreeMix.run(round)
        case .yield: await YieldMix.run(round)
        case .channel: await ChannelMix.run(round)
        case .timer: await TimerMix.run(round)
        case .tcp: await EchoMix.run(round, over: .tcp)
        case .unix: await EchoMix.run(round, over: .unix)
        case .blocking: await BlockingMix.run(round)
        }
    }
}
