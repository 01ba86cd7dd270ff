// W8 http_plaintext: an HTTP/1.1 keep-alive server on 127.0.0.1 answering `GET /` with 200 and
// the body `Hello, World!`, loaded by `wrk -t1 -c64 -d10s --latency` (2 s in quick mode) from a
// process of its own (LoadGenerator.swift). Metrics: wrk's req_per_s and p99_ms.
//
// Two servers:
// - spindle / eventloop: a minimal HTTP/1.1 responder on Spindle's TCPStream (SpindleServer.swift
//   for the accept loop). It reads what has arrived, answers every complete request head in it
//   (so pipelined requests work) with one write, and keeps the connection open. It parses only
//   what the workload needs: the request line's method and path; it ignores request bodies.
//   Its response carries the headers Hummingbird's does for the same route (Content-Type,
//   Content-Length, Date; the Date cached per connection and second), so both send the same bytes
//   per request, give or take the date.
// - hummingbird: Hummingbird 2's `Application` with one route, `router.get("/")`, its I/O on
//   `MultiThreadedEventLoopGroup.singleton` (`threads` loops: the driver sets
//   NIO_SINGLETON_GROUP_LOOP_COUNT), its route handlers (async code) on Swift's global
//   executor, as a stock Hummingbird server runs. It stops the way a deployed one does, by a
//   graceful shutdown on a signal (SIGUSR1, which this process sends itself once wrk is done). Making SwiftNIO's loops the global
//   executor too, so that everything runs on `threads` threads as in Spindle's server, was
//   measured and rejected: it cut Hummingbird's req_per_s from ~40k to ~26k at 1 loop, and from
//   ~43k to ~38k at 2 (quick runs); the comparison is with Hummingbird at its best.

import Glibc
import Hummingbird
import NIOCore
import Spindle

enum HTTPPlaintext {
    static let body = "Hello, World!"

    static func run(_ context: WorkloadContext) async throws -> [Metric] {
        let seconds = context.sizes.loadSeconds
        switch context.runtime {
        case .spindle, .eventloop:
            return try await SpindleServer.serve(handle: serve) { port in
                try await LoadGenerator.wrk(port: port, seconds: seconds)
            }
        case .hummingbird:
            return try await runHummingbird(seconds: seconds)
        default:
            throw WorkloadFailure(description: "W8 has no server on \(context.runtime.rawValue)")
        }
    }

    // MARK: Spindle

    /// The longest request head accepted before the connection is dropped.
    static let maximumHeadBytes = 16 * 1024

    /// Serves one keep-alive connection until the peer closes it.
    static func serve(_ stream: TCPStream) async throws {
        try stream.setNoDelay()
        var responses = Responses()
        var pending: [UInt8] = []
        var output: [UInt8] = []
        while let chunk = try await stream.read(maxBytes: 16 * 1024) {
            if pending.isEmpty { pending = chunk } else { pending.append(contentsOf: chunk) }
            output.removeAll(keepingCapacity: true)
            var start = 0
            while let end = headEnd(pending, from: start) {
                output.append(contentsOf: isGetRoot(pending, at: start) ? responses.ok() : Responses.notFound)
                start = end
            }
            if start == pending.count {
                pending.removeAll(keepingCapacity: true)
            } else {
                pending.removeFirst(start)
                try check(pending.count <= maximumHeadBytes, "W8: a request head over \(maximumHeadBytes) bytes")
            }
            if !output.isEmpty { try await stream.write(output) }
        }
    }

    /// The index just past the first "\r\n\r\n" at or after `start`, if there is one.
    static func headEnd(_ bytes: [UInt8], from start: Int) -> Int? {
        bytes.withUnsafeBufferPointer { buffer in
            var index = start + 3
            while index < buffer.count {
                if buffer[index] == 10 && buffer[index - 1] == 13 && buffer[index - 2] == 10 && buffer[index - 3] == 13 {
                    return index + 1
                }
                index += 1
            }
            return nil
        }
    }

    private static let getRoot = Array("GET / ".utf8)

    static func isGetRoot(_ bytes: [UInt8], at start: Int) -> Bool {
        bytes.count - start >= getRoot.count && bytes[start..<(start + getRoot.count)].elementsEqual(getRoot)
    }

    /// The response bytes, with a Date header rebuilt when the second changes.
    struct Responses {
        private var second = -1
        private var cached: [UInt8] = []

        static let notFound = Array("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".utf8)

        mutating func ok() -> [UInt8] {
            let now = time(nil)
            if now != second {
                second = now
                cached = Array(("HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\n"
                    + "Content-Length: \(HTTPPlaintext.body.utf8.count)\r\nDate: \(Self.httpDate(now))\r\n\r\n"
                    + HTTPPlaintext.body).utf8)
            }
            return cached
        }

        /// RFC 9110's IMF-fixdate, e.g. "Mon, 01 Dec 2025 06:33:56 GMT".
        static func httpDate(_ seconds: time_t) -> String {
            var seconds = seconds
            var parts = tm()
            gmtime_r(&seconds, &parts)
            var text = [CChar](repeating: 0, count: 64)
            let count = strftime(&text, text.count, "%a, %d %b %Y %H:%M:%S GMT", &parts)
            return String(decoding: text.prefix(count).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
    }

    // MARK: Hummingbird

    static func runHummingbird(seconds: Int) async throws -> [Metric] {
        let router = Router()
        router.get("/") { _, _ in HTTPPlaintext.body }
        let (ports, portContinuation) = AsyncStream.makeStream(of: Int.self)
        let app = Application(
            router: router,
            configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { channel in
                portContinuation.yield(channel.localAddress?.port ?? 0)
                portContinuation.finish()
            },
            eventLoopGroupProvider: .singleton)
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                // The service group handles the signal before `onServerRunning` is called.
                try await app.runService(gracefulShutdownSignals: [.sigusr1])
            }
            var iterator = ports.makeAsyncIterator()
            guard let port = await iterator.next(), port > 0 else {
                throw WorkloadFailure(description: "W8: Hummingbird reported no port")
            }
            let metrics: [Metric]
            do {
                metrics = try await LoadGenerator.wrk(port: port, seconds: seconds)
            } catch {
                kill(getpid(), SIGUSR1)
                throw error
            }
            kill(getpid(), SIGUSR1)
            try await group.waitForAll()
            return metrics
        }
    }
}
