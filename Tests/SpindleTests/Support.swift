import CSpindle
import Glibc
import Synchronization
import Testing
@testable import Spindle

/// Every test that starts runtimes runs inside this serialized suite, so that thread and
/// descriptor counts are meaningful and the 2-core machine is not oversubscribed.
@Suite(.serialized) enum SpindleTests {}

struct TimedOut: Error, CustomStringConvertible {
    let what: String
    let seconds: Double
    var description: String { "timed out after \(seconds) s: \(what)" }
}

/// Runs `operation` but gives up after `seconds`, failing with a diagnostic instead of hanging
/// the test run. (A task group would wait for a hung child; an unstructured task does not.)
func bounded<T: Sendable>(
    _ seconds: Double, _ what: String, _ operation: @escaping @Sendable () async throws -> T
) async throws -> T {
    let once = Atomic<Bool>(false)
    return try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
        let resume: @Sendable (Result<T, any Error>) -> Void = { result in
            if !once.exchange(true, ordering: .acquiringAndReleasing) { continuation.resume(with: result) }
        }
        let work = Task {
            do { resume(.success(try await operation())) } catch { resume(.failure(error)) }
        }
        Task {
            try? await Task.sleep(for: .seconds(seconds))
            work.cancel()
            resume(.failure(TimedOut(what: what, seconds: seconds)))
        }
    }
}

/// Counts entries in a /proc/self directory (threads or descriptors).
func procEntries(_ directory: String) -> Int {
    guard let dir = opendir(directory) else { return -1 }
    defer { closedir(dir) }
    var count = 0
    while let entry = readdir(dir) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        if name != "." && name != ".." { count += 1 }
    }
    return count
}

/// A thread that is not a Spindle worker, for resuming continuations from outside.
func onForeignThread(_ body: @escaping @Sendable () -> Void) {
    var thread = pthread_t()
    final class Box { let body: @Sendable () -> Void; init(_ b: @escaping @Sendable () -> Void) { body = b } }
    let box = Unmanaged.passRetained(Box(body)).toOpaque()
    pthread_create(&thread, nil, { raw in
        let box = Unmanaged<Box>.fromOpaque(raw!).takeRetainedValue()
        // Threads inherit their creator's name; don't pass for a Spindle worker.
        spindle_set_thread_name("test-foreign")
        box.body()
        return nil
    }, box)
    pthread_detach(thread)
}

/// Fake jobs for queue tests: distinct non-null pointers that are stored and moved but never run.
func token(_ i: Int) -> UnownedJob { unsafeBitCast(UInt(i + 1) << 4, to: UnownedJob.self) }
func tokenIndex(_ job: UnownedJob) -> Int { Int(unsafeBitCast(job, to: UInt.self) >> 4) - 1 }

/// The kernel thread id of the caller.
func spindle_test_tid() -> Int32 { spindle_gettid() }

/// Polls `condition` until it holds, failing with `what` after `seconds`.
func eventually(_ what: String, seconds: Double = 5, _ condition: () -> Bool) async throws {
    let deadline = ContinuousClock.now + .seconds(seconds)
    while !condition() {
        if ContinuousClock.now > deadline { throw TimedOut(what: what, seconds: seconds) }
        try await Task.sleep(for: .milliseconds(1))
    }
}

/// The names of this process's threads (from /proc/self/task/*/comm).
func threadNames() -> [String] {
    guard let dir = opendir("/proc/self/task") else { return [] }
    defer { closedir(dir) }
    var names: [String] = []
    while let entry = readdir(dir) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        guard name != ".", name != "..", let file = fopen("/proc/self/task/\(name)/comm", "r") else { continue }
        var buffer = [CChar](repeating: 0, count: 64)
        _ = fgets(&buffer, 64, file)
        fclose(file)
        names.append(String(decoding: buffer.prefix { $0 != 0 && $0 != 10 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
    }
    return names
}

/// Threads of this process whose name starts with `prefix` (and, if `poolThreadsOnly`, that
/// are not a pool's growth monitor, `<name>-mon`).
func threadCount(prefix: String, poolThreadsOnly: Bool = false) -> Int {
    threadNames().filter { $0.hasPrefix(prefix) && !(poolThreadsOnly && $0.hasSuffix("-mon")) }.count
}

extension TimerAction {
    /// The job of a `.job` timer (the wheel tests use fake job tokens).
    var job: UnownedJob {
        guard case .job(let job) = self else { preconditionFailure("not a job timer") }
        return job
    }
}
