// What a W8 or W9 server costs per message (request or round trip) over its load window: the
// CPU time of the server process (user + system, /proc/<pid>/stat), its context switches
// (voluntary + involuntary, summed over /proc/<pid>/task/*/status), and, with
// `spindle-bench --server-cost`, its system calls, counted by `perf stat` on the kernel's
// syscall tracepoints attached to the server process. Messages are the load's own count
// (wrk's requests, the echo client's round trips). The server is the child process itself
// (Spindle, SwiftNIO, Hummingbird) or a peer's process (Tokio, Go); the load is always a process
// of its own, so none of this counts it.
//
// Counting syscalls slows every syscall a little (perf's tracepoint handlers), so the figures
// of a `--server-cost` run's throughput and CPU time are a little worse than a plain run's.

import Foundation
import Glibc

enum ServerCost {
    /// Set in a child's environment by `--server-cost`.
    static let variable = "SPINDLE_BENCH_SERVER_COST"

    static var countsSyscalls: Bool { getenv(variable) != nil }

    /// The syscalls counted one by one (those this kernel has a tracepoint for); the rest are
    /// in the total (`raw_syscalls:sys_enter`) only.
    static let syscalls = [
        "read", "write", "readv", "writev", "recvfrom", "sendto", "recvmsg", "sendmsg",
        "epoll_wait", "epoll_pwait", "epoll_ctl", "io_uring_enter", "futex", "sched_yield",
        "nanosleep", "clock_nanosleep", "accept4", "close", "mmap", "munmap", "madvise",
        "rt_sigprocmask", "getrandom", "tgkill", "setsockopt",
    ]

    private static let tracepoints = "/sys/kernel/tracing/events/syscalls"

    /// CPU seconds and context switches of process `pid` so far.
    struct Sample {
        var cpuSeconds: Double
        var switches: Double
        var threads: Int

        init?(pid: pid_t) {
            guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { return nil }
            // Fields after "(comm)": state is field 3, utime 14, stime 15 (proc(5)).
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            guard fields.count > 13, let user = Double(fields[11]), let system = Double(fields[12]) else { return nil }
            cpuSeconds = (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
            let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? []
            threads = tasks.count
            switches = 0
            for task in tasks {
                guard let status = try? String(contentsOfFile: "/proc/\(pid)/task/\(task)/status", encoding: .utf8)
                else { continue }
                for line in status.split(separator: "\n")
                where line.hasPrefix("voluntary_ctxt_switches") || line.hasPrefix("nonvoluntary_ctxt_switches") {
                    switches += Double(line.split(separator: "\t").last.map { $0.trimmingCharacters(in: .whitespaces) } ?? "") ?? 0
                }
            }
        }
    }

    /// A measurement under way: samples taken (and perf attached) by `start`, finished by
    /// `finish` once the load is done.
    struct Window {
        let pid: pid_t
        let before: Sample?
        let perf: Perf?

        /// Attaches perf if syscalls are counted (and waits until it counts), then samples.
        static func start(pid: pid_t) -> Window {
            let perf = countsSyscalls ? Perf(pid: pid) : nil
            return Window(pid: pid, before: Sample(pid: pid), perf: perf)
        }

        /// The per-message metrics for `messages` messages.
        func finish(messages: Double) -> [Metric] {
            let after = Sample(pid: pid)
            let counts = perf?.stop()
            guard messages > 0, let before, let after else { return [] }
            var metrics = [
                Metric(name: "server_cpu_us_per_msg", value: (after.cpuSeconds - before.cpuSeconds) * 1e6 / messages),
                Metric(name: "server_csw_per_msg", value: (after.switches - before.switches) / messages),
            ]
            if let counts, let total = counts["raw_syscalls:sys_enter"] {
                metrics.append(Metric(name: "server_syscalls_per_msg", value: total / messages))
                for (event, count) in counts where event.hasPrefix("syscalls:sys_enter_") && count / messages >= 0.001 {
                    metrics.append(Metric(name: "sys_\(event.dropFirst("syscalls:sys_enter_".count))_per_msg", value: count / messages))
                }
                if after.threads > before.threads && perf?.inherits == false {
                    printError("spindle-bench child: the server started \(after.threads - before.threads) thread(s) "
                        + "during the load; their syscalls are not counted")
                }
            }
            return metrics
        }
    }

    /// `perf stat` counting the syscalls of one process, in CSV into a temporary file.
    final class Perf {
        private let process = Process()
        private let exited = DispatchSemaphore(value: 0)
        private let path: String
        /// Whether threads (and processes) the server starts after perf attached are counted.
        /// Not when the server is this process: the load process it starts would be counted too.
        let inherits: Bool

        private static let usable: Bool = {
            guard let outcome = try? ChildProcess.run(
                ["/usr/bin/perf", "stat", "-o", "/dev/null", "-e", "raw_syscalls:sys_enter", "true"],
                environment: ProcessInfo.processInfo.environment, timeout: 30) else { return false }
            return outcome.status == 0
        }()

        init?(pid: pid_t) {
            guard Self.usable else {
                printError("spindle-bench child: `perf stat -e raw_syscalls:sys_enter` does not work here: syscalls not counted")
                return nil
            }
            inherits = pid != getpid()
            path = FileManager.default.temporaryDirectory.appendingPathComponent("spindle-bench-perf-\(getpid())-\(pid).csv").path
            let events = ["raw_syscalls:sys_enter"] + ServerCost.syscalls
                .filter { FileManager.default.fileExists(atPath: "\(ServerCost.tracepoints)/sys_enter_\($0)") }
                .map { "syscalls:sys_enter_\($0)" }
            process.executableURL = URL(fileURLWithPath: "/usr/bin/perf")
            process.arguments = ["stat", "-x", ",", "-o", path, "-e", events.joined(separator: ",")]
                + (inherits ? [] : ["--no-inherit"]) + ["-p", String(pid)]
            let exited = self.exited
            process.terminationHandler = { _ in exited.signal() }
            // perf stops on SIGINT, and a spawned process inherits the spawning thread's signal
            // mask: this Dispatch thread blocks SIGINT, so unblock it while perf starts.
            var interrupt = sigset_t(), previous = sigset_t()
            sigemptyset(&interrupt)
            sigaddset(&interrupt, SIGINT)
            pthread_sigmask(SIG_UNBLOCK, &interrupt, &previous)
            defer { pthread_sigmask(SIG_SETMASK, &previous, nil) }
            do { try process.run() } catch {
                printError("spindle-bench child: cannot start perf: \(error)")
                return nil
            }
            // perf attaches to every thread of the server after it starts; the server is idle
            // until the load starts, so counting from a little early costs nothing.
            usleep(300_000)
        }

        /// Stops perf and returns its counts by event name.
        func stop() -> [String: Double]? {
            kill(process.processIdentifier, SIGINT)
            if exited.wait(timeout: .now() + 10) == .timedOut {
                kill(process.processIdentifier, SIGKILL)
                exited.wait()
                return nil
            }
            defer { try? FileManager.default.removeItem(atPath: path) }
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
            var counts: [String: Double] = [:]
            for line in text.split(separator: "\n") where !line.hasPrefix("#") {
                let fields = line.split(separator: ",", omittingEmptySubsequences: false)
                if fields.count > 2, let value = Double(fields[0]) { counts[String(fields[2])] = value }
            }
            return counts
        }
    }
}
