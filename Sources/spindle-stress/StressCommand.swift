// The command line of `spindle-stress`: randomized mixes of Spindle workloads with invariant
// checks, for a duration or a number of executor jobs. See docs/stress.md.

import ArgumentParser

@main
struct StressCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "spindle-stress",
        abstract: "Runs randomized mixes of Spindle workloads and checks their invariants.",
        discussion: """
            Workloads (--mix): \(MixKind.allCases.map(\.rawValue).joined(separator: ", ")). They run \
            together on a runtime (or, with --event-loop, an event loop) that is started and shut down \
            again every 0.25-2.5 s. The run fails with exit status 1 and a diagnostic on the first \
            violated invariant or hang; it prints the seed at the start and on failure, and --seed \
            replays the run's randomized choices.
            """)

    @Option(help: "Worker threads per runtime (default: the CPUs this process may use).")
    var workers: Int?

    @Flag(help: "Run on a single-threaded SpindleEventLoop instead of a multi-threaded Runtime.")
    var eventLoop = false

    @Option(help: "The seed every randomized choice derives from (default: a random one, printed).")
    var seed: UInt64?

    @Option(help: "Stop after this many seconds (default 10, or no limit when --jobs is given).")
    var duration: Double?

    @Option(help: "Stop after this many executor jobs have run (e.g. 1000000000 or 1e9).", transform: parseCount)
    var jobs: UInt64?

    @Option(help: "Comma-separated workloads, or all (the default).", transform: parseMixes)
    var mix: [MixKind] = MixKind.allCases

    @Option(help: "Seconds a round or a shutdown may stay outstanding before the run fails as a hang.")
    var watchdog: Double = 60

    @Option(help: ArgumentHelp(
        "Break an invariant on purpose to show that the checks fail: \(Fault.allCases.map(\.rawValue).joined(separator: ", ")).",
        visibility: .hidden))
    var injectFault: Fault?

    func validate() throws {
        if let workers, !(1...256).contains(workers) {
            throw ValidationError("--workers must be between 1 and 256, not \(workers)")
        }
        if let duration, !(duration > 0 && duration.isFinite) {
            throw ValidationError("--duration must be a positive number of seconds, not \(duration)")
        }
        if jobs == 0 { throw ValidationError("--jobs must be at least 1") }
        if !(watchdog > 0 && watchdog.isFinite) {
            throw ValidationError("--watchdog must be a positive number of seconds, not \(watchdog)")
        }
    }

    func run() async throws {
        var generator = SystemRandomNumberGenerator()
        let config = Configuration(
            workers: workers, eventLoop: eventLoop, seed: seed ?? generator.next(),
            duration: duration ?? (jobs == nil ? 10 : nil), jobs: jobs, mixes: mix,
            watchdog: watchdog, fault: injectFault)
        await StressRun.execute(config)
    }
}

extension Fault: ExpressibleByArgument {}

/// A count written as an integer or in exponent form (`1e9`).
private func parseCount(_ text: String) throws -> UInt64 {
    if let value = UInt64(text) { return value }
    guard let value = Double(text), value >= 0, value <= 1.8e19, value == value.rounded() else {
        throw ValidationError("not a whole number of jobs: \(text)")
    }
    return UInt64(value)
}

/// `all`, or workload names separated by commas, each named once.
private func parseMixes(_ text: String) throws -> [MixKind] {
    if text == "all" { return MixKind.allCases }
    var kinds: [MixKind] = []
    for name in text.split(separator: ",", omittingEmptySubsequences: false) {
        guard let kind = MixKind(rawValue: String(name)) else {
            throw ValidationError("unknown workload '\(name)'; choose from \(MixKind.allCases.map(\.rawValue).joined(separator: ", ")) or all")
        }
        if kinds.contains(kind) { throw ValidationError("workload '\(name)' is named twice") }
        kinds.append(kind)
    }
    return kinds
}
