/// An error from a request body or a response writer.
public struct HTTPServerError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What went wrong.
    public enum Kind: Sendable, Equatable {
        /// The request body is malformed or over the limit; `status` is what the client is told
        /// (400 or 413) if no response was started.
        case invalidBody(status: Int, reason: String)
        /// The client closed the connection inside the request body.
        case truncatedBody
        /// The body is longer than the limit given to `collect(upTo:)`.
        case bodyTooLarge
        /// A body write would go past the response's Content-Length, or `finish` came before it.
        case bodyLengthMismatch
        /// `writeHead` after the head was written, or a write after `finish`.
        case responseAlreadyStarted
        /// A body or body write before `writeHead`.
        case responseNotStarted
        /// The request's body or writer was used after its handler returned.
        case requestFinished
        /// Two tasks used the same request's body or writer at once.
        case concurrentUse
        /// The connection failed or was closed (a timeout, the shutdown deadline, the peer).
        case connectionClosed
    }

    /// What went wrong.
    public let kind: Kind

    /// An error of the given kind.
    public init(_ kind: Kind) { self.kind = kind }

    /// What went wrong, as a sentence for logs.
    public var description: String {
        switch kind {
        case .invalidBody(let status, let reason): "invalid request body (\(status)): \(reason)"
        case .truncatedBody: "the connection ended inside the request body"
        case .bodyTooLarge: "the request body is over the limit"
        case .bodyLengthMismatch: "the response body does not match its Content-Length"
        case .responseAlreadyStarted: "the response head was already written, or the response finished"
        case .responseNotStarted: "a response body write before the head"
        case .requestFinished: "the request's handler has returned"
        case .concurrentUse: "the request's body or writer was used by two tasks at once"
        case .connectionClosed: "the connection is closed"
        }
    }
}
