/// Why a request (or its body) was refused, and the status code the refusal gets.
///
/// The parser is strict (RFC 9112): anything another parser on the path might read another way
/// (a proxy in front of us, a cache behind us) is an error rather than a guess, because a
/// disagreement between two parsers about where a request ends is how requests are smuggled.
package struct HTTPParseError: Error, Equatable, Sendable, CustomStringConvertible {
    package enum Kind: String, Equatable, Sendable {
        // 400 Bad Request
        case bareCR = "a CR not followed by LF"
        case bareLF = "an LF not preceded by CR"
        case invalidRequestLine = "a malformed request line"
        case invalidMethod = "an invalid method token"
        case invalidTarget = "an invalid request target"
        case invalidVersion = "a malformed HTTP version"
        case missingColon = "a field line without a colon"
        case whitespaceBeforeColon = "whitespace between a field name and its colon"
        case invalidFieldName = "an invalid field name"
        case invalidFieldValue = "a control character in a field value"
        case obsFold = "an obsolete line folding (a field line starting with whitespace)"
        case invalidContentLength = "a Content-Length that is not one decimal number"
        case duplicateContentLength = "more than one Content-Length"
        case invalidTransferEncoding = "a malformed Transfer-Encoding (chunked not last, or twice)"
        case transferEncodingWithContentLength = "both Transfer-Encoding and Content-Length"
        case transferEncodingInHTTP10 = "a Transfer-Encoding in an HTTP/1.0 request"
        case missingHost = "an HTTP/1.1 request without Host"
        case duplicateHost = "more than one Host"
        case invalidHost = "an invalid Host"
        case invalidChunkSize = "a malformed chunk size line"
        case invalidChunkFraming = "chunk data not followed by CRLF"
        case truncatedBody = "the connection ended inside the body"
        // 413, 414, 417, 431, 501, 505
        case bodyTooLarge = "a body over the limit"
        case uriTooLong = "a request target over the limit"
        case unsupportedExpectation = "an Expect other than 100-continue"
        case headTooLarge = "a head (or trailer section) over the byte limit"
        case tooManyFields = "more header (or trailer) fields than the limit"
        case unsupportedTransferCoding = "a transfer coding other than chunked"
        case unsupportedVersion = "an HTTP version other than 1.x"
    }

    package var kind: Kind

    package init(_ kind: Kind) { self.kind = kind }

    /// The response status for this refusal.
    package var status: Int {
        switch kind {
        case .bodyTooLarge: 413
        case .uriTooLong: 414
        case .unsupportedExpectation: 417
        case .headTooLarge, .tooManyFields: 431
        case .unsupportedTransferCoding: 501
        case .unsupportedVersion: 505
        default: 400
        }
    }

    package var description: String { "\(status): \(kind.rawValue)" }
}
