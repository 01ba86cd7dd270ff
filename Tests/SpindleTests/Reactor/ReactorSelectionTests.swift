import Glibc
import Logging
import Testing
@testable import Spindle

/// Choosing the reactor: the probe's diagnosis (pure), the environment variable, explicit
/// choices, and the backend shown in the metrics.
extension SpindleTests {
    @Suite struct ReactorSelectionTests {
        @Test func eachRefusalIsDiagnosedWithWhatWouldEnableIoUring() {
            func reason(_ code: Int32, _ disabled: Int?, _ memlock: UInt64? = nil) -> String {
                "\(IOUringProbe.diagnose(errno: code, disabled: disabled, lockedMemory: memlock))"
            }
            #expect(reason(EPERM, 2).contains("kernel.io_uring_disabled = 2"))
            #expect(reason(EPERM, 2).contains("sysctl kernel.io_uring_disabled=0"))
            #expect(reason(EPERM, 1).contains("io_uring_group"))
            #expect(reason(EPERM, 0).contains("seccomp filter denies io_uring_setup"))
            #expect(reason(EPERM, nil).contains("seccomp") && reason(EPERM, nil).contains("absent"))
            #expect(reason(ENOSYS, nil).contains("gVisor"))
            #expect(reason(ENOMEM, 0, 64 * 1024).contains("RLIMIT_MEMLOCK is 64 KiB"))
            #expect(reason(ENOMEM, 0, 64 * 1024).contains("ulimit -l"))
        }

        @Test func explicitChoicesAndTheEnvironmentVariableDecide() throws {
            let logger = Logger(label: "test")
            #expect(try ReactorSelection.resolve(.epoll, logger: logger) == .epoll)
            defer { unsetenv(ReactorSelection.environmentVariable) }
            setenv(ReactorSelection.environmentVariable, "epoll", 1)
            #expect(try ReactorSelection.resolve(.automatic, logger: logger) == .epoll)
            // An explicit argument wins over the environment.
            #expect(try ReactorSelection.resolve(.ioUring, logger: logger) == .ioUring)
            setenv(ReactorSelection.environmentVariable, "auto", 1)
            let automatic = try ReactorSelection.resolve(.automatic, logger: logger)
            #expect(automatic == (IOUringProbe.failure == nil ? .ioUring : .epoll))
            setenv(ReactorSelection.environmentVariable, "io_uring", 1)
            #expect(try ReactorSelection.resolve(.automatic, logger: logger) == .ioUring)
        }

        @Test func theMetricsSayWhichReactorRuns() async throws {
            let epoll = try await Runtime.run(workers: 2, reactor: .epoll) { Runtime.current!.metrics() }
            #expect(epoll.reactor == .epoll && epoll.workers.allSatisfy { $0.reactor == .epoll })
            let ring = try await Runtime.run(workers: 1, reactor: .ioUring) { Runtime.current!.metrics() }
            #expect(ring.reactor == .ioUring)
            let loop = try SpindleEventLoop(reactor: .epoll)
            #expect(loop.metrics().reactor == .epoll)
            await loop.shutdown()
        }

        /// On epoll the counters still describe the I/O: readiness events handled, and the
        /// waiting read counted in flight while it waits.
        @Test func epollCountersCountEventsAndWaiters() async throws {
            let (inFlightWhileWaiting, events) = try await Host.eventLoopEpoll.run { () -> (UInt64, UInt64) in
                let (client, server) = try await connectedPair()
                defer {
                    client.close()
                    server.close()
                }
                let loop = SpindleEventLoop.current!
                let reader = Task(executorPreference: loop) { try await server.read() }
                try await eventually("the read waits") { server.core.descriptor.readinessWaiters == 1 }
                let waiting = UInt64(loop.reactor.inFlightCount)
                try await client.write([7])
                #expect(try await reader.value == [7])
                return (waiting, loop.metrics().cqesReaped)
            }
            #expect(inFlightWhileWaiting == 1)
            #expect(events > 0)
        }

        /// A read cancelled while it waits on epoll throws CancellationError, and the bytes
        /// that arrive afterwards go to the next read: nothing is lost.
        @Test(arguments: Host.epoll)
        func aCancelledReadOnEpollLosesNothing(host: Host) async throws {
            let (outcome, next) = try await host.run { () -> (String, [UInt8]) in
                let (client, server) = try await connectedPair()
                defer {
                    client.close()
                    server.close()
                }
                let executor = currentSpindleExecutor()
                let reader = Task(executorPreference: executor) { try await server.read() }
                try await eventually("the read waits") { server.core.descriptor.readinessWaiters == 1 }
                reader.cancel()
                let outcome: String
                do {
                    _ = try await reader.value
                    outcome = "returned"
                } catch is CancellationError {
                    outcome = "cancelled"
                }
                try await client.write([1, 2, 3])
                return (outcome, try await server.readExactly(3))
            }
            #expect(outcome == "cancelled")
            #expect(next == [1, 2, 3])
        }
    }
}
