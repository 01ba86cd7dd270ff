import Synchronization

/// A result handed from a task to a thread that waits for it outside the async world.
final class ResultBox<Success: Sendable>: Sendable {
    private let storage = Lock<Result<Success, any Error>?>(nil)
    private let ready = Gate()

    var isSet: Bool { storage.withLock { $0 != nil } }

    func set(_ result: Result<Success, any Error>) {
        storage.withLock { $0 = result }
        ready.open()
    }

    /// Runs `operation` and stores its outcome.
    func capture(_ operation: () async throws -> Success) async {
        let result: Result<Success, any Error>
        do { result = .success(try await operation()) } catch { result = .failure(error) }
        set(result)
    }

    /// Blocks the calling thread until the outcome is set.
    func wait() {
        ready.wait()
    }

    /// The outcome, once set (blocks until then).
    func get() throws -> Success {
        ready.wait()
        return try storage.withLock { $0! }.get()
    }
}
