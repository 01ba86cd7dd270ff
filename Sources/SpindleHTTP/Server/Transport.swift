import Spindle

/// The stream a connection is served over: TCP or Unix-domain. An enum rather than a
/// protocol existential, so each call is a switch, not a witness-table dispatch.
enum Transport: Sendable {
    case tcp(TCPStream)
    case unix(UnixStream)

    nonisolated(nonsending) func read(into buffer: inout [UInt8], maxBytes: Int) async throws -> Int {
        switch self {
        case .tcp(let stream): try await stream.read(into: &buffer, maxBytes: maxBytes)
        case .unix(let stream): try await stream.read(into: &buffer, maxBytes: maxBytes)
        }
    }

    nonisolated(nonsending) func write(_ bytes: [UInt8]) async throws {
        switch self {
        case .tcp(let stream): try await stream.write(bytes)
        case .unix(let stream): try await stream.write(bytes)
        }
    }

    /// Closes the stream; a read or write in flight ends with ``SpindleIOError/Kind/closed``. Safe to
    /// call from any thread, more than once.
    func close() {
        switch self {
        case .tcp(let stream): stream.close()
        case .unix(let stream): stream.close()
        }
    }
}
