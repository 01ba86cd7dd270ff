// Child mode: one process, one runtime, one workload, one RESULT line.
//
// The process's main thread only sets the runtime up, starts the workload's root task on it
// and blocks until the task is done; all timing happens inside the root task. A workload that
// fails its own check prints why on stderr and the child exits non-zero.

import Dispatch
import Glibc
import NIOCore
import NIOPosix
import Spindle
import Synchronization

struct Child {
    let runtime: RuntimeKind
    let workload: WorkloadID
    let threads: Int
    let sizes: Sizes
    /// Whether `sizes` are the quick ones (a peer's binary is told so).
    let quick: Bool

    /// Returns the process exit status.
    func run() -> Int32 {
        if runtime.isSingleThreaded && threads != 1 {
            return fail("\(runtime.rawValue) is single-threaded; it runs only with --threads 1")
        }
        if runtime.isPeer && workload != .w8 && workload != .w9 {
            // The driver runs a peer's W1-W7 binary directly; `--child` (Scripts/interleaved.sh)
            // passes its RESULT line on.
            guard let command = Peers.workloadCommand(runtime, workload, threads: threads, quick: quick),
                  let outcome = try? ChildProcess.run(command, environment: [:], timeout: 600)
            else { return fail("no \(runtime.rawValue) binary in \(Peers.directory)") }
            print(outcome.output, terminator: "")
            return outcome.status
        }
        if runtime == .swiftNIO {
            // Must precede every other use of Swift concurrency in the process. The loop count
            // comes from NIO_SINGLETON_GROUP_LOOP_COUNT, which the driver sets.
            guard NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()
            else { return fail("SwiftNIO refused to become the global executor") }
        }
        let host: Host
        do {
            host = try Host(runtime, threads: threads)
        } catch {
            return fail("cannot start \(runtime.rawValue): \(error)")
        }
        let context = WorkloadContext(runtime: runtime, threads: threads, executor: host.executor, sizes: sizes)
        let workload = self.workload
        let outcome = blockOn(executor: host.executor) { try await workload.run(context) }
        switch outcome {
        case .success(let metrics):
            let fields = metrics.map { "\($0.name)=\(format($0.value))" }.joined(separator: " ")
            print("RESULT \(runtime.rawValue) \(workload.rawValue) \(threads) \(fields)")
            fflush(nil)  // the driver may kill a child that hangs later, in shutdown
        case .failure(let error):
            return fail("\(workload.rawValue) on \(runtime.rawValue) x\(threads): \(error)")
        }
        if workload == .w11 {
            // Its tasks wait forever by design; shutting down would only wait for them.
            return 0
        }
        _ = blockOn(executor: nil) { await host.shutdown() }
        return 0
    }

    private func fail(_ message: String) -> Int32 {
        let line = Array("spindle-bench child: \(message)\n".utf8)
        _ = line.withUnsafeBytes { write(STDERR_FILENO, $0.baseAddress, $0.count) }
        return 1
    }

    private func format(_ value: Double) -> String {
        let text = String(Int((value * 1000).rounded()))
        // Three decimals without Foundation: 12345 -> "12.345".
        let digits = text.hasPrefix("-") ? String(text.dropFirst()) : text
        let padded = String(repeating: "0", count: max(0, 4 - digits.count)) + digits
        return (text.hasPrefix("-") ? "-" : "") + padded.dropLast(3) + "." + padded.suffix(3)
    }
}

/// The runtime under test, as the workloads see it: the executor preference for their tasks
/// (nil means Swift's global executor, which is SwiftNIO after its takeover).
struct Host: Sendable {
    let executor: (any TaskExecutor)?
    private let stop: @Sendable () async -> Void

    init(_ kind: RuntimeKind, threads: Int) throws {
        switch kind {
        case .spindle, .hummingbirdSpindle:
            let runtime = try Runtime(workers: threads)
            executor = runtime
            stop = { await runtime.shutdown(gracePeriod: .seconds(5)) }
        case .eventloop:
            let loop = try SpindleEventLoop(name: "bench-loop")
            executor = loop
            stop = { await loop.shutdown(gracePeriod: .seconds(5)) }
        case .floor:
            let floor = FloorExecutor()
            executor = floor
            stop = { floor.shutdown() }
        case .swiftDefault, .swiftNIO, .hummingbird, .tokio, .go:
            executor = nil
            stop = {}
        }
    }

    func shutdown() async { await stop() }
}

/// Runs `operation` as a new task preferring `executor` and blocks the calling thread until
/// it finishes. The calling thread must not be one the task needs (here: the main thread,
/// which no runtime under test uses).
func blockOn<T: Sendable>(
    executor: (any TaskExecutor)?, _ operation: sending @escaping () async throws -> T
) -> Result<T, any Error> {
    let outcome = Outcome<T>()
    let done = DispatchSemaphore(value: 0)
    Task(executorPreference: executor) {
        let result: Result<T, any Error>
        do { result = .success(try await operation()) } catch { result = .failure(error) }
        outcome.value.withLock { $0 = result }
        done.signal()
    }
    done.wait()
    return outcome.value.withLock { $0! }
}

private final class Outcome<T: Sendable>: Sendable {
    let value = Mutex<Result<T, any Error>?>(nil)
}
