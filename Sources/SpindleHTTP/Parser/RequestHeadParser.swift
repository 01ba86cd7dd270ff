// The request-head parser: bytes in, a validated `RequestHead` (or the status to refuse with)
// out. A pure value: no I/O, no clock, so every rule is tested by feeding it bytes.
//
// Two steps. `FieldSectionScanner` finds the end of the head incrementally (each byte examined
// once, however the head is split across reads) and checks line endings and the byte limit.
// Once the head is complete it is parsed in one pass: the request line, then the field lines
// (FieldLines.swift), then the fields that decide framing and connection handling — Content-
// Length, Transfer-Encoding, Connection, Host, Expect — compared case-insensitively in place,
// without building strings. What the rules are, and why each refusal (RFC 9112):
// - request-line = method SP request-target SP HTTP-version, single spaces (§3); the method a
//   token; the target visible ASCII in one of the four forms, absolute-form accepted (§3.2.2);
//   a version other than HTTP/1.x is 505, HTTP/1.x with x > 1 is handled as 1.1 (RFC 9110
//   §2.5);
// - Content-Length: exactly one, all digits (so no "+5", no "5, 5") (§6.3 rule 5);
// - Transfer-Encoding: a list of tokens whose last is chunked (else 400, §6.3 rule 4), none
//   but chunked (else 501, §6.1), never with Content-Length (refused: §6.3 rule 3 allows
//   processing it, but such a request is a smuggling attempt more often than not), never in
//   HTTP/1.0 (§6.1: the framing is faulty);
// - exactly one Host in HTTP/1.1, at most one in 1.0 (§3.2);
// - Expect: only 100-continue (RFC 9110 §10.1.1: 417 otherwise); ignored in HTTP/1.0.
// The limits: head bytes (431), header count (431), target length (414, already while the
// request line arrives), Content-Length over the body limit (413).

package struct RequestHeadParser: Sendable {
    package struct Limits: Sendable {
        package var maxHeadBytes: Int
        package var maxFieldCount: Int
        package var maxTargetLength: Int
        package var maxBodyBytes: Int

        package init(maxHeadBytes: Int, maxFieldCount: Int, maxTargetLength: Int, maxBodyBytes: Int) {
            self.maxHeadBytes = maxHeadBytes
            self.maxFieldCount = maxFieldCount
            self.maxTargetLength = maxTargetLength
            self.maxBodyBytes = maxBodyBytes
        }
    }

    package enum Outcome: Equatable, Sendable {
        /// `head` holds a complete request head, `head.length` bytes long.
        case complete
        case needMore
        case failed(HTTPParseError)
    }

    package let limits: Limits
    private var scanner: FieldSectionScanner
    /// The last head parsed (its `fields` array is reused from one request to the next).
    package private(set) var head = RequestHead()

    package init(limits: Limits) {
        self.limits = limits
        // The longest request line: a method, the target, the version and the spaces. A
        // longer one is refused as soon as it is seen (414), without waiting for its end.
        scanner = FieldSectionScanner(
            limit: limits.maxHeadBytes, skipsLeadingEmptyLines: true,
            firstLineLimit: limits.maxTargetLength + 32, firstLineError: .uriTooLong)
    }

    /// Parses what has arrived of a request head. `bytes` starts at the head's first byte and
    /// holds at least the bytes of the previous call (the same bytes: they are not moved
    /// between calls except all together). After `.complete` or `.failed`, the next call
    /// starts a new head.
    package mutating func parse(_ bytes: UnsafeRawBufferPointer) -> Outcome {
        switch scanner.scan(bytes) {
        case .needMore:
            return .needMore
        case .failed(let error):
            scanner.reset()
            return .failed(error)
        case .complete(let length):
            scanner.reset()
            do {
                try parseHead(bytes, length: length)
                return .complete
            } catch {
                return .failed(error)
            }
        }
    }

    private mutating func parseHead(_ bytes: UnsafeRawBufferPointer, length: Int) throws(HTTPParseError) {
        head.fields.removeAll(keepingCapacity: true)
        head.hostField = nil
        head.length = length
        var start = 0
        while bytes[start] == ASCII.cr { start += 2 }  // leading empty lines
        var lineEnd = start
        while bytes[lineEnd] != ASCII.cr { lineEnd += 1 }
        try parseRequestLine(bytes, start..<lineEnd)
        try FieldLines.parse(bytes, (lineEnd + 2)..<(length - 2), maxCount: limits.maxFieldCount, into: &head.fields)
        try interpretFields(bytes)
    }

    private mutating func parseRequestLine(_ bytes: UnsafeRawBufferPointer, _ line: Range<Int>) throws(HTTPParseError) {
        var index = line.lowerBound
        while index < line.upperBound && bytes[index] != ASCII.space {
            guard ASCII.isTokenChar(bytes[index]) else { throw HTTPParseError(.invalidMethod) }
            index += 1
        }
        if index == line.lowerBound || index == line.upperBound { throw HTTPParseError(.invalidRequestLine) }
        head.method = line.lowerBound..<index
        index += 1
        let targetStart = index
        while index < line.upperBound && bytes[index] != ASCII.space {
            // Visible ASCII only: no controls, no whitespace, no obs-text.
            guard bytes[index] > 0x20 && bytes[index] < 0x7F else { throw HTTPParseError(.invalidTarget) }
            index += 1
        }
        if index == targetStart || index == line.upperBound { throw HTTPParseError(.invalidRequestLine) }
        if index - targetStart > limits.maxTargetLength { throw HTTPParseError(.uriTooLong) }
        head.target = targetStart..<index
        index += 1
        try parseVersion(bytes, index..<line.upperBound)
        head.targetForm = try Self.targetForm(bytes, target: head.target, method: head.method)
    }

    /// `HTTP-version = "HTTP" "/" DIGIT "." DIGIT`.
    private mutating func parseVersion(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>) throws(HTTPParseError) {
        // "HTTP" is case-sensitive (RFC 9112 §2.3).
        guard range.count == 8, bytes[range.lowerBound] == 0x48, bytes[range.lowerBound + 1] == 0x54,
            bytes[range.lowerBound + 2] == 0x54, bytes[range.lowerBound + 3] == 0x50, bytes[range.lowerBound + 4] == 0x2F
        else { throw HTTPParseError(.invalidVersion) }
        let major = bytes[range.lowerBound + 5]
        let dot = bytes[range.lowerBound + 6]
        let minor = bytes[range.lowerBound + 7]
        guard (0x30...0x39).contains(major), dot == 0x2E, (0x30...0x39).contains(minor) else {
            throw HTTPParseError(.invalidVersion)
        }
        guard major == 0x31 else { throw HTTPParseError(.unsupportedVersion) }
        head.minorVersion = minor == 0x30 ? 0 : 1
    }

    private static func targetForm(
        _ bytes: UnsafeRawBufferPointer, target: Range<Int>, method: Range<Int>
    ) throws(HTTPParseError) -> TargetForm {
        let first = bytes[target.lowerBound]
        if ASCII.equalsIgnoringCase(bytes, method, "connect") && bytes[method.lowerBound] == 0x43 {
            // authority-form: host:port, nothing else.
            guard first != 0x2F, !bytes[target].contains(0x2F) else { throw HTTPParseError(.invalidTarget) }
            return .authority
        }
        if first == 0x2F { return .origin }
        if target.count == 1 && first == 0x2A {
            guard ASCII.equalsIgnoringCase(bytes, method, "options") && bytes[method.lowerBound] == 0x4F else {
                throw HTTPParseError(.invalidTarget)
            }
            return .asterisk
        }
        // absolute-form: scheme ":" hier-part, scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ).
        guard (0x41...0x5A).contains(first) || (0x61...0x7A).contains(first) else { throw HTTPParseError(.invalidTarget) }
        var index = target.lowerBound + 1
        while index < target.upperBound {
            let byte = bytes[index]
            if byte == ASCII.colon {
                guard index + 1 < target.upperBound else { break }
                return .absolute
            }
            let isSchemeChar = (0x41...0x5A).contains(byte) || (0x61...0x7A).contains(byte)
                || (0x30...0x39).contains(byte) || byte == 0x2B || byte == 0x2D || byte == 0x2E
            guard isSchemeChar else { break }
            index += 1
        }
        throw HTTPParseError(.invalidTarget)
    }

    /// The fields that frame the body and decide the connection's fate.
    private mutating func interpretFields(_ bytes: UnsafeRawBufferPointer) throws(HTTPParseError) {
        var contentLength: Int? = nil
        var sawTransferEncoding = false
        var chunked = false  // the last coding seen so far is chunked
        var unsupportedCoding = false
        var close = false
        var keepAliveToken = false
        var expectsContinue = false
        for (index, field) in head.fields.enumerated() {
            let name = field.name
            // Dispatch on the length first: most fields match none of these.
            switch name.count {
            case 14 where ASCII.equalsIgnoringCase(bytes, name, "content-length"):
                if contentLength != nil { throw HTTPParseError(.duplicateContentLength) }
                contentLength = try Self.parseContentLength(bytes, field.value)
            case 17 where ASCII.equalsIgnoringCase(bytes, name, "transfer-encoding"):
                sawTransferEncoding = true
                try Self.parseTransferCodings(bytes, field.value, chunked: &chunked, unsupported: &unsupportedCoding)
            case 10 where ASCII.equalsIgnoringCase(bytes, name, "connection"):
                Self.forEachListElement(bytes, field.value) { element in
                    if ASCII.equalsIgnoringCase(bytes, element, "close") { close = true }
                    if ASCII.equalsIgnoringCase(bytes, element, "keep-alive") { keepAliveToken = true }
                }
            case 4 where ASCII.equalsIgnoringCase(bytes, name, "host"):
                if head.hostField != nil { throw HTTPParseError(.duplicateHost) }
                for byte in bytes[field.value] {
                    // uri-host [ ":" port ]: no whitespace, userinfo, path, query or fragment.
                    if byte <= 0x20 || byte >= 0x7F || byte == 0x2F || byte == 0x3F || byte == 0x23 || byte == 0x40 {
                        throw HTTPParseError(.invalidHost)
                    }
                }
                head.hostField = index
            case 6 where ASCII.equalsIgnoringCase(bytes, name, "expect"):
                guard ASCII.equalsIgnoringCase(bytes, field.value, "100-continue") else {
                    throw HTTPParseError(.unsupportedExpectation)
                }
                expectsContinue = true
            default:
                break
            }
        }
        let http10 = head.minorVersion == 0
        if !http10 && head.hostField == nil { throw HTTPParseError(.missingHost) }
        if sawTransferEncoding {
            if http10 { throw HTTPParseError(.transferEncodingInHTTP10) }
            if contentLength != nil { throw HTTPParseError(.transferEncodingWithContentLength) }
            if !chunked { throw HTTPParseError(.invalidTransferEncoding) }
            if unsupportedCoding { throw HTTPParseError(.unsupportedTransferCoding) }
            head.framing = .chunked
        } else if let contentLength, contentLength > 0 {
            if contentLength > limits.maxBodyBytes { throw HTTPParseError(.bodyTooLarge) }
            head.framing = .length(contentLength)
        } else {
            head.framing = .none
        }
        head.keepAlive = !close && (!http10 || keepAliveToken)
        head.expectsContinue = expectsContinue && !http10
    }

    /// `Content-Length = 1*DIGIT`; a number past any body limit counts as `Int.max`.
    private static func parseContentLength(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>) throws(HTTPParseError) -> Int {
        guard !range.isEmpty else { throw HTTPParseError(.invalidContentLength) }
        var value = 0
        for index in range {
            let digit = bytes[index] &- 0x30
            guard digit < 10 else { throw HTTPParseError(.invalidContentLength) }
            if value > (Int.max - 9) / 10 {
                value = Int.max  // keep validating the digits; the value is past every limit
            } else {
                value = value * 10 + Int(digit)
            }
        }
        return value
    }

    /// `Transfer-Encoding = #transfer-coding`. `chunked` says whether the last coding so far
    /// is chunked; chunked anywhere but last (or twice) is refused.
    private static func parseTransferCodings(
        _ bytes: UnsafeRawBufferPointer, _ range: Range<Int>, chunked: inout Bool, unsupported: inout Bool
    ) throws(HTTPParseError) {
        var elements = 0
        var failure: HTTPParseError? = nil
        forEachListElement(bytes, range) { element in
            guard failure == nil else { return }
            elements += 1
            if chunked {
                // chunked was not the final coding (or is applied twice).
                failure = HTTPParseError(.invalidTransferEncoding)
                return
            }
            if ASCII.equalsIgnoringCase(bytes, element, "chunked") {
                chunked = true
                return
            }
            // Any other coding: a token, optionally with parameters, that we do not implement.
            var index = element.lowerBound
            while index < element.upperBound && ASCII.isTokenChar(bytes[index]) { index += 1 }
            if index == element.lowerBound || (index < element.upperBound && bytes[index] != ASCII.semicolon
                && !ASCII.isWhitespace(bytes[index])) {
                failure = HTTPParseError(.invalidTransferEncoding)
                return
            }
            unsupported = true
        }
        if let failure { throw failure }
        if elements == 0 { throw HTTPParseError(.invalidTransferEncoding) }
    }

    /// Calls `body` with each non-empty element of a comma-separated list (RFC 9110 §5.6.1:
    /// empty elements are ignored), trimmed of whitespace.
    private static func forEachListElement(
        _ bytes: UnsafeRawBufferPointer, _ range: Range<Int>, _ body: (Range<Int>) -> Void
    ) {
        var start = range.lowerBound
        var index = range.lowerBound
        while index <= range.upperBound {
            if index == range.upperBound || bytes[index] == ASCII.comma {
                let element = ASCII.trimmed(bytes, start..<index)
                if !element.isEmpty { body(element) }
                start = index + 1
            }
            index += 1
        }
    }
}
