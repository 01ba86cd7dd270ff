import Glibc
import HTTPTypes
import Logging
import Spindle
import Synchronization
import Testing
@testable import SpindleHTTP

/// Where a server test runs: a 2-worker `Runtime` or a `SpindleEventLoop`.
enum TestHost: String, CaseIterable, Sendable, CustomStringConvertible {
    case runtime, eventLoop
    var description: String { rawValue }

    func run<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) async throws -> T {
        switch self {
        case .runtime: try await Runtime.run(workers: 2, gracePeriod: .seconds(5), body)
        case .eventLoop: try await SpindleEventLoop.run(gracePeriod: .seconds(5), body)
        }
    }
}

struct TimedOut: Error, CustomStringConvertible {
    let what: String
    var description: String { "timed out: \(what)" }
}

/// Polls `condition` (every millisecond) until it holds, failing after `seconds`.
func eventually(_ what: String, seconds: Double = 10, _ condition: () -> Bool) async throws {
    let deadline = ContinuousClock.now + .seconds(seconds)
    while !condition() {
        if ContinuousClock.now > deadline { throw TimedOut(what: what) }
        try await Spindle.sleep(for: .milliseconds(1))
    }
}

/// Log messages, recorded for the tests to look at.
final class LogRecorder: Sendable {
    let messages = Mutex<[String]>([])

    var logger: Logger {
        let recorder = self
        var logger = Logger(label: "test.http") { _ in Handler(recorder: recorder) }
        logger.logLevel = .debug
        return logger
    }

    func contains(_ text: String) -> Bool { messages.withLock { $0.contains { $0.contains(text) } } }

    struct Handler: LogHandler {
        let recorder: LogRecorder
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .debug
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }
        func log(event: LogEvent) {
            let text = "\(event.level) \(event.message) \(event.metadata ?? [:])"
            recorder.messages.withLock { $0.append(text) }
        }
    }
}

/// Serves `handler` on 127.0.0.1 on `host`, runs `client` with the port, then shuts the
/// server down (unless `client` did) and waits for `serve` to return.
func withServer<T: Sendable>(
    _ host: TestHost, configuration: HTTPServer.Configuration = HTTPServer.Configuration(),
    logs: LogRecorder = LogRecorder(), handler: @escaping HTTPServer.Handler = echoHandler,
    _ client: @escaping @Sendable (Int, HTTPServer) async throws -> T
) async throws -> T {
    try await host.run {
        let server = HTTPServer(configuration: configuration, logger: logs.logger, handler: handler)
        let listener = try TCPListener.bind(host: "127.0.0.1", port: 0)
        let port = try listener.localAddress.port
        async let serving: Void = server.serve(listener)
        let result: Result<T, any Error>
        do { result = .success(try await client(port, server)) } catch { result = .failure(error) }
        server.shutdown(gracePeriod: .seconds(2))
        await serving
        return try result.get()
    }
}

/// Answers with the request's path, method and body: `METHOD PATH\nBODY`.
let echoHandler: HTTPServer.Handler = { request, body, response in
    let bytes = try await body.collect(upTo: 1 << 24)
    try await response.respond(
        HTTPResponse(status: .ok), body: Array("\(request.method) \(request.path ?? "")\n".utf8) + bytes)
}

/// A test client connection that reads responses.
final class Client: @unchecked Sendable {
    // @unchecked Sendable: used by one test task at a time.
    let stream: TCPStream
    var buffer: [UInt8] = []

    init(port: Int) async throws {
        stream = try await TCPStream.connect(host: "127.0.0.1", port: port, timeout: .seconds(5))
    }

    deinit { stream.close() }

    func send(_ text: String) async throws { try await stream.write(text) }

    /// More bytes into the buffer; false at end of stream.
    private func fill() async throws -> Bool {
        let stream = stream
        guard let bytes = try await withTimeout(.seconds(20), operation: { try await stream.read() }) else { return false }
        buffer += bytes
        return true
    }

    struct Response {
        var status: Int
        var fields: [(String, String)]
        var body: String
        var trailers: [(String, String)] = []
        func field(_ name: String) -> String? { fields.first { $0.0 == name.lowercased() }?.1 }
    }

    private func line() async throws -> String {
        while true {
            if let end = buffer.firstIndex(of: 10), end > 0, buffer[end - 1] == 13 {
                let text = String(decoding: buffer[..<(end - 1)], as: UTF8.self)
                buffer.removeFirst(end + 1)
                return text
            }
            guard try await fill() else { throw EndOfStream() }
        }
    }

    private func fields() async throws -> [(String, String)] {
        var fields: [(String, String)] = []
        while true {
            let text = try await line()
            if text.isEmpty { return fields }
            let colon = text.firstIndex(of: ":")!
            fields.append((text[..<colon].lowercased(), text[text.index(after: colon)...].trimmingCharacters()))
        }
    }

    private func bytes(_ count: Int) async throws -> [UInt8] {
        while buffer.count < count {
            guard try await fill() else { throw EndOfStream() }
        }
        let result = Array(buffer[..<count])
        buffer.removeFirst(count)
        return result
    }

    /// Reads one response (informational ones included, as their own response).
    func response(toHead: Bool = false) async throws -> Response {
        let statusLine = try await line()
        let status = Int(statusLine.split(separator: " ")[1])!
        var response = Response(status: status, fields: try await fields(), body: "")
        if toHead || status < 200 || status == 204 || status == 304 { return response }
        if let length = response.field("content-length") {
            response.body = String(decoding: try await bytes(Int(length)!), as: UTF8.self)
        } else if response.field("transfer-encoding") == "chunked" {
            var body: [UInt8] = []
            while true {
                let size = Int(try await line(), radix: 16)!
                if size == 0 { break }
                body += try await bytes(size)
                _ = try await bytes(2)
            }
            response.trailers = try await fields()
            response.body = String(decoding: body, as: UTF8.self)
        } else {
            while try await fill() {}
            response.body = String(decoding: buffer, as: UTF8.self)
            buffer.removeAll()
        }
        return response
    }

    /// Whether the server closed the connection (after whatever is buffered), within 20 s.
    func isClosed() async throws -> Bool {
        while true {
            do {
                guard try await fill() else { return true }
            } catch let error as SpindleIOError where error.isConnectionReset {
                return true
            }
        }
    }
}

extension String {
    func trimmingCharacters() -> String {
        String(self.drop { $0 == " " || $0 == "\t" }.reversed().drop { $0 == " " || $0 == "\t" }.reversed())
    }
}
extension Substring {
    func trimmingCharacters() -> String { String(self).trimmingCharacters() }
}

func fdCount() -> Int {
    guard let dir = opendir("/proc/self/fd") else { return -1 }
    defer { closedir(dir) }
    var count = 0
    while readdir(dir) != nil { count += 1 }
    return count - 2
}

struct EndOfStream: Error {}
