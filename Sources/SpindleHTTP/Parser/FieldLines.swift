// Splitting a complete field section (header or trailer fields) into validated field lines.

/// One field line of a section: byte ranges of its name and of its value (without the
/// surrounding whitespace), relative to the buffer that was parsed.
package struct FieldRange: Equatable, Sendable {
    package var name: Range<Int>
    package var value: Range<Int>
}

enum FieldLines {
    /// Validates the field lines of `bytes[range]` — lines that each end in CRLF, as
    /// `FieldSectionScanner` guaranteed, without the final empty line — and appends them to
    /// `fields`. `field-line = field-name ":" OWS field-value OWS` (RFC 9112 §5), refusing what
    /// RFC 9112 says a server must refuse: whitespace before the colon (§5.1), a line starting
    /// with whitespace (obs-fold, §5.2), names that are not tokens, values with controls.
    static func parse(
        _ bytes: UnsafeRawBufferPointer, _ range: Range<Int>, maxCount: Int, into fields: inout [FieldRange]
    ) throws(HTTPParseError) {
        var lineStart = range.lowerBound
        while lineStart < range.upperBound {
            // The line ends at the next CR (every CR is followed by LF here).
            var lineEnd = lineStart
            while bytes[lineEnd] != ASCII.cr { lineEnd += 1 }
            let first = bytes[lineStart]
            if ASCII.isWhitespace(first) { throw HTTPParseError(.obsFold) }
            var colon = lineStart
            while colon < lineEnd && bytes[colon] != ASCII.colon {
                let byte = bytes[colon]
                if !ASCII.isTokenChar(byte) {
                    // Whitespace followed (after more whitespace) by the colon is its own error.
                    var next = colon
                    while next < lineEnd && ASCII.isWhitespace(bytes[next]) { next += 1 }
                    if ASCII.isWhitespace(byte) && next < lineEnd && bytes[next] == ASCII.colon {
                        throw HTTPParseError(.whitespaceBeforeColon)
                    }
                    throw HTTPParseError(colon == lineEnd ? .missingColon : .invalidFieldName)
                }
                colon += 1
            }
            if colon == lineEnd { throw HTTPParseError(.missingColon) }
            if colon == lineStart { throw HTTPParseError(.invalidFieldName) }
            let value = ASCII.trimmed(bytes, (colon + 1)..<lineEnd)
            for index in value where !ASCII.isFieldValueChar(bytes[index]) {
                throw HTTPParseError(.invalidFieldValue)
            }
            if fields.count == maxCount { throw HTTPParseError(.tooManyFields) }
            fields.append(FieldRange(name: lineStart..<colon, value: value))
            lineStart = lineEnd + 2
        }
    }
}
