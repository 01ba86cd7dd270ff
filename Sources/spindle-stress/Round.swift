// One round of one workload: a bounded piece of work that checks its own invariants when it
// has awaited everything it started. A round knows its position (cycle, workload, lane,
// number), from which its random choices derive, and how to fail with that position named.

import Spindle

struct Round: Sendable {
    let cycle: CycleContext
    let kind: MixKind
    let lane: Int
    let number: Int
    /// The round's entry in `Outstanding`.
    let token: UInt64

    var host: Host { cycle.host }
    var counters: MixCounters { cycle.stats.counters(kind) }

    /// The generator for the round's choices.
    func rng() -> SplitMix {
        SplitMix(seed: cycle.seed, UInt64(MixKind.allCases.firstIndex(of: kind)!), UInt64(lane), UInt64(number))
    }

    /// `--inject-fault double-count` breaks the first round of the first workload.
    var injectsDoubleCount: Bool { cycle.config.fault == .doubleCount && isFirstRound }
    /// `--inject-fault hang` makes the first round of the first workload wait forever.
    var injectsHang: Bool { cycle.config.fault == .hang && isFirstRound }
    private var isFirstRound: Bool {
        cycle.number == 0 && lane == 0 && number == 0 && kind == cycle.config.mixes.first
    }

    func fail(_ message: String) -> Never {
        cycle.reporter.fail("\(kind.rawValue) lane \(lane) round \(number)", message)
    }

    /// Records how far the round has got, for a hang's diagnostic.
    func phase(_ text: String) { cycle.reporter.outstanding.update(token, phase: text) }

    /// Makes a probe for the round's tasks, printed if the round hangs.
    func probe(names: [String], labels: [String]) -> Probe {
        let probe = Probe(names: names, labels: labels)
        cycle.reporter.outstanding.attach(token, probe)
        return probe
    }

    /// Whether cancellation from outside the round may have reached it: the cycle is being
    /// shut down while rounds run. Read after awaiting the round's tasks (the flag is set
    /// before the shutdown cancels anything, so a task that saw that cancellation finished
    /// after the flag was set).
    var cycleEndsAbruptly: Bool { cycle.endsAbruptly.load(ordering: .sequentiallyConsistent) }

    /// Spawns `operation` on the host (a task the shutdown cancels). Nil when the host is
    /// shutting down, which only an abrupt end of the cycle may cause.
    func spawn<T: Sendable>(_ operation: @escaping @Sendable () async -> T) -> Task<T, Never>? {
        do {
            return try host.spawn(operation)
        } catch {
            if !cycleEndsAbruptly { fail("spawn refused while the cycle runs: \(error)") }
            return nil
        }
    }

    /// Cancels `task` at a random point: after a number of yields or a short sleep drawn from
    /// `rng`. Await the returned task (if any) before checking the round.
    func cancelLater<T: Sendable>(_ task: Task<T, Never>, _ rng: inout SplitMix) -> Task<Void, Never>? {
        let yields = rng.int(0...64)
        let micros = rng.oneIn(2) ? rng.int(0...2_000) : 0
        return spawn {
            if micros > 0 {
                try? await Spindle.sleep(for: .microseconds(micros))
            } else {
                for _ in 0..<yields { await Task.yield() }
            }
            task.cancel()
        }
    }

    /// Awaits forever (the injected hang).
    func hangForever() async {
        phase("injected hang: waiting for a continuation nobody resumes")
        await withUnsafeContinuation { (_: UnsafeContinuation<Void, Never>) in }
    }
}
