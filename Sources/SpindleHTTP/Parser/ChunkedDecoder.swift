// The chunked transfer coding (RFC 9112 §7.1), decoded incrementally as a pure value.
//
//     chunked-body = *chunk last-chunk trailer-section CRLF
//     chunk        = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
//     last-chunk   = 1*("0") [ chunk-ext ] CRLF
//
// `decode` is handed the bytes not yet consumed and walks the framing byte by byte until it
// reaches chunk data, which it returns as a range to copy out (the caller then consumes up to
// the end of that range); the framing around the data is consumed as it is read, so nothing
// is ever examined twice. The trailer section is the exception: it is left unconsumed until
// its final empty line has arrived (found by a `FieldSectionScanner`, with the head's byte and
// field limits), then parsed whole like a head's fields. Refused: a size that is not hex or
// overflows, a chunk line over 4 KiB (extensions are allowed but ignored, and bounded), data
// not followed by CRLF, a bare CR or LF, and a body over the body limit (413).

package struct ChunkedDecoder: Sendable {
    package enum Event: Equatable, Sendable {
        /// Chunk data at `range` of the bytes given; consume up to `range.upperBound`.
        case data(Range<Int>)
        /// The framing so far was consumed; consume `consumed` bytes and call again with more.
        case needMore(consumed: Int)
        /// The body ended: consume `consumed` bytes. `trailers` holds the trailer fields, as
        /// ranges into the bytes given to this call.
        case end(consumed: Int)
        case failed(HTTPParseError)
    }

    private enum State: Equatable, Sendable {
        case size(digits: Int, value: Int)
        /// After the size (and perhaps whitespace): an extension, up to the CR.
        case sizeLineRest(afterSemicolon: Bool)
        case sizeLF
        case data(remaining: Int)
        case dataCR
        case dataLF
        case trailers
        case done
    }

    static let maxSizeLineBytes = 4 * 1024

    private var state = State.size(digits: 0, value: 0)
    /// Bytes of the current size line so far.
    private var sizeLineBytes = 0
    /// The size of the chunk whose size line is being read.
    private var pendingSize = 0
    /// Body bytes announced so far.
    package private(set) var bodyBytes = 0
    let maxBodyBytes: Int
    let maxTrailerFields: Int
    private var trailerScanner: FieldSectionScanner
    /// The trailer fields once `.end` was returned (ranges into that call's bytes).
    package private(set) var trailers: [FieldRange] = []

    package init(maxBodyBytes: Int, maxTrailerBytes: Int, maxTrailerFields: Int) {
        self.maxBodyBytes = maxBodyBytes
        self.maxTrailerFields = maxTrailerFields
        trailerScanner = FieldSectionScanner(limit: maxTrailerBytes, skipsLeadingEmptyLines: false)
    }

    /// Whether the last chunk and the trailer section have been decoded.
    package var isFinished: Bool { state == .done }

    /// Decodes from the start of the unconsumed bytes; `.data` ranges hold at most `maxData`
    /// bytes.
    package mutating func decode(_ bytes: UnsafeRawBufferPointer, maxData: Int = .max) -> Event {
        var index = 0
        let count = bytes.count
        while index < count {
            let byte = bytes[index]
            switch state {
            case .size(let digits, let value):
                if let digit = Self.hexValue(byte) {
                    guard digits < 15 else { return fail(.invalidChunkSize) }  // would overflow
                    state = .size(digits: digits + 1, value: value << 4 | digit)
                } else {
                    guard digits > 0 else { return fail(.invalidChunkSize) }
                    pendingSize = value
                    if byte == ASCII.cr {
                        state = .sizeLF
                    } else if byte == ASCII.semicolon {
                        state = .sizeLineRest(afterSemicolon: true)
                    } else if ASCII.isWhitespace(byte) {
                        state = .sizeLineRest(afterSemicolon: false)  // BWS before ";"
                    } else {
                        return fail(.invalidChunkSize)
                    }
                }
            case .sizeLineRest(let afterSemicolon):
                if byte == ASCII.cr {
                    guard afterSemicolon else { return fail(.invalidChunkSize) }
                    state = .sizeLF
                } else if byte == ASCII.semicolon {
                    state = .sizeLineRest(afterSemicolon: true)
                } else if !afterSemicolon {
                    guard ASCII.isWhitespace(byte) else { return fail(.invalidChunkSize) }
                } else {
                    guard ASCII.isFieldValueChar(byte) else { return fail(.invalidChunkSize) }
                }
            case .sizeLF:
                guard byte == ASCII.lf else { return fail(.bareCR) }
                sizeLineBytes = -1  // this byte; the next line starts at 0
                if pendingSize == 0 {
                    state = .trailers
                    index += 1
                    return decodeTrailers(bytes, from: index)
                }
                guard pendingSize <= maxBodyBytes - bodyBytes else { return fail(.bodyTooLarge) }
                bodyBytes += pendingSize
                state = .data(remaining: pendingSize)
            case .data(let remaining):
                let available = min(remaining, count - index, max(maxData, 1))
                let left = remaining - available
                state = left == 0 ? .dataCR : .data(remaining: left)
                return .data(index..<(index + available))
            case .dataCR:
                guard byte == ASCII.cr else { return fail(.invalidChunkFraming) }
                state = .dataLF
            case .dataLF:
                guard byte == ASCII.lf else { return fail(.invalidChunkFraming) }
                state = .size(digits: 0, value: 0)
                sizeLineBytes = -1
            case .trailers:
                return decodeTrailers(bytes, from: index)
            case .done:
                return .end(consumed: index)
            }
            index += 1
            sizeLineBytes += 1
            if sizeLineBytes > Self.maxSizeLineBytes { return fail(.invalidChunkSize) }
        }
        if state == .trailers { return decodeTrailers(bytes, from: index) }
        return .needMore(consumed: index)
    }

    /// The trailer section starts at `start`; it is consumed only once complete.
    private mutating func decodeTrailers(_ bytes: UnsafeRawBufferPointer, from start: Int) -> Event {
        let section = UnsafeRawBufferPointer(rebasing: bytes[start...])
        switch trailerScanner.scan(section) {
        case .needMore:
            return .needMore(consumed: start)
        case .failed(let error):
            return fail(error.kind)
        case .complete(let length):
            trailers.removeAll(keepingCapacity: true)
            do {
                try FieldLines.parse(bytes, start..<(start + length - 2), maxCount: maxTrailerFields, into: &trailers)
            } catch {
                return fail(error.kind)
            }
            state = .done
            return .end(consumed: start + length)
        }
    }

    private mutating func fail(_ kind: HTTPParseError.Kind) -> Event {
        state = .done
        return .failed(HTTPParseError(kind))
    }

    @inline(__always)
    private static func hexValue(_ byte: UInt8) -> Int? {
        switch byte {
        case 0x30...0x39: Int(byte - 0x30)
        case 0x41...0x46: Int(byte - 0x41 + 10)
        case 0x61...0x66: Int(byte - 0x61 + 10)
        default: nil
        }
    }
}
