import Synchronization

/// A result handed from a task to a thread that waits for it outside the async world.
final class ResultBox<Success: Sendable>: Sendable {
    private let storage = Lock<Result<Success, any Error>?>(nil)

    var isSet: Bool { storage.withLock { $0 != nil } }

    func set(_ result: Result<Success, any Error>) {
        storage.withLock { $0 = result }
    }

    /// Runs `operation` and stores its outcome.
    func capture(_ operation: () async throws -> Success) async {
        let result: Result<Success, any Error>
        do { result = .success(try await operation()) } catch { result = .failure(error) }
        set(result)
    }

    func get() throws -> Success {
        guard let result = storage.withLock({ $0 }) else { fatalError("ResultBox read before it was set") }
        return try result.get()
    }
}
