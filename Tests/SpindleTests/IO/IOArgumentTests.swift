import Glibc
import Testing
@testable import Spindle

extension SpindleTests {
    /// Arguments no call could satisfy are typed errors, not traps; lengths that may come from
    /// a peer allocate only as bytes arrive.
    @Suite struct IOArgumentTests {
        /// A file with `bytes`, removed after `body`.
        private func withFile<T: Sendable>(
            _ bytes: [UInt8], _ body: @escaping @Sendable (File) async throws -> T
        ) async throws -> T {
            let path = "/tmp/spindle-test-\(getpid())-arguments.bin"
            defer { unlink(path) }
            return try await Host.oneWorker.run(20) {
                try await File.write(path, bytes)
                let file = try await File.open(path, options: [.read, .write])
                defer { file.close() }
                return try await body(file)
            }
        }

        /// What a call threw: the SpindleIOError's kind, another error's type, or "returned …".
        private static func kind(_ body: () async throws -> [UInt8]) async -> String {
            do {
                return "returned \(try await body().count) bytes"
            } catch let error as SpindleIOError {
                return "\(error.operation): \(error.kind)"
            } catch {
                return "\(type(of: error))"
            }
        }

        /// A negative count, or a range that does not fit in a file offset, is refused before
        /// anything is submitted. (A negative count trapped; offset 2^64-1 is the kernel's
        /// "current position" and read from there; a range ending past Int64.max overflowed.)
        @Test func outOfRangeFileArgumentsAreTypedErrors() async throws {
            let results = try await withFile([1, 2, 3, 4]) { file -> [String] in
                [
                    await Self.kind { try await file.read(at: 0, count: -1) },
                    await Self.kind { try await file.read(at: UInt64.max, count: 4) },
                    await Self.kind { try await file.read(at: UInt64(Int64.max) - 1, count: 10) },
                    await Self.kind { try await file.write([1, 2, 3], at: UInt64.max - 1); return [] },
                    await Self.kind { try await file.write([1, 2, 3], at: UInt64(Int64.max)); return [] },
                    // Still fine: the last offset a byte can have, and reading nothing.
                    await Self.kind { try await file.read(at: UInt64(Int64.max) - 1, count: 1) },
                    await Self.kind { try await file.read(at: 2, count: 0) },
                ]
            }
            #expect(results == [
                "read: invalidArgument", "read: invalidArgument", "read: invalidArgument",
                "write: invalidArgument", "write: invalidArgument",
                "returned 0 bytes", "returned 0 bytes",
            ])
        }

        /// A read asked for far more than the file holds allocates what it reads, not the
        /// count. (It allocated the count at once: `Int.max` trapped.)
        @Test func aHugeFileReadCountReturnsWhatTheFileHolds() async throws {
            let contents = pattern(3 << 20, seed: 1)  // larger than the first buffer
            let back = try await withFile(contents) { file in
                try await file.read(at: 0, count: Int.max)
            }
            #expect(back == contents)
            let tail = try await withFile(contents) { file in
                try await file.read(at: 1 << 20, count: 1 << 50)
            }
            #expect(tail[...] == contents[(1 << 20)...])
        }

        /// `readExactly` with a length far beyond what arrives (as a length field read from a
        /// peer may be) reserves nothing up front and fails with `unexpectedEndOfStream` when
        /// the stream ends; a negative length is an invalid argument. (It reserved the whole
        /// length before the first byte: 1 TiB trapped.)
        @Test(arguments: [Host.oneWorker, Host.eventLoop])
        func readExactlyGrowsAsBytesArrive(host: Host) async throws {
            let results = try await host.run(20) { () -> [String] in
                let (client, server) = try await connectedPair()
                defer {
                    client.close()
                    server.close()
                }
                let negative = await Self.kind { try await server.readExactly(-1) }
                try await client.write(pattern(100_000, seed: 2))
                try client.shutdown(.write)
                let huge = await Self.kind { try await server.readExactly(1 << 40) }
                return [negative, huge]
            }
            #expect(results == ["read: invalidArgument", "read: unexpectedEndOfStream"])
        }

        /// A datagram receive asked for more than any datagram can hold allocates 64 KiB.
        /// (`Int.max` trapped.)
        @Test func aHugeDatagramReceiveSizeIsCapped() async throws {
            let received = try await Host.eventLoop.run(20) { () -> [UInt8] in
                let a = try UDPSocket.bind(host: "127.0.0.1", port: 0)
                let b = try UDPSocket.bind(host: "127.0.0.1", port: 0)
                defer {
                    a.close()
                    b.close()
                }
                async let receiving = b.receive(maxBytes: Int.max)
                try await a.send([1, 2, 3], to: try b.localAddress)
                return try await receiving.bytes
            }
            #expect(received == [1, 2, 3])
        }
    }
}
