import NIOCore
import SpindleHTTP

/// A SpindleHTTP request body as the `AsyncSequence` of `ByteBuffer`s a Hummingbird
/// `RequestBody` is made from.
///
/// Each element is one read of the body (up to 64 KiB): the bytes are read into a scratch
/// array reused across reads, then copied into a new `ByteBuffer`. So a body byte is copied
/// three times on its way to the application: kernel to the connection's receive buffer, to
/// the scratch array, to the `ByteBuffer` (SwiftNIO's server copies twice: kernel to its
/// buffer, which it then hands on; SpindleHTTP does not depend on NIO, so it cannot fill a
/// `ByteBuffer` itself).
struct RequestBodyStream: AsyncSequence, Sendable {
    typealias Element = ByteBuffer

    let body: HTTPRequestBody

    /// The largest element.
    static let readSize = 64 * 1024

    struct AsyncIterator: AsyncIteratorProtocol {
        let body: HTTPRequestBody
        var scratch: [UInt8] = []

        mutating func next() async throws -> ByteBuffer? {
            guard try await body.read(into: &scratch, maxBytes: RequestBodyStream.readSize) > 0 else { return nil }
            return ByteBuffer(bytes: scratch)
        }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(body: body) }
}
