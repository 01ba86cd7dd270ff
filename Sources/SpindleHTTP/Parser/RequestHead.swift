// A parsed request head, as byte ranges into the buffer it was parsed from (the server turns
// it into an `HTTPRequest`; the parser itself needs nothing but the standard library, so the
// fuzzer can build it alone).

/// How the body of a request is delimited (RFC 9112 §6.3).
package enum BodyFraming: Equatable, Sendable {
    /// No body (neither Content-Length nor Transfer-Encoding).
    case none
    /// Exactly this many bytes.
    case length(Int)
    /// The chunked transfer coding.
    case chunked
}

/// The form of a request target (RFC 9112 §3.2).
package enum TargetForm: Equatable, Sendable {
    case origin, absolute, authority, asterisk
}

package struct RequestHead: Equatable, Sendable {
    package var method: Range<Int> = 0..<0
    package var target: Range<Int> = 0..<0
    package var targetForm: TargetForm = .origin
    /// 0 for HTTP/1.0, 1 for HTTP/1.1 (and later 1.x minors, which are treated as 1.1).
    package var minorVersion = 1
    /// The header fields in order, duplicates included.
    package var fields: [FieldRange] = []
    /// The index in `fields` of the Host field, if there is one.
    package var hostField: Int? = nil
    package var framing: BodyFraming = .none
    /// Whether the connection may carry another request after this one's response.
    package var keepAlive = true
    /// `Expect: 100-continue` in an HTTP/1.1 request.
    package var expectsContinue = false
    /// The bytes of the head, from the first byte (leading empty lines included) to the end of
    /// its empty line.
    package var length = 0

    package init() {}

    /// The head as bytes, in canonical form (single spaces, `name: value` lines), from the
    /// buffer it was parsed from. Parsing the result gives the same head (the fuzzer checks it).
    package func serialized(from bytes: UnsafeRawBufferPointer) -> [UInt8] {
        var output: [UInt8] = []
        output.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[method]))
        output.append(ASCII.space)
        output.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[target]))
        output.append(contentsOf: minorVersion == 0 ? Array(" HTTP/1.0\r\n".utf8) : Array(" HTTP/1.1\r\n".utf8))
        for field in fields {
            output.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[field.name]))
            output.append(ASCII.colon)
            output.append(ASCII.space)
            output.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[field.value]))
            output.append(ASCII.cr)
            output.append(ASCII.lf)
        }
        output.append(ASCII.cr)
        output.append(ASCII.lf)
        return output
    }
}
