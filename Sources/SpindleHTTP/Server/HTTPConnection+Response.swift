// Serialising responses into the connection's output buffer: the status line, the handler's
// fields, and the fields the server owns — the framing (Content-Length as given, or chunked
// for a body of unknown length, or for an HTTP/1.0 client the end of the connection), `Date`
// and `Connection`. A response to HEAD, a 1xx, a 204 or a 304 has no body whatever the handler
// writes.

import HTTPTypes

/// The per-request state of the response side.
struct ResponseState {
    enum Phase: Equatable { case notStarted, streaming, finished }
    enum Framing: Equatable {
        /// No body is sent (HEAD, 1xx, 204, 304).
        case none
        case length(remaining: Int)
        case chunked
        /// HTTP/1.0 with no length: the body ends with the connection.
        case untilClose
    }

    var phase = Phase.notStarted
    var framing = Framing.none
    /// Whether the connection closes after this response.
    var closesConnection = false
}

extension HTTPConnection {
    private static let crlf: [UInt8] = [13, 10]
    private static let colonSpace: [UInt8] = [58, 32]

    /// Serialises `head` and sets up the body framing.
    func appendHead(_ head: HTTPResponse) {
        let status = head.status.code
        let hasNoBody = request.isHead || (100..<200).contains(status) || status == 204 || status == 304
        var declaredLength: Int? = nil
        var handlerSaysClose = false
        for field in head.headerFields {
            if field.name == .contentLength { declaredLength = Int(field.value) }
            if field.name == .connection && field.value.lowercased().contains("close") { handlerSaysClose = true }
        }
        if hasNoBody {
            response.framing = .none
        } else if let declaredLength {
            response.framing = .length(remaining: declaredLength)
        } else if !request.http10 {
            response.framing = .chunked
        } else {
            response.framing = .untilClose
        }
        let closes = handlerSaysClose || !request.keepAlive || server.isShuttingDown || response.framing == .untilClose
            || !requestBodyCanBeKept
        response.closesConnection = closes
        response.phase = .streaming

        appendStatusLine(status, head.status.reasonPhrase)
        for field in head.headerFields where field.name != .transferEncoding && !(field.name == .connection && closes) {
            if field.name == .contentLength && Int(field.value) == nil { continue }  // not a length: dropped
            output.append(contentsOf: field.name.rawName.utf8)
            output.append(contentsOf: Self.colonSpace)
            field.withUnsafeBytesOfValue { output.append(contentsOf: $0) }
            output.append(contentsOf: Self.crlf)
        }
        if response.framing == .chunked { output.append(contentsOf: Self.chunkedField) }
        if head.headerFields[.date] == nil { appendDate() }
        if closes {
            output.append(contentsOf: Self.connectionClose)
        } else if request.http10 {
            output.append(contentsOf: Self.connectionKeepAlive)
        }
        output.append(contentsOf: Self.crlf)
    }

    /// Whether what is left of the request body can be read after the response, so that the
    /// connection survives it. A client waiting for 100 Continue will not send its body.
    private var requestBodyCanBeKept: Bool {
        switch request.body {
        case .none, .finished: true
        case .failed: false
        case .length(let remaining): !(request.expectsContinue && !request.continueSent) && remaining <= configuration.maxDiscardedBodyBytes
        case .chunked: !(request.expectsContinue && !request.continueSent)
        }
    }

    private func appendStatusLine(_ status: Int, _ reason: String) {
        output.append(contentsOf: Self.statusPrefix)
        output.append(UInt8(0x30 + status / 100 % 10))
        output.append(UInt8(0x30 + status / 10 % 10))
        output.append(UInt8(0x30 + status % 10))
        output.append(0x20)
        output.append(contentsOf: reason.utf8)
        output.append(contentsOf: Self.crlf)
    }

    private func appendDate() {
        output.append(contentsOf: Self.dateName)
        output.append(contentsOf: dates.current())
        output.append(contentsOf: Self.crlf)
    }

    /// Appends body bytes in the response's framing.
    func appendBody(_ bytes: UnsafeRawBufferPointer) throws(HTTPServerError) {
        switch response.framing {
        case .none:
            return
        case .length(let remaining):
            guard bytes.count <= remaining else { throw HTTPServerError(.bodyLengthMismatch) }
            response.framing = .length(remaining: remaining - bytes.count)
            output.append(contentsOf: bytes)
        case .chunked:
            guard !bytes.isEmpty else { return }
            appendHex(bytes.count)
            output.append(contentsOf: Self.crlf)
            output.append(contentsOf: bytes)
            output.append(contentsOf: Self.crlf)
        case .untilClose:
            output.append(contentsOf: bytes)
        }
    }

    private func appendHex(_ value: Int) {
        var shift = (Int.bitWidth - value.leadingZeroBitCount + 3) / 4 * 4 - 4
        if shift < 0 { shift = 0 }
        while shift >= 0 {
            let digit = UInt8((value >> shift) & 0xF)
            output.append(digit < 10 ? 0x30 + digit : 0x61 + digit - 10)
            shift -= 4
        }
    }

    /// The last chunk and the trailer section.
    func appendLastChunk(trailers: HTTPFields?) {
        output.append(contentsOf: Self.lastChunk)
        if let trailers {
            for field in trailers {
                output.append(contentsOf: field.name.rawName.utf8)
                output.append(contentsOf: Self.colonSpace)
                field.withUnsafeBytesOfValue { output.append(contentsOf: $0) }
                output.append(contentsOf: Self.crlf)
            }
        }
        output.append(contentsOf: Self.crlf)
    }

    /// Ends the response.
    func finishResponse(trailers: HTTPFields?) throws(HTTPServerError) {
        switch response.framing {
        case .length(let remaining) where remaining > 0:
            response.closesConnection = true
            throw HTTPServerError(.bodyLengthMismatch)
        case .chunked:
            appendLastChunk(trailers: trailers)
        default:
            break
        }
        response.phase = .finished
    }

    /// A complete response with a short body for a status the server itself sends (400, 500...),
    /// closing the connection.
    func appendErrorResponse(status: Int) {
        let reason = Self.reasonPhrase(status)
        let body = Array(reason.utf8)
        appendStatusLine(status, reason)
        output.append(contentsOf: Self.errorFields)
        var length = body.count
        var digits: [UInt8] = []
        repeat {
            digits.append(UInt8(0x30 + length % 10))
            length /= 10
        } while length > 0
        output.append(contentsOf: digits.reversed())
        output.append(contentsOf: Self.crlf)
        appendDate()
        output.append(contentsOf: Self.connectionClose)
        output.append(contentsOf: Self.crlf)
        if !request.isHead { output.append(contentsOf: body) }
        response.phase = .finished
        response.closesConnection = true
    }

    static func reasonPhrase(_ status: Int) -> String {
        switch status {
        case 400: "Bad Request"
        case 413: "Content Too Large"
        case 414: "URI Too Long"
        case 417: "Expectation Failed"
        case 431: "Request Header Fields Too Large"
        case 501: "Not Implemented"
        case 505: "HTTP Version Not Supported"
        default: "Internal Server Error"
        }
    }

    private static let statusPrefix = Array("HTTP/1.1 ".utf8)
    private static let chunkedField = Array("Transfer-Encoding: chunked\r\n".utf8)
    private static let dateName = Array("Date: ".utf8)
    private static let connectionClose = Array("Connection: close\r\n".utf8)
    private static let connectionKeepAlive = Array("Connection: keep-alive\r\n".utf8)
    private static let lastChunk = Array("0\r\n".utf8)
    private static let errorFields = Array("Content-Type: text/plain; charset=utf-8\r\nContent-Length: ".utf8)
}
