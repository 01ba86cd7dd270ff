import Glibc
import Testing
@testable import Spindle

extension SpindleTests {
    @Suite struct TaskDumpExampleTests {
        /// `kill -USR1` makes the echo server print its tasks: a connection waiting in a read.
        @Test(arguments: [["--workers", "2"], ["--event-loop"]])
        func theEchoServerDumpsItsTasksOnSIGUSR1(_ arguments: [String]) async throws {
            let server = try ServerProcess("spindle-echo", arguments)
            let client = try await TCPStream.connect(host: "127.0.0.1", port: server.port)
            defer { client.close() }
            // One round trip: the connection's task exists and is back in its read.
            try await client.write([1, 2, 3])
            #expect(try await bounded(20, "echo") { try await client.readExactly(3) } == [1, 2, 3])
            kill(server.pid, SIGUSR1)
            let dump = try await server.waitForOutput(containing: "recv on descriptor")
            #expect(dump.contains("spawned tasks"), "\(dump)")
            #expect(dump.contains("'connection 127.0.0.1:"), "\(dump)")
            #expect(dump.contains("'task-dump'"), "\(dump)")
            let (status, output) = server.stop()
            #expect(status == 0, "\(output)")
        }
    }
}
