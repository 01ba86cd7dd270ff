import Glibc
import Testing
@testable import Spindle

/// The stress tool (`spindle-stress`, Sources/spindle-stress) run as a child process, as a user
/// runs it: a short clean run must report success, and a deliberately broken run must be
/// caught, so the tool's checks are known to be able to fail.
extension SpindleTests {
    @Suite struct StressToolTests {
        /// Every workload but `unix`, which joins once its finding is fixed (docs/stress.md: a
        /// `UnixListener` closed under a multishot accept never ends its `connections`).
        static let passingMixes = "spawn,yield,channel,timer,tcp,blocking"

        @Test(arguments: [["--workers", "2"], ["--event-loop"]])
        func aShortMixedRunReportsSuccess(host: [String]) async throws {
            let run = try await runStressTool(
                host + ["--duration", "2", "--seed", "11", "--mix", Self.passingMixes, "--watchdog", "30"], bound: 90)
            #expect(run.status == 0, "\(run.output)")
            #expect(run.output.contains("spindle-stress: seed 11"), "\(run.output)")
            #expect(run.output.contains("PASS: "), "\(run.output)")
            #expect(run.output.contains(" 0 violations, seed 11"), "\(run.output)")
            #expect(!run.output.contains("VIOLATION"), "\(run.output)")
        }

        @Test func anInjectedDoubleCountIsAViolation() async throws {
            let run = try await runStressTool(
                ["--duration", "60", "--seed", "12", "--mix", "spawn", "--inject-fault", "double-count"], bound: 90)
            #expect(run.status == 1, "\(run.output)")
            #expect(run.output.contains("VIOLATION [spawn lane 0 round 0]: unit 0 of"), "\(run.output)")
            #expect(run.output.contains("ran 2 times"), "\(run.output)")
            #expect(run.output.contains("seed 12; replay: spindle-stress --seed 12"), "\(run.output)")
            #expect(!run.output.contains("PASS"), "\(run.output)")
        }

        @Test func anInjectedHangIsAViolationThatNamesWhatWasOutstanding() async throws {
            let run = try await runStressTool(
                ["--duration", "60", "--seed", "13", "--mix", "yield,timer", "--watchdog", "2", "--inject-fault", "hang"],
                bound: 90)
            #expect(run.status == 1, "\(run.output)")
            #expect(run.output.contains("VIOLATION [watchdog]: HANG"), "\(run.output)")
            #expect(run.output.contains("cycle 0 yield lane 0 round 0 (injected hang"), "\(run.output)")
            #expect(run.output.contains("seed 13"), "\(run.output)")
        }

        @Test func badArgumentsAreRefusedWithAMessage() async throws {
            for arguments in [["--mix", "spawn,nonsense"], ["--workers", "0"], ["--duration", "-1"], ["--jobs", "1.5"]] {
                let run = try await runStressTool(arguments, bound: 30)
                #expect(run.status == 64, "\(arguments): \(run.output)")
                #expect(run.output.contains("Error: "), "\(arguments): \(run.output)")
            }
        }
    }
}

/// How a run of the stress tool ended: its exit status (or 128 + the signal) and everything it
/// printed on stdout and stderr.
struct StressToolRun: Sendable {
    var status: Int32
    var output: String
}

/// Runs `spindle-stress` (built beside the test bundle) with `arguments`, killing it if it has
/// not exited after `bound` seconds (then the test fails with what it printed so far).
func runStressTool(_ arguments: [String], bound: Double) async throws -> StressToolRun {
    var buffer = [CChar](repeating: 0, count: 4096)
    let length = readlink("/proc/self/exe", &buffer, buffer.count - 1)
    let exe = String(decoding: buffer[0..<max(0, length)].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    let path = String(exe[..<exe.lastIndex(of: "/")!]) + "/spindle-stress"
    try #require(access(path, X_OK) == 0, "\(path) is not built")
    let run = try await toThread { try runChild(path, arguments, bound: bound) }
    if run.status == -1 {
        throw TimedOut(
            what: "spindle-stress \(arguments.joined(separator: " ")), which printed: \(run.output.suffix(4_000))",
            seconds: bound)
    }
    return run
}

/// Spawns `path` with its stdout and stderr on one pipe, reads until end of file, and waits for
/// it; status -1 if it ran longer than `bound` seconds (it is then killed).
private func runChild(_ path: String, _ arguments: [String], bound: Double) throws -> StressToolRun {
    var pipeFDs: [Int32] = [0, 0]
    try #require(pipe(&pipeFDs) == 0)
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    posix_spawn_file_actions_adddup2(&actions, pipeFDs[1], 1)
    posix_spawn_file_actions_adddup2(&actions, pipeFDs[1], 2)
    posix_spawn_file_actions_addclose(&actions, pipeFDs[0])
    posix_spawn_file_actions_addclose(&actions, pipeFDs[1])
    let (spawned, child) = spawnWithDefaultSignals(path, arguments, &actions)
    posix_spawn_file_actions_destroy(&actions)
    close(pipeFDs[1])
    defer { close(pipeFDs[0]) }
    try #require(spawned == 0, "posix_spawn failed: \(spawned)")

    var output: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 16_384)
    let deadline = ContinuousClock.now + .seconds(bound)
    var timedOut = false
    while true {
        if ContinuousClock.now > deadline {
            timedOut = true
            kill(child, SIGKILL)
            break
        }
        var poll = pollfd(fd: pipeFDs[0], events: Int16(POLLIN), revents: 0)
        if Glibc.poll(&poll, 1, 100) <= 0 { continue }
        let count = read(pipeFDs[0], &chunk, chunk.count)
        if count <= 0 { break }  // end of file: the child has exited (or closed its output)
        output += chunk[0..<count]
    }
    var status: Int32 = 0
    while waitpid(child, &status, 0) < 0 && errno == EINTR {}
    let exitStatus = timedOut ? -1 : status & 0x7F == 0 ? (status >> 8) & 0xFF : 128 + (status & 0x7F)
    return StressToolRun(status: exitStatus, output: String(decoding: output, as: UTF8.self))
}
