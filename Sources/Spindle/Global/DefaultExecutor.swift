// Opt-in: Spindle as the process-wide default executor, so every plain `Task {}`, `async let`,
// `Task.detached`, task-group child and default actor runs on a Spindle Runtime, and the main
// actor runs on a SpindleEventLoop driven by the process's main thread.
//
// This uses Swift 6.3's experimental custom-executor hook (`ExecutorFactory`, `MainExecutor`,
// `_createExecutors`), which is SPI: it may change with any toolchain, so everything that
// touches it lives in this one file, behind `#if compiler(>=6.3)`. The library needs no unsafe
// flags; the app calls one function as the first statement of its async `main`. Calling it
// later is too late: jobs already went to the default executors, and Swift makes installing
// after the first enqueue a fatal error (a late install also hangs `MainActor.run`).
//
// Known gap: with a custom main executor, `DispatchQueue.main` blocks only run if the main
// loop drains libdispatch's main queue; this loop does not yet (see the note on the scheduler
// issue).

#if compiler(>=6.3)
@_spi(ExperimentalCustomExecutors) @_spi(ExperimentalScheduling) import _Concurrency
import Synchronization

private let installation = Lock<(runtime: Runtime, main: SpindleEventLoop)?>(nil)

private struct SpindleExecutorFactory: ExecutorFactory {
    static var mainExecutor: any MainExecutor {
        installation.withLock { $0!.main }
    }

    static var defaultExecutor: any TaskExecutor {
        installation.withLock { $0!.runtime }
    }
}

@_spi(ExperimentalCustomExecutors)
extension SpindleEventLoop: MainExecutor {
    /// Runs the loop on the calling thread until ``stop()``.
    public func run() throws {
        runLoop()
    }

    /// Runs the loop on the calling thread until `condition` returns true or ``stop()``.
    public func runUntil(_ condition: () -> Bool) throws {
        runLoop(until: condition)
    }

    /// Stops a loop started with ``run()``.
    public func stop() {
        requestStop()
    }
}

extension Runtime {
    /// Makes a new Spindle runtime the process-wide default executor, and an ``SpindleEventLoop`` on
    /// the main thread the main actor's executor. Returns the runtime.
    ///
    /// Call it as the **first statement** of an async `main`, before anything suspends:
    ///
    /// ```swift
    /// @main struct App {
    ///     static func main() async throws {
    ///         try Runtime.installAsDefaultExecutor()
    ///         async let a = work()      // runs on Spindle
    ///         Task { await more() }     // so does this
    ///         print(await a)
    ///     }
    /// }
    /// ```
    ///
    /// Experimental: built on Swift's custom-executor SPI, which may change between toolchains.
    ///
    /// - Throws: ``SpindleError/shutDown`` if called twice; the errors of ``init(workers:name:blockedWorkerThreshold:logger:reactor:)``.
    @discardableResult
    public static func installAsDefaultExecutor(workers: Int? = nil) throws(SpindleError) -> Runtime {
        let runtime = try Runtime(workers: workers)
        let main = try SpindleEventLoop(onCurrentThread: ())
        let fresh = installation.withLock { current -> Bool in
            if current != nil { return false }
            current = (runtime, main)
            return true
        }
        guard fresh else {
            runtime.shutdownBlocking(gracePeriod: .zero)
            throw SpindleError.shutDown
        }
        _createExecutors(factory: SpindleExecutorFactory.self)
        return runtime
    }
}
#endif
