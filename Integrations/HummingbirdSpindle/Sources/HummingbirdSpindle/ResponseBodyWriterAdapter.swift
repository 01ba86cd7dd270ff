import HTTPTypes
import Hummingbird
import NIOCore
import SpindleHTTP

/// Hummingbird's `ResponseBodyWriter` over SpindleHTTP's `HTTPResponseWriter`: what a
/// `ResponseBody` writes (a single buffer, a sequence, an `AsyncSequence`, a closure streaming
/// as it goes) goes to the connection's output buffer, from which SpindleHTTP writes it to the
/// socket at 64 KiB, when the connection next reads, or at the end of the response.
///
/// A `ByteBuffer` is written through its `readableBytesView`, whose contiguous storage the
/// writer copies once into the output buffer: no copy beyond the one every response body
/// takes there.
struct ResponseBodyWriterAdapter: ResponseBodyWriter {
    let writer: HTTPResponseWriter

    mutating func write(_ buffer: ByteBuffer) async throws {
        try await writer.write(buffer.readableBytesView)
    }

    consuming func finish(_ trailingHeaders: HTTPFields?) async throws {
        try await writer.finish(trailers: trailingHeaders)
    }
}
