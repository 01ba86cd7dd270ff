// Finding where a request head (or a chunked body's trailer section) ends, incrementally.
//
// Bytes arrive in pieces, perhaps one at a time. The scanner keeps the offset it has examined
// up to, so each byte is looked at once however it is split: finding the end of an n-byte head
// costs O(n), not the O(n²) of rescanning from the start on every read. While it scans it
// enforces what needs no parsing: every LF is preceded by CR (RFC 9112 §2.2 lets a recipient
// accept a bare LF as a line end, but a proxy in front of us may not, so it is refused), every
// CR is followed by LF, and the section stays within its byte limit (so a client that never
// ends its head cannot make us buffer more than the limit). Only once the empty line that ends
// the section has arrived does the parser split it into lines, knowing they are well formed.
//
// Offsets are relative to the first byte of the section; the caller keeps those bytes where
// they are (or moves them all together) until the section is complete.

package struct FieldSectionScanner: Sendable {
    package enum Outcome: Equatable, Sendable {
        /// The section is `length` bytes long, its final empty line included.
        case complete(length: Int)
        case needMore
        case failed(HTTPParseError)
    }

    /// Whether empty lines before the first line are skipped (a request head: RFC 9112 §2.2
    /// says a server SHOULD ignore at least one) rather than ending the section (trailers).
    let skipsLeadingEmptyLines: Bool
    /// The most bytes the section may take.
    let limit: Int
    /// The longest first line (a request line) before it is refused with `firstLineError`.
    let firstLineLimit: Int
    let firstLineError: HTTPParseError.Kind

    /// Bytes examined so far.
    private var scanned = 0
    /// Where the line being scanned starts.
    private var lineStart = 0
    /// Whether a non-empty line has ended (the first line has been seen).
    private var sawLine = false

    package init(limit: Int, skipsLeadingEmptyLines: Bool, firstLineLimit: Int = .max,
                 firstLineError: HTTPParseError.Kind = .headTooLarge) {
        self.limit = limit
        self.skipsLeadingEmptyLines = skipsLeadingEmptyLines
        self.firstLineLimit = firstLineLimit
        self.firstLineError = firstLineError
    }

    /// Forgets the section scanned so far (for the next one, at a new offset 0).
    package mutating func reset() {
        scanned = 0
        lineStart = 0
        sawLine = false
    }

    /// The bytes of the section seen so far (`bytes` starts at the section and holds at least
    /// as many bytes as the previous call saw).
    package mutating func scan(_ bytes: UnsafeRawBufferPointer) -> Outcome {
        var index = scanned
        let count = bytes.count
        while index < count {
            if index >= limit { return .failed(HTTPParseError(.headTooLarge)) }
            let byte = bytes[index]
            if byte == ASCII.lf {
                guard index > 0 && bytes[index - 1] == ASCII.cr && index - 1 >= lineStart else {
                    return .failed(HTTPParseError(.bareLF))
                }
                let lineIsEmpty = index - 1 == lineStart
                if lineIsEmpty {
                    if sawLine || !skipsLeadingEmptyLines { return .complete(length: index + 1) }
                } else {
                    sawLine = true
                }
                lineStart = index + 1
            } else if byte == ASCII.cr {
                if index + 1 == count { break }  // the LF may come with the next bytes
                if bytes[index + 1] != ASCII.lf { return .failed(HTTPParseError(.bareCR)) }
            } else if !sawLine && index - lineStart >= firstLineLimit {
                return .failed(HTTPParseError(firstLineError))
            }
            index += 1
        }
        scanned = index
        return .needMore
    }
}
