// One connection's life: read a request head, hand the request to the handler, finish the
// response and the request body, and go round again while the connection may be kept.
//
// Buffers. The receive buffer holds what has arrived and not been consumed, from `readIndex`
// on; before every read the consumed prefix is dropped (the unconsumed rest moved to the
// front), so the buffer never holds more than one read beyond what the parser may still need:
// a head (bounded by `maxHeadBytes`), a chunk size line (4 KiB) or a trailer section (bounded
// like a head). A client that keeps a partial request pending cannot grow it. Responses are
// serialised into the output buffer, which is written when the connection is about to read
// (so pipelined requests already received get their responses in one write), when it holds
// 64 KiB, when `maxPipelinedRequests` responses are waiting in it, and before closing. Both
// buffers, the parser and its field array are reused from one request to the next.
//
// Who touches the state. The connection's task, and the handler it awaits through the request's
// `HTTPRequestBody` and `HTTPResponseWriter`. Those carry the request's generation and claim
// `inUse` for each operation, so one used after its handler returned, or from two tasks at
// once, throws instead of corrupting the buffers; the connection's task claims `inUse` itself
// when the handler returns, before it touches anything. That is what makes the
// `@unchecked Sendable` below sound.

import HTTPTypes
import Logging
import Spindle
import Synchronization

final class HTTPConnection: @unchecked Sendable {
    // @unchecked Sendable: the mutable state is used by one task at a time, under `inUse`
    // (see the essay above).
    let server: HTTPServer
    let watch: ConnectionWatch
    var configuration: HTTPServer.Configuration { server.configuration }
    var transport: Transport { watch.transport }

    static let readSize = 16 * 1024
    static let flushThreshold = 64 * 1024

    var receive: [UInt8] = []
    var readIndex = 0
    private var scratch: [UInt8] = []
    var output: [UInt8] = []
    var parser: RequestHeadParser
    var dates = DateCache()
    /// Responses in `output` not yet written.
    private var bufferedResponses = 0
    /// Requests served on this connection.
    private var served = 0

    // The request being handled.
    let inUse = Atomic<Bool>(false)
    var generation: UInt64 = 0
    var request = RequestState()
    var response = ResponseState()
    var chunkDecoder = ChunkedDecoder(maxBodyBytes: 0, maxTrailerBytes: 0, maxTrailerFields: 0)

    init(server: HTTPServer, watch: ConnectionWatch) {
        self.server = server
        self.watch = watch
        parser = RequestHeadParser(limits: server.configuration.parserLimits)
    }

    var logger: Logger { server.logger }

    /// Serves requests until the connection should end; closes it.
    func run() async {
        defer { transport.close() }
        do {
            try await serveRequests()
        } catch {
            logEnd(error)
        }
    }

    /// Why the watchdog closed the connection, if it did.
    private var closeReason: String {
        guard let phase = watch.expiry else { return "handler error" }
        return server.isShuttingDown ? "shutdown deadline" : phase.timeoutDescription
    }

    private func logEnd(_ error: any Error) {
        if watch.expiry != nil {
            logger.info("HTTP connection closed", metadata: ["reason": "\(closeReason)", "requests": "\(served)"])
        } else if server.isShuttingDown {
            logger.debug("HTTP connection closed by shutdown", metadata: ["requests": "\(served)"])
        } else if let error = error as? SpindleIOError, error.isConnectionReset || error.isBrokenPipe || error.kind == .closed {
            logger.debug("HTTP connection ended by the peer", metadata: ["error": "\(error)"])
        } else if error is CancellationError {
            logger.debug("HTTP connection cancelled")
        } else {
            logger.info("HTTP connection failed", metadata: ["error": "\(error)"])
        }
    }

    private nonisolated(nonsending) func serveRequests() async throws {
        watch.enter(.idle, timeout: configuration.headReadTimeout)
        while true {
            guard try await readHead() else { return }
            let head = parser.head
            let httpRequest: HTTPRequest
            do {
                httpRequest = try receive.withUnsafeBytes { raw throws(HTTPParseError) in
                    try HTTPRequest(head, UnsafeRawBufferPointer(rebasing: raw[readIndex...]))
                }
            } catch let error as HTTPParseError {
                try await refuse(error)
                return
            }
            readIndex += head.length
            begin(head, method: httpRequest.method)
            watch.enter(.handling, timeout: nil)
            let body = HTTPRequestBody(connection: self, generation: generation, expectedLength: request.expectedLength)
            let writer = HTTPResponseWriter(connection: self, generation: generation)
            var failure: (any Error)? = nil
            do {
                try await server.handler(httpRequest, body, writer)
            } catch {
                failure = error
            }
            guard inUse.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else {
                logger.error("HTTP handler returned while its body or writer is still in use; closing the connection")
                return
            }
            generation &+= 1
            inUse.store(false, ordering: .releasing)
            guard try await complete(failure) else { return }
            served += 1
            bufferedResponses += 1
            if server.isShuttingDown { try await flush(); return }
            if bufferedResponses >= configuration.maxPipelinedRequests || output.count >= Self.flushThreshold {
                try await flush()
            }
            watch.enter(.idle, timeout: configuration.keepAliveIdleTimeout)
        }
    }

    /// Reads until a request head is complete (true), or the connection should end quietly:
    /// end of stream, shutdown while idle, a refused head (after its error response).
    private nonisolated(nonsending) func readHead() async throws -> Bool {
        while true {
            let outcome = receive.withUnsafeBytes { raw in
                parser.parse(UnsafeRawBufferPointer(rebasing: raw[readIndex...]))
            }
            switch outcome {
            case .complete:
                return true
            case .failed(let error):
                try await refuse(error)
                return false
            case .needMore:
                try await flush()
                let waitingForFirstByte = readIndex == receive.count
                if waitingForFirstByte {
                    // Idle: the Dekker pair with `shutdown` (see HTTPServer.swift).
                    watch.enter(.idle, timeout: served == 0 ? configuration.headReadTimeout : configuration.keepAliveIdleTimeout)
                    if server.isShuttingDown { return false }
                }
                guard try await readMore() else {
                    if !waitingForFirstByte {
                        logger.info("HTTP connection ended inside a request head",
                                    metadata: ["bytes": "\(receive.count - readIndex)"])
                    }
                    return false
                }
                if waitingForFirstByte { watch.enter(.head, timeout: configuration.headReadTimeout) }
            }
        }
    }

    /// Reads more bytes after the unconsumed ones; false at end of stream.
    nonisolated(nonsending) func readMore() async throws -> Bool {
        if readIndex == receive.count {
            receive.removeAll(keepingCapacity: true)
        } else if readIndex > 0 {
            receive.removeSubrange(0..<readIndex)
        }
        readIndex = 0
        let count = try await transport.read(into: &scratch, maxBytes: Self.readSize)
        if count == 0 { return false }
        receive.append(contentsOf: scratch)
        return true
    }

    /// Writes the buffered output (with the write stall deadline).
    nonisolated(nonsending) func flush() async throws {
        guard !output.isEmpty else { return }
        let phase = watch.phase
        watch.enter(.writing, timeout: configuration.writeStallTimeout)
        try await transport.write(output)
        watch.enter(phase, timeout: nil)
        output.removeAll(keepingCapacity: true)
        bufferedResponses = 0
    }

    /// Answers a refused request with its status and closes.
    nonisolated(nonsending) func refuse(_ error: HTTPParseError) async throws {
        logger.info("HTTP request refused", metadata: ["status": "\(error.status)", "reason": "\(error.kind.rawValue)"])
        request = RequestState()
        appendErrorResponse(status: error.status)
        try await flush()
    }

    /// After the handler: answers for a handler that failed or did not respond, finishes the
    /// response and the request body. True if the connection may carry another request.
    private nonisolated(nonsending) func complete(_ failure: (any Error)?) async throws -> Bool {
        if let failure {
            if case .invalidBody(let status, let reason) = (failure as? HTTPServerError)?.kind,
                response.phase == .notStarted {
                logger.info("HTTP request refused", metadata: ["status": "\(status)", "reason": "\(reason)"])
                appendErrorResponse(status: status)
                try await flush()
                return false
            }
            guard response.phase == .notStarted else {
                logger.error("HTTP handler failed after its response started; closing the connection",
                             metadata: ["error": "\(failure)", "reason": "\(closeReason)"])
                try? await flush()
                return false
            }
            logger.error("HTTP handler failed; answering 500", metadata: ["error": "\(failure)"])
            appendErrorResponse(status: 500)
            try await flush()
            return false
        }
        switch response.phase {
        case .notStarted:
            logger.error("HTTP handler returned without responding; answering 500")
            appendErrorResponse(status: 500)
            try await flush()
            return false
        case .streaming:
            switch response.framing {
            case .chunked:
                appendLastChunk(trailers: nil)
            case .length(let remaining) where remaining > 0:
                logger.error("HTTP handler returned before writing its Content-Length; closing the connection",
                             metadata: ["missing_bytes": "\(remaining)"])
                try? await flush()
                return false
            default:
                break
            }
            response.phase = .finished
        case .finished:
            break
        }
        if response.closesConnection {
            try await flush()
            return false
        }
        return try await discardRestOfBody()
    }
}
