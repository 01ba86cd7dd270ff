import HTTPTypes

/// Writes the response to one request: a head, then body bytes, then the end (with optional
/// trailers), or all of it at once with ``respond(_:body:)``.
///
/// The framing is the server's: a `Content-Length` set by the handler is honoured (the body
/// must then have exactly that length), otherwise the body is sent chunked (or, to an
/// HTTP/1.0 client, delimited by closing the connection). `Transfer-Encoding` from the handler
/// is ignored; `Date` is added unless present; `Connection: close` is added when the
/// connection closes after the response. Bytes are buffered and written when 64 KiB have
/// accumulated, when the connection next reads, or at the end. Valid only during the handler
/// call it was given to; one task at a time.
public struct HTTPResponseWriter: Sendable {
    let connection: HTTPConnection
    let generation: UInt64

    init(connection: HTTPConnection, generation: UInt64) {
        self.connection = connection
        self.generation = generation
    }

    /// Writes the response head.
    ///
    /// - Throws: ``HTTPServerError/Kind/responseAlreadyStarted`` if a head was written.
    public nonisolated(nonsending) func writeHead(_ response: HTTPResponse) async throws {
        try connection.claim(generation)
        defer { connection.release() }
        guard connection.response.phase == .notStarted else { throw HTTPServerError(.responseAlreadyStarted) }
        connection.appendHead(response)
    }

    /// Writes body bytes.
    ///
    /// - Throws: ``HTTPServerError/Kind/bodyLengthMismatch`` past the declared Content-Length,
    ///   `responseNotStarted` before the head, `responseAlreadyStarted` after `finish`, and the
    ///   connection's I/O errors (a write stalled past its timeout closes the connection).
    public nonisolated(nonsending) func write(_ bytes: some Collection<UInt8>) async throws {
        try connection.claim(generation)
        defer { connection.release() }
        switch connection.response.phase {
        case .notStarted: throw HTTPServerError(.responseNotStarted)
        case .finished: throw HTTPServerError(.responseAlreadyStarted)
        case .streaming: break
        }
        // (Untyped throws in these closures: a typed-throws closure passed to a rethrowing
        // function crashes the 6.3.1 compiler's IR generation.)
        let appended: Void? = try bytes.withContiguousStorageIfAvailable { buffer in
            try connection.appendBody(UnsafeRawBufferPointer(buffer))
        }
        if appended == nil {
            try Array(bytes).withUnsafeBytes { raw in try connection.appendBody(raw) }
        }
        if connection.output.count >= HTTPConnection.flushThreshold { try await connection.flush() }
    }

    /// Ends the response, with `trailers` if the body is chunked (otherwise they are dropped).
    ///
    /// - Throws: ``HTTPServerError/Kind/bodyLengthMismatch`` if fewer bytes than the declared
    ///   Content-Length were written (the connection is then closed after the response).
    public nonisolated(nonsending) func finish(trailers: HTTPFields? = nil) async throws {
        try connection.claim(generation)
        defer { connection.release() }
        switch connection.response.phase {
        case .notStarted: throw HTTPServerError(.responseNotStarted)
        case .finished: throw HTTPServerError(.responseAlreadyStarted)
        case .streaming: try connection.finishResponse(trailers: trailers)
        }
    }

    /// Writes a whole response: `response` with a Content-Length of `body.count` (unless it
    /// has one), then `body`.
    public nonisolated(nonsending) func respond(_ response: HTTPResponse, body: some Collection<UInt8> = [UInt8]()) async throws {
        var response = response
        if response.headerFields[.contentLength] == nil {
            response.headerFields[.contentLength] = String(body.count)
        }
        try await writeHead(response)
        try await write(body)
        try await finish()
    }
}
