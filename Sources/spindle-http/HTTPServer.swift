// A minimal HTTP/1.1 server: keep-alive, pipelining, `GET /` answered with `Hello, World!`.
// Anything it cannot parse, or a request head over 8 KiB, gets `400 Bad Request` and the
// connection is closed; other paths get 404 and other methods 405, with keep-alive.

import Spindle

enum HTTPServer {
    static let maxHeadBytes = 8 * 1024

    static let hello = response(status: "200 OK", body: "Hello, World!")
    static let notFound = response(status: "404 Not Found", body: "Not Found")
    static let notAllowed = response(status: "405 Method Not Allowed", body: "Method Not Allowed")
    static let badRequest = response(status: "400 Bad Request", body: "Bad Request", close: true)

    static func response(status: String, body: String, close: Bool = false) -> [UInt8] {
        var head = "HTTP/1.1 \(status)\r\nContent-Type: text/plain\r\nContent-Length: \(body.utf8.count)\r\n"
        if close { head += "Connection: close\r\n" }
        return Array((head + "\r\n" + body).utf8)
    }

    /// A parsed request head.
    struct Request {
        var method: Substring
        var target: Substring
        var keepAlive: Bool
        var bodyLength: Int
    }

    /// Parses one request head (without its blank line); nil if it is malformed.
    static func parse(_ head: ArraySlice<UInt8>) -> Request? {
        guard let text = String(validating: head, as: UTF8.self) else { return nil }
        var lines = text.split(separator: "\r\n", omittingEmptySubsequences: false)
        guard !lines.isEmpty else { return nil }
        let requestLine = lines.removeFirst().split(separator: " ", omittingEmptySubsequences: false)
        guard requestLine.count == 3, !requestLine[0].isEmpty, requestLine[1].first == "/",
            requestLine[2] == "HTTP/1.1" || requestLine[2] == "HTTP/1.0"
        else { return nil }
        var keepAlive = requestLine[2] == "HTTP/1.1"
        var bodyLength = 0
        for line in lines {
            guard let colon = line.firstIndex(of: ":"), colon != line.startIndex else { return nil }
            let name = line[..<colon].lowercased()
            let value = line[line.index(after: colon)...].trimmingPrefix(" ")
            switch name {
            case "connection":
                let token = value.lowercased()
                if token == "close" { keepAlive = false }
                if token == "keep-alive" { keepAlive = true }
            case "content-length":
                guard let length = Int(value), length >= 0, length <= 1 << 20 else { return nil }
                bodyLength = length
            case "transfer-encoding":
                return nil  // chunked request bodies are not supported by this example
            default:
                break
            }
        }
        return Request(method: requestLine[0], target: requestLine[1], keepAlive: keepAlive, bodyLength: bodyLength)
    }

    /// Serves one connection until the client closes it, an error, or a bad request.
    static func serve(_ connection: TCPStream) async {
        try? connection.setNoDelay()
        var buffer: [UInt8] = []
        var start = 0
        while true {
            // Answer every complete request in the buffer (pipelining), in one write.
            var output: [UInt8] = []
            var close = false
            while let end = headEnd(buffer, from: start) {
                guard end - start <= maxHeadBytes, let request = parse(buffer[start..<end]) else {
                    output += badRequest
                    close = true
                    break
                }
                let next = end + 4 + request.bodyLength
                if next > buffer.count { break }  // wait for the body
                start = next
                if request.method != "GET" {
                    output += notAllowed
                } else if request.target != "/" {
                    output += notFound
                } else {
                    output += hello
                }
                if !request.keepAlive {
                    close = true
                    break
                }
            }
            if !close && buffer.count - start > maxHeadBytes && headEnd(buffer, from: start) == nil {
                output += badRequest
                close = true
            }
            if !output.isEmpty {
                do { try await connection.write(output) } catch { return }
            }
            if close { return }
            if start == buffer.count {
                buffer.removeAll(keepingCapacity: true)
                start = 0
            }
            guard let bytes = try? await connection.read() else { return }
            buffer += bytes
        }
    }

    /// The index of the `\r\n\r\n` that ends the head starting at `start`, if it has arrived.
    static func headEnd(_ buffer: [UInt8], from start: Int) -> Int? {
        var i = start
        while i + 3 < buffer.count {
            if buffer[i] == 13 && buffer[i + 1] == 10 && buffer[i + 2] == 13 && buffer[i + 3] == 10 { return i }
            i += 1
        }
        return nil
    }
}
