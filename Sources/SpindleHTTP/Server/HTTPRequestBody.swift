import HTTPTypes

/// The body of a request, read as it arrives.
///
/// ```swift
/// while let bytes = try await body.read() { total += bytes.count }
/// ```
///
/// Reading from it is what makes the server answer `Expect: 100-continue`. What the handler
/// leaves unread is discarded after its response (up to
/// ``HTTPServer/Configuration/maxDiscardedBodyBytes``; past that the connection is closed).
/// Valid only during the handler call it was given to; one task at a time.
public struct HTTPRequestBody: Sendable, AsyncSequence {
    /// A chunk of the body's bytes, as ``read(maxBytes:)`` returns it.
    public typealias Element = [UInt8]

    let connection: HTTPConnection
    let generation: UInt64
    /// The Content-Length of the body (0 when there is none), or nil for a chunked body.
    public let expectedLength: Int?

    init(connection: HTTPConnection, generation: UInt64, expectedLength: Int?) {
        self.connection = connection
        self.generation = generation
        self.expectedLength = expectedLength
    }

    /// The next bytes of the body (at most `maxBytes`), or nil at its end.
    ///
    /// - Throws: ``HTTPServerError`` (`invalidBody` for malformed chunked framing or a body over
    ///   the limit, `truncatedBody`, `requestFinished`, `concurrentUse`), or the connection's
    ///   I/O error.
    public nonisolated(nonsending) func read(maxBytes: Int = 16 * 1024) async throws -> [UInt8]? {
        var bytes: [UInt8] = []
        return try await read(into: &bytes, maxBytes: maxBytes) > 0 || !bytes.isEmpty ? bytes : nil
    }

    /// Replaces `buffer`'s contents with the next bytes of the body (at most `maxBytes`),
    /// reusing its capacity; returns their count, 0 at the end of the body.
    public nonisolated(nonsending) func read(into buffer: inout [UInt8], maxBytes: Int = 16 * 1024) async throws -> Int {
        try connection.claim(generation)
        defer { connection.release() }
        buffer.removeAll(keepingCapacity: true)
        _ = try await connection.readBody(maxBytes: Swift.max(maxBytes, 1)) { buffer.append(contentsOf: $0) }
        return buffer.count
    }

    /// The whole body, which must be at most `limit` bytes.
    ///
    /// - Throws: ``HTTPServerError/Kind/bodyTooLarge`` past `limit`, and what `read` throws.
    public nonisolated(nonsending) func collect(upTo limit: Int) async throws -> [UInt8] {
        if let expectedLength, expectedLength > limit { throw HTTPServerError(.bodyTooLarge) }
        var all: [UInt8] = []
        var chunk: [UInt8] = []
        while try await read(into: &chunk) > 0 {
            guard all.count + chunk.count <= limit else { throw HTTPServerError(.bodyTooLarge) }
            all.append(contentsOf: chunk)
        }
        return all
    }

    /// The trailer fields of a chunked body, once it has been read to its end (nil before, and
    /// for a body without trailers).
    public var trailers: HTTPFields? {
        get throws {
            try connection.claim(generation)
            defer { connection.release() }
            return connection.request.trailers
        }
    }

    /// Reads the body chunk by chunk, for `for try await`.
    public struct AsyncIterator: AsyncIteratorProtocol {
        let body: HTTPRequestBody
        /// The next bytes of the body (at most 16 KiB), or nil at its end; throws what
        /// ``HTTPRequestBody/read(maxBytes:)`` throws.
        public mutating func next() async throws -> [UInt8]? { try await body.read() }
    }

    /// An iterator over the body's chunks as they arrive.
    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(body: self) }
}

extension HTTPConnection {
    /// Claims the request's state for one body or writer operation.
    func claim(_ requestGeneration: UInt64) throws(HTTPServerError) {
        guard inUse.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else {
            throw HTTPServerError(.concurrentUse)
        }
        // Acquiring: this operation sees the state as the previous operation (or the
        // connection's task) left it; `release` publishes this one's changes.
        guard generation == requestGeneration else {
            inUse.store(false, ordering: .releasing)
            throw HTTPServerError(.requestFinished)
        }
    }

    func release() {
        inUse.store(false, ordering: .releasing)
    }
}
