import Testing
@testable import SpindleHTTP

let testLimits = RequestHeadParser.Limits(maxHeadBytes: 1024, maxFieldCount: 8, maxTargetLength: 64, maxBodyBytes: 1000)

/// What parsing `text` gives, fed whole and also one byte at a time (which must agree).
struct Parsed: Equatable {
    var outcome: RequestHeadParser.Outcome
    var head: RequestHead
    var method = ""
    var target = ""
    var fields: [String] = []
}

func parse(_ text: String, limits: RequestHeadParser.Limits = testLimits) -> Parsed {
    parse(Array(text.utf8), limits: limits)
}

func parse(_ bytes: [UInt8], limits: RequestHeadParser.Limits = testLimits) -> Parsed {
    func run(_ step: Int) -> Parsed {
        var parser = RequestHeadParser(limits: limits)
        var end = min(step, bytes.count)
        while true {
            let outcome = bytes.withUnsafeBytes { parser.parse(UnsafeRawBufferPointer(rebasing: $0[0..<end])) }
            if outcome != .needMore || end == bytes.count {
                var parsed = Parsed(outcome: outcome, head: parser.head)
                if outcome == .complete {
                    let head = parser.head
                    parsed.method = String(decoding: bytes[head.method], as: UTF8.self)
                    parsed.target = String(decoding: bytes[head.target], as: UTF8.self)
                    parsed.fields = head.fields.map {
                        String(decoding: bytes[$0.name], as: UTF8.self) + "=" + String(decoding: bytes[$0.value], as: UTF8.self)
                    }
                }
                return parsed
            }
            end = min(end + step, bytes.count)
        }
    }
    let whole = run(bytes.count + 1)
    let byteByByte = run(1)
    #expect(whole.outcome == byteByByte.outcome, "split reads disagree for \(bytes.count) bytes")
    if whole.outcome == .complete { #expect(whole.head == byteByByte.head) }
    return whole
}

func failure(_ text: String, limits: RequestHeadParser.Limits = testLimits) -> HTTPParseError.Kind? {
    if case .failed(let error) = parse(text, limits: limits).outcome { return error.kind }
    return nil
}

@Suite struct RequestHeadParserTests {
    @Test func parsesASimpleRequest() {
        let parsed = parse("GET /a?b=c HTTP/1.1\r\nHost: example.com\r\nX-Thing:  spaced value \t\r\n\r\n")
        #expect(parsed.outcome == .complete)
        #expect(parsed.method == "GET")
        #expect(parsed.target == "/a?b=c")
        #expect(parsed.fields == ["Host=example.com", "X-Thing=spaced value"])
        #expect(parsed.head.minorVersion == 1)
        #expect(parsed.head.keepAlive)
        #expect(parsed.head.framing == .none)
        #expect(parsed.head.hostField == 0)
        #expect(parsed.head.targetForm == .origin)
    }

    @Test func waitsForTheEndOfTheHead() {
        #expect(parse("GET / HTTP/1.1\r\nHost: x\r\n").outcome == .needMore)
        #expect(parse("GET / HTTP/1.1\r\nHost: x\r\n\r").outcome == .needMore)
    }

    @Test func reportsTheHeadLengthAndIgnoresWhatFollows() {
        let text = "\r\nPOST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabcGET"
        let parsed = parse(text)
        #expect(parsed.outcome == .complete)
        #expect(parsed.head.length == text.utf8.count - 6)
        #expect(parsed.head.framing == .length(3))
    }

    @Test func refusesBareCRAndBareLF() {
        #expect(failure("GET / HTTP/1.1\rHost: x\r\n\r\n") == .bareCR)
        #expect(failure("GET / HTTP/1.1\r\nHost: x\rY\r\n\r\n") == .bareCR)
        #expect(failure("GET / HTTP/1.1\r\nHost: x\nX: y\r\n\r\n") == .bareLF)
        #expect(failure("GET / HTTP/1.1\nHost: x\r\n\r\n") == .bareLF)
        #expect(failure("GET / HTTP/1.1\r\nHost: x\r\n\n") == .bareLF)
    }

    @Test func refusesMalformedFieldLines() {
        #expect(failure("GET / HTTP/1.1\r\nHost : x\r\n\r\n") == .whitespaceBeforeColon)
        #expect(failure("GET / HTTP/1.1\r\nHost: x\r\nContent-Length\t: 5\r\n\r\n") == .whitespaceBeforeColon)
        #expect(failure("GET / HTTP/1.1\r\nHost: x\r\nX(y): z\r\n\r\n") == .invalidFieldName)
        #expect(failure("GET / HTTP/1.1\r\nHost: x\r\n: z\r\n\r\n") == .invalidFieldName)
        #expect(failure("GET / HTTP/1.1\r\nHost: x\r\nNoColon\r\n\r\n") == .missingColon)
        #expect(failure("GET / HTTP/1.1\r\nHost: x\r\nX Y: z\r\n\r\n") == .invalidFieldName)
        #expect(failure("GET / HTTP/1.1\r\nHost: x\r\nX: a\u{0}b\r\n\r\n") == .invalidFieldValue)
        #expect(failure("GET / HTTP/1.1\r\nHost: x\r\nX: a\u{1}b\r\n\r\n") == .invalidFieldValue)
        #expect(failure("GET / HTTP/1.1\r\nHost: x\r\nX: a\u{7F}\r\n\r\n") == .invalidFieldValue)
        #expect(failure("GET / HTTP/1.1\r\nHost: x\r\nX: a\r\n  folded\r\n\r\n") == .obsFold)
        #expect(failure("GET / HTTP/1.1\r\n Host: x\r\n\r\n") == .obsFold)
        // obs-text (bytes from 0x80) is allowed in values.
        var bytes = Array("GET / HTTP/1.1\r\nHost: x\r\nX: caf".utf8)
        bytes += [0xE9] + Array("\r\n\r\n".utf8)
        #expect(parse(bytes).outcome == .complete)
    }

    @Test func refusesMalformedRequestLines() {
        #expect(failure("GET  / HTTP/1.1\r\nHost: x\r\n\r\n") == .invalidRequestLine)
        #expect(failure("GET / HTTP/1.1 \r\nHost: x\r\n\r\n") == .invalidVersion)
        #expect(failure("GET /\r\nHost: x\r\n\r\n") == .invalidRequestLine)
        #expect(failure("G(T / HTTP/1.1\r\nHost: x\r\n\r\n") == .invalidMethod)
        #expect(failure("GET /a\tb HTTP/1.1\r\nHost: x\r\n\r\n") == .invalidTarget)
        #expect(failure("GET a/b HTTP/1.1\r\nHost: x\r\n\r\n") == .invalidTarget)
        #expect(failure("GET * HTTP/1.1\r\nHost: x\r\n\r\n") == .invalidTarget)
        #expect(failure("GET / http/1.1\r\nHost: x\r\n\r\n") == .invalidVersion)
        #expect(failure("GET / HTTP/1.10\r\nHost: x\r\n\r\n") == .invalidVersion)
        #expect(failure("NONSENSE\r\n\r\n") == .invalidRequestLine)
    }

    @Test func versions() {
        #expect(failure("GET / HTTP/2.0\r\nHost: x\r\n\r\n") == .unsupportedVersion)
        #expect(failure("GET / HTTP/0.9\r\nHost: x\r\n\r\n") == .unsupportedVersion)
        #expect(parse("GET / HTTP/1.2\r\nHost: x\r\n\r\n").head.minorVersion == 1)
        let old = parse("GET / HTTP/1.0\r\n\r\n")
        #expect(old.outcome == .complete)
        #expect(old.head.minorVersion == 0)
        #expect(!old.head.keepAlive)
        #expect(parse("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").head.keepAlive)
        #expect(!parse("GET / HTTP/1.1\r\nHost: x\r\nConnection: foo, close\r\n\r\n").head.keepAlive)
    }

    @Test func targetForms() {
        let absolute = parse("GET http://example.com/x HTTP/1.1\r\nHost: example.com\r\n\r\n")
        #expect(absolute.outcome == .complete)
        #expect(absolute.head.targetForm == .absolute)
        #expect(parse("OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n").head.targetForm == .asterisk)
        #expect(parse("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n").head.targetForm == .authority)
    }

    @Test func host() {
        #expect(failure("GET / HTTP/1.1\r\n\r\n") == .missingHost)
        #expect(failure("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n") == .duplicateHost)
        #expect(failure("GET / HTTP/1.1\r\nHost: a/b\r\n\r\n") == .invalidHost)
        #expect(parse("GET / HTTP/1.1\r\nHost:\r\n\r\n").outcome == .complete)
    }

    @Test func contentLength() {
        #expect(parse("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 007\r\n\r\n").head.framing == .length(7))
        #expect(parse("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n").head.framing == .none)
        #expect(failure("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\n") == .invalidContentLength)
        #expect(failure("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n") == .invalidContentLength)
        #expect(failure("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 5\r\n\r\n") == .invalidContentLength)
        #expect(failure("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0x5\r\n\r\n") == .invalidContentLength)
        #expect(failure("POST / HTTP/1.1\r\nHost: x\r\nContent-Length:\r\n\r\n") == .invalidContentLength)
        #expect(failure("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\ncontent-length: 5\r\n\r\n") == .duplicateContentLength)
        #expect(failure("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n") == .duplicateContentLength)
        #expect(failure("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1001\r\n\r\n") == .bodyTooLarge)
        #expect(failure("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999999\r\n\r\n") == .bodyTooLarge)
    }

    @Test func transferEncoding() {
        #expect(parse("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n").head.framing == .chunked)
        #expect(parse("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: , CHUNKED\r\n\r\n").head.framing == .chunked)
        #expect(failure("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n") == .unsupportedTransferCoding)
        #expect(failure("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n") == .invalidTransferEncoding)
        #expect(failure("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, chunked\r\n\r\n") == .invalidTransferEncoding)
        #expect(failure("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n") == .invalidTransferEncoding)
        #expect(failure("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n") == .invalidTransferEncoding)
        #expect(failure("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n") == .invalidTransferEncoding)
        #expect(failure("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: \r\n\r\n") == .invalidTransferEncoding)
        #expect(failure("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n") == .transferEncodingWithContentLength)
        #expect(failure("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n") == .transferEncodingWithContentLength)
        #expect(failure("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n") == .transferEncodingInHTTP10)
    }

    @Test func expect() {
        #expect(parse("POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-Continue\r\nContent-Length: 3\r\n\r\n").head.expectsContinue)
        #expect(!parse("POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n").head.expectsContinue)
        #expect(failure("POST / HTTP/1.1\r\nHost: x\r\nExpect: 200-ok\r\n\r\n") == .unsupportedExpectation)
    }

    @Test func limits() {
        #expect(failure("GET /" + String(repeating: "a", count: 64) + " HTTP/1.1\r\nHost: x\r\n\r\n") == .uriTooLong)
        // Refused while the request line is still arriving: no waiting for its end.
        #expect(failure("GET /" + String(repeating: "a", count: 200)) == .uriTooLong)
        #expect(parse("GET /" + String(repeating: "a", count: 63) + " HTTP/1.1\r\nHost: x\r\n\r\n").outcome == .complete)
        let fields = (0..<8).map { "X-\($0): y\r\n" }.joined()
        #expect(failure("GET / HTTP/1.1\r\nHost: x\r\n" + fields + "\r\n") == .tooManyFields)
        #expect(failure("GET / HTTP/1.1\r\nHost: x\r\nX: " + String(repeating: "a", count: 1100) + "\r\n\r\n") == .headTooLarge)
        // Refused once the limit is passed, without waiting for an end that may never come.
        #expect(failure("GET / HTTP/1.1\r\nHost: x\r\nX: " + String(repeating: "a", count: 1100)) == .headTooLarge)
        // A head of exactly the limit is accepted.
        let prefix = "GET / HTTP/1.1\r\nHost: x\r\nX: "
        let exact = prefix + String(repeating: "a", count: 1024 - prefix.utf8.count - 4) + "\r\n\r\n"
        #expect(exact.utf8.count == 1024)
        #expect(parse(exact).outcome == .complete)
        #expect(failure(prefix + String(repeating: "a", count: 1024 - prefix.utf8.count - 3) + "\r\n\r\n") == .headTooLarge)
    }

    @Test func statusCodes() {
        #expect(HTTPParseError(.bareLF).status == 400)
        #expect(HTTPParseError(.bodyTooLarge).status == 413)
        #expect(HTTPParseError(.uriTooLong).status == 414)
        #expect(HTTPParseError(.unsupportedExpectation).status == 417)
        #expect(HTTPParseError(.headTooLarge).status == 431)
        #expect(HTTPParseError(.tooManyFields).status == 431)
        #expect(HTTPParseError(.unsupportedTransferCoding).status == 501)
        #expect(HTTPParseError(.unsupportedVersion).status == 505)
    }

    @Test func reusedParserParsesConsecutiveHeads() {
        var parser = RequestHeadParser(limits: testLimits)
        let bytes = Array("GET /1 HTTP/1.1\r\nHost: x\r\n\r\nGET /22 HTTP/1.1\r\nHost: y\r\nA: b\r\n\r\n".utf8)
        bytes.withUnsafeBytes { raw in
            #expect(parser.parse(raw) == .complete)
            let first = parser.head.length
            #expect(parser.head.target.count == 2)
            #expect(parser.parse(UnsafeRawBufferPointer(rebasing: raw[first...])) == .complete)
            #expect(parser.head.target.count == 3)
            #expect(parser.head.fields.count == 2)
        }
    }

    @Test func serializedHeadParsesTheSame() {
        let bytes = Array("\r\nPOST http://h/x HTTP/1.1\r\nHost:h\r\nContent-Length:  12 \r\nA: b c\r\n\r\n".utf8)
        var parser = RequestHeadParser(limits: testLimits)
        bytes.withUnsafeBytes { raw in
            #expect(parser.parse(raw) == .complete)
            let first = parser.head
            let again = first.serialized(from: raw)
            var second = RequestHeadParser(limits: testLimits)
            again.withUnsafeBytes { raw2 in
                #expect(second.parse(raw2) == .complete)
                #expect(second.head.serialized(from: raw2) == again)
                #expect(second.head.framing == first.framing)
            }
        }
    }
}

/// Decodes a chunked body fed `step` bytes at a time; returns the data, the trailers and the
/// bytes left after the body, or the error.
func decodeChunked(_ text: String, step: Int = .max, maxBody: Int = 1000) -> (data: String, trailers: [String], rest: String, error: HTTPParseError.Kind?) {
    let bytes = Array(text.utf8)
    var decoder = ChunkedDecoder(maxBodyBytes: maxBody, maxTrailerBytes: 256, maxTrailerFields: 4)
    var buffer: [UInt8] = []
    var fed = 0
    var data: [UInt8] = []
    while true {
        let event = buffer.withUnsafeBytes { decoder.decode($0) }
        switch event {
        case .data(let range):
            data += buffer[range]
            buffer.removeFirst(range.upperBound)
        case .needMore(let consumed):
            buffer.removeFirst(consumed)
            if fed == bytes.count { return (String(decoding: data, as: UTF8.self), [], "", .truncatedBody) }
            let next = min(bytes.count, fed + min(step, bytes.count))
            buffer += bytes[fed..<next]
            fed = next
        case .end(let consumed):
            let trailers = decoder.trailers.map {
                String(decoding: buffer[$0.name], as: UTF8.self) + "=" + String(decoding: buffer[$0.value], as: UTF8.self)
            }
            let rest = Array(buffer[consumed...]) + bytes[fed...]
            return (String(decoding: data, as: UTF8.self), trailers, String(decoding: rest, as: UTF8.self), nil)
        case .failed(let error):
            return (String(decoding: data, as: UTF8.self), [], "", error.kind)
        }
    }
}

@Suite struct ChunkedDecoderTests {
    @Test(arguments: [1, 2, 3, 7, 1000])
    func decodesChunksAndTrailersHoweverSplit(step: Int) {
        let result = decodeChunked("5\r\nhello\r\n1;ext=1 ; other\r\n \r\nA\r\n0123456789\r\n000\r\nX-Sum: 42\r\nY: z\r\n\r\nNEXT", step: step)
        #expect(result.error == nil)
        #expect(result.data == "hello 0123456789")
        #expect(result.trailers == ["X-Sum=42", "Y=z"])
        #expect(result.rest == "NEXT")
    }

    @Test func emptyBody() {
        let result = decodeChunked("0\r\n\r\n")
        #expect(result.error == nil && result.data == "" && result.trailers.isEmpty && result.rest == "")
    }

    @Test func refusesMalformedFraming() {
        #expect(decodeChunked("x\r\n").error == .invalidChunkSize)
        #expect(decodeChunked("\r\n").error == .invalidChunkSize)
        #expect(decodeChunked("5 \r\nhello\r\n0\r\n\r\n").error == .invalidChunkSize)
        #expect(decodeChunked("-5\r\nhello\r\n0\r\n\r\n").error == .invalidChunkSize)
        #expect(decodeChunked("+5\r\nhello\r\n0\r\n\r\n").error == .invalidChunkSize)
        #expect(decodeChunked("0x5\r\nhello\r\n0\r\n\r\n").error == .invalidChunkSize)
        #expect(decodeChunked("5\nhello\r\n0\r\n\r\n").error == .invalidChunkSize)
        #expect(decodeChunked("5\r\rhello\r\n0\r\n\r\n").error == .bareCR)
        #expect(decodeChunked("5\r\nhelloX\r\n0\r\n\r\n").error == .invalidChunkFraming)
        #expect(decodeChunked("5\r\nhello\n0\r\n\r\n").error == .invalidChunkFraming)
        #expect(decodeChunked("1;a\u{0}b\r\nx\r\n0\r\n\r\n").error == .invalidChunkSize)
        #expect(decodeChunked("1;" + String(repeating: "a", count: 5000) + "\r\nx\r\n0\r\n\r\n").error == .invalidChunkSize)
        #expect(decodeChunked("1000000000000000\r\n").error == .invalidChunkSize)
        #expect(decodeChunked("0\r\nX : y\r\n\r\n").error == .whitespaceBeforeColon)
        #expect(decodeChunked("0\r\nX: y\n\r\n").error == .bareLF)
        #expect(decodeChunked("0\r\nX: " + String(repeating: "a", count: 300) + "\r\n\r\n").error == .headTooLarge)
        #expect(decodeChunked("0\r\n" + String(repeating: "A: b\r\n", count: 5) + "\r\n").error == .tooManyFields)
        #expect(decodeChunked("5\r\nhel").error == .truncatedBody)
    }

    @Test func enforcesTheBodyLimitBeforeTheData() {
        #expect(decodeChunked("3E8\r\n", maxBody: 1000).error == .truncatedBody)  // 1000: allowed, data missing
        #expect(decodeChunked("3E9\r\n", maxBody: 1000).error == .bodyTooLarge)
        #expect(decodeChunked("200\r\n" + String(repeating: "a", count: 512) + "\r\n1F9\r\n", maxBody: 1000).error == .bodyTooLarge)
        #expect(decodeChunked("fffffffffffffff\r\n", maxBody: 1000).error == .bodyTooLarge)
    }
}
