// Reading the request body from the connection's receive buffer: Content-Length bodies are
// counted down, chunked ones decoded by `ChunkedDecoder`. `Expect: 100-continue` is answered
// when the handler first asks for body bytes that have not arrived.

import HTTPTypes
import Spindle

/// The per-request state of the request side.
struct RequestState {
    enum Body: Equatable {
        case none
        case length(remaining: Int)
        case chunked
        case finished
        case failed(HTTPParseError)
    }

    var body = Body.none
    var expectedLength: Int? = nil
    var keepAlive = true
    var isHead = false
    var http10 = false
    var expectsContinue = false
    var continueSent = false
    var trailers: HTTPFields? = nil
}

extension HTTPConnection {
    /// Sets up the state of the request whose head was just parsed.
    func begin(_ head: RequestHead, method: HTTPRequest.Method) {
        request = RequestState()
        request.keepAlive = head.keepAlive
        request.isHead = method == .head
        request.http10 = head.minorVersion == 0
        request.expectsContinue = head.expectsContinue
        switch head.framing {
        case .none:
            request.body = .finished
            request.expectedLength = 0
        case .length(let count):
            request.body = .length(remaining: count)
            request.expectedLength = count
        case .chunked:
            request.body = .chunked
            chunkDecoder = ChunkedDecoder(
                maxBodyBytes: configuration.maxBodyBytes, maxTrailerBytes: configuration.maxHeadBytes,
                maxTrailerFields: configuration.maxHeaderCount)
        }
        response = ResponseState()
    }

    /// Hands the next body bytes (at most `maxBytes`) to `deliver`; false at the end of the body.
    nonisolated(nonsending) func readBody(maxBytes: Int, _ deliver: (UnsafeRawBufferPointer) -> Void) async throws -> Bool {
        while true {
            switch request.body {
            case .none, .finished:
                return false
            case .failed(let error):
                throw HTTPServerError(.invalidBody(status: error.status, reason: error.kind.rawValue))
            case .length(let remaining):
                let available = receive.count - readIndex
                if available > 0 {
                    let count = min(remaining, available, maxBytes)
                    receive.withUnsafeBytes { deliver(UnsafeRawBufferPointer(rebasing: $0[readIndex..<(readIndex + count)])) }
                    readIndex += count
                    request.body = remaining == count ? .finished : .length(remaining: remaining - count)
                    return true
                }
                try await readBodyBytes()
            case .chunked:
                let event = receive.withUnsafeBytes { raw in
                    chunkDecoder.decode(UnsafeRawBufferPointer(rebasing: raw[readIndex...]), maxData: maxBytes)
                }
                switch event {
                case .data(let range):
                    receive.withUnsafeBytes {
                        deliver(UnsafeRawBufferPointer(rebasing: $0[(readIndex + range.lowerBound)..<(readIndex + range.upperBound)]))
                    }
                    readIndex += range.upperBound
                    return true
                case .needMore(let consumed):
                    readIndex += consumed
                    try await readBodyBytes()
                case .end(let consumed):
                    if !chunkDecoder.trailers.isEmpty {
                        var trailers = HTTPFields()
                        receive.withUnsafeBytes { raw in
                            let bytes = UnsafeRawBufferPointer(rebasing: raw[readIndex...])
                            for field in chunkDecoder.trailers {
                                let name = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[field.name]), as: UTF8.self)
                                if let name = HTTPField.Name(name) {
                                    trailers.append(HTTPField(name: name, value: UnsafeRawBufferPointer(rebasing: bytes[field.value])))
                                }
                            }
                        }
                        request.trailers = trailers
                    }
                    readIndex += consumed
                    request.body = .finished
                    return false
                case .failed(let error):
                    request.body = .failed(error)
                }
            }
        }
    }

    /// Reads more of the body from the socket (after answering 100-continue if asked for).
    private nonisolated(nonsending) func readBodyBytes() async throws {
        if request.expectsContinue && !request.continueSent && response.phase == .notStarted {
            request.continueSent = true
            output.append(contentsOf: Self.continueResponse)
        }
        try await flush()
        watch.enter(.body, timeout: configuration.bodyIdleTimeout)
        let more = try await readMore()
        watch.enter(.handling, timeout: nil)
        if !more {
            request.body = .failed(HTTPParseError(.truncatedBody))
            throw HTTPServerError(.truncatedBody)
        }
    }

    private static let continueResponse = Array("HTTP/1.1 100 Continue\r\n\r\n".utf8)

    /// Reads and drops what the handler left of the body, up to `maxDiscardedBodyBytes`; true
    /// if the connection can go on (the body ended in time).
    nonisolated(nonsending) func discardRestOfBody() async throws -> Bool {
        switch request.body {
        case .none, .finished:
            return true
        case .failed:
            try await flush()
            return false
        case .length, .chunked:
            // A client waiting for 100 Continue that it never got will not send the body.
            if request.expectsContinue && !request.continueSent {
                try await flush()
                return false
            }
            var discarded = 0
            do {
                while try await readBody(maxBytes: Self.readSize, { discarded += $0.count }) {
                    if discarded > configuration.maxDiscardedBodyBytes {
                        try await flush()
                        return false
                    }
                }
            } catch let error as HTTPServerError {
                logger.info("HTTP request body could not be discarded", metadata: ["error": "\(error)"])
                try? await flush()
                return false
            }
            return true
        }
    }
}
