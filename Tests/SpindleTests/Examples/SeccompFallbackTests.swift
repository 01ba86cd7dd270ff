import Glibc
import Testing
@testable import Spindle

/// The example servers in a child process whose seccomp filter refuses io_uring with EPERM, as
/// Docker's default profile does (`--deny-io-uring`: prctl(PR_SET_NO_NEW_PRIVS) and a BPF
/// program from CSpindle, no privilege needed). They must start on epoll, say why, and serve.
extension SpindleTests {
    @Suite struct SeccompFallbackTests {
        @Test(arguments: [["--workers", "2"], ["--workers", "1"], ["--event-loop"]])
        func theEchoExampleStartsOnEpollUnderSeccompAndServes(arguments: [String]) async throws {
            let server = try ServerProcess("spindle-echo", ["--deny-io-uring"] + arguments)
            let port = server.port
            let echoed = try await bounded(30, "echo under seccomp") { () -> [[UInt8]] in
                try await withThrowingTaskGroup(of: [UInt8].self) { group in
                    for client in 0..<8 {
                        group.addTask {
                            let stream = try await TCPStream.connect(host: "127.0.0.1", port: port, timeout: .seconds(5))
                            defer { stream.close() }
                            var last: [UInt8] = []
                            for round in 0..<20 {
                                let message = pattern(1_000 + round * 300, seed: client * 100 + round)
                                try await stream.write(message)
                                last = try await stream.readExactly(message.count)
                                if last != message { return [] }
                            }
                            return last
                        }
                    }
                    return try await group.reduce(into: []) { $0.append($1) }
                }
            }
            let (status, output) = server.stop()
            #expect(echoed.count == 8 && echoed.allSatisfy { !$0.isEmpty }, "\(output)")
            #expect(output.contains("seccomp filter installed"), "\(output)")
            #expect(output.contains("runs on epoll"), "\(output)")
            // The reason, logged once through swift-log: EPERM, and the seccomp diagnosis
            // (this host's kernel.io_uring_disabled is 0 or absent, so it is the filter).
            #expect(output.contains("io_uring is unavailable (errno \(EPERM)"), "\(output)")
            if (IOUringProbe.disabledSetting() ?? 0) == 0 {
                #expect(output.contains("a seccomp filter denies io_uring_setup"), "\(output)")
            }
            #expect(output.components(separatedBy: "Spindle runs on epoll").count == 2, "logged once:\n\(output)")
            #expect(status == 0, "\(output)")
        }

        @Test(arguments: [["--workers", "2"], ["--event-loop"]])
        func theHTTPExampleStartsOnEpollUnderSeccompAndServes(arguments: [String]) async throws {
            let server = try ServerProcess("spindle-http", ["--deny-io-uring"] + arguments)
            let port = server.port
            let response = try await bounded(30, "http under seccomp") {
                try await exchange(port: port, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            }
            let (status, output) = server.stop()
            #expect(response.hasPrefix("HTTP/1.1 200 OK\r\n") && response.hasSuffix("Hello, World!"), "\(response)")
            #expect(output.contains("runs on epoll"), "\(output)")
            #expect(output.contains("io_uring is unavailable (errno \(EPERM)"), "\(output)")
            #expect(status == 0, "\(output)")
        }

        /// Asking for io_uring explicitly where it is refused still fails, with the reason.
        @Test func anExplicitIoUringRequestUnderSeccompFailsWithTheReason() async throws {
            let output = try runToExit("spindle-echo", ["--deny-io-uring", "--reactor", "io_uring", "--port", "0"])
            #expect(output.status == 1, "\(output.text)")
            #expect(output.text.contains("io_uring is unavailable (errno \(EPERM)"), "\(output.text)")
        }
    }
}

/// Runs `name` (beside the test bundle) to its exit, bounded at 30 s; its status and output.
private func runToExit(_ name: String, _ arguments: [String]) throws -> (status: Int32, text: String) {
    var buffer = [CChar](repeating: 0, count: 4096)
    let length = readlink("/proc/self/exe", &buffer, buffer.count - 1)
    let exe = String(decoding: buffer[0..<max(0, length)].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    let path = String(exe[..<exe.lastIndex(of: "/")!]) + "/" + name
    var pipeFDs: [Int32] = [0, 0]
    try #require(pipe(&pipeFDs) == 0)
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    posix_spawn_file_actions_adddup2(&actions, pipeFDs[1], 1)
    posix_spawn_file_actions_adddup2(&actions, pipeFDs[1], 2)
    posix_spawn_file_actions_addclose(&actions, pipeFDs[0])
    let (spawned, child) = spawnWithDefaultSignals(path, arguments, &actions)
    posix_spawn_file_actions_destroy(&actions)
    close(pipeFDs[1])
    try #require(spawned == 0, "posix_spawn failed: \(spawned)")
    let (status, exited) = reapChild(child, within: 30)
    var text = ""
    var chunk = [UInt8](repeating: 0, count: 4096)
    while true {
        let count = read(pipeFDs[0], &chunk, chunk.count)
        if count <= 0 { break }
        text += String(decoding: chunk[0..<count], as: UTF8.self)
    }
    close(pipeFDs[0])
    return (exited ? (status >> 8) & 0xFF : 127, text)
}
