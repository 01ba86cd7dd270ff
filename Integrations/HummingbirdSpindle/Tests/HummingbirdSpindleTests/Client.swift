import Spindle

/// A test client connection on Spindle's `TCPStream`: sends raw request bytes, reads
/// responses (Content-Length, chunked with trailers, or delimited by close).
final class Client: @unchecked Sendable {
    // @unchecked Sendable: used by one test task at a time.
    let stream: TCPStream
    var buffer: [UInt8] = []

    init(port: Int) async throws {
        stream = try await TCPStream.connect(host: "127.0.0.1", port: port, timeout: .seconds(5))
    }

    deinit { stream.close() }

    func send(_ text: String) async throws { try await stream.write(text) }
    func send(_ bytes: [UInt8]) async throws { try await stream.write(bytes) }

    /// More bytes into the buffer; false at end of stream. A read waits at most 20 s.
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
        var chunks = 0
        var trailers: [(String, String)] = []
        func field(_ name: String) -> String? { fields.first { $0.0 == name.lowercased() }?.1 }
        func trailer(_ name: String) -> String? { trailers.first { $0.0 == name.lowercased() }?.1 }
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
            guard let colon = text.firstIndex(of: ":") else { throw MalformedResponse(text: text) }
            let value = text[text.index(after: colon)...].drop { $0 == " " }
            fields.append((text[..<colon].lowercased(), String(value)))
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

    /// Reads one response.
    func response() async throws -> Response {
        let statusLine = try await line()
        let parts = statusLine.split(separator: " ")
        guard parts.count >= 2, let status = Int(parts[1]) else { throw MalformedResponse(text: statusLine) }
        var response = Response(status: status, fields: try await fields(), body: "")
        if status < 200 || status == 204 || status == 304 { return response }
        if let length = response.field("content-length") {
            response.body = String(decoding: try await bytes(Int(length)!), as: UTF8.self)
        } else if response.field("transfer-encoding") == "chunked" {
            var body: [UInt8] = []
            while true {
                let sizeLine = try await line()
                guard let size = Int(sizeLine, radix: 16) else { throw MalformedResponse(text: sizeLine) }
                if size == 0 { break }
                response.chunks += 1
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

    /// Sends a request with a Content-Length body (if any) and reads its response.
    func request(_ method: String, _ path: String, body: String? = nil, fields: [String] = []) async throws -> Response {
        var head = "\(method) \(path) HTTP/1.1\r\nHost: test\r\n"
        for field in fields { head += field + "\r\n" }
        if let body { head += "Content-Length: \(body.utf8.count)\r\n" }
        try await send(head + "\r\n" + (body ?? ""))
        return try await response()
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

struct EndOfStream: Error {}

struct MalformedResponse: Error, CustomStringConvertible {
    let text: String
    var description: String { "malformed response line: \(text)" }
}
