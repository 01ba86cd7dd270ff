// Whether this process may use io_uring, asked once: a ring of the size and with the set-up
// flags every worker's uses (Ring+Setup.swift), plus the opcode probe, is set up and torn down
// again, and the verdict is kept for the life of the process (Swift's lazy static: thread-safe,
// once). A failure carries the precise reason and what would enable io_uring:
// - EPERM with /proc/sys/kernel/io_uring_disabled at 2 (disabled for everyone) or 1 (only
//   members of kernel.io_uring_group, and CAP_SYS_ADMIN), or else a seccomp filter (Docker 25+
//   and containerd's default profiles deny io_uring_setup with EPERM);
// - ENOSYS: a kernel without io_uring, or a filter (gVisor, some profiles) that hides it;
// - ENOMEM: the locked-memory limit (kernels before 5.12 charge rings to RLIMIT_MEMLOCK);
// - a missing opcode: an io_uring older than Spindle needs (Linux 5.19).

internal import CSpindle
internal import CURing
import Glibc

enum IOUringProbe {
    /// Why io_uring cannot be used in this process, or nil when it can.
    static let failure: SpindleError? = probe()

    private static func probe() -> SpindleError? {
        let ring = UnsafeMutablePointer<io_uring>.allocate(capacity: 1)
        ring.initialize(to: io_uring())
        defer { ring.deallocate() }
        do throws(SpindleError) {
            _ = try Ring.setUp(ring, adoptable: false)
        } catch {
            return error
        }
        io_uring_queue_exit(ring)
        return nil
    }

    /// The value of /proc/sys/kernel/io_uring_disabled (nil when the kernel has no such
    /// setting, before 6.6).
    static func disabledSetting() -> Int? {
        guard let file = fopen("/proc/sys/kernel/io_uring_disabled", "r") else { return nil }
        defer { fclose(file) }
        var line = [CChar](repeating: 0, count: 16)
        guard fgets(&line, 16, file) != nil else { return nil }
        return Int(String(decoding: line.prefix { $0 >= 48 && $0 <= 57 }.map { UInt8($0) }, as: UTF8.self))
    }

    /// The soft RLIMIT_MEMLOCK in bytes (nil when unlimited or unreadable).
    static func lockedMemoryLimit() -> UInt64? {
        let limit = spindle_locked_memory_limit()
        return limit == .max ? nil : limit
    }

    /// The diagnosis of an io_uring_setup failure with `code`, given the io_uring_disabled
    /// setting and the locked-memory limit (pure: tested with every combination).
    static func diagnose(errno code: Int32, disabled: Int?, lockedMemory: UInt64?) -> SpindleError {
        switch code {
        case EPERM where disabled == 2:
            return .ioUringUnavailable(errno: code, reason: "io_uring is disabled on this host (kernel.io_uring_disabled = 2); `sysctl kernel.io_uring_disabled=0` would enable it")
        case EPERM where disabled == 1:
            return .ioUringUnavailable(errno: code, reason: "io_uring is restricted on this host (kernel.io_uring_disabled = 1: only members of kernel.io_uring_group and CAP_SYS_ADMIN); add the user to that group or set the sysctl to 0")
        case EPERM:
            return .ioUringUnavailable(errno: code, reason: "a seccomp filter denies io_uring_setup (kernel.io_uring_disabled is \(disabled.map(String.init) ?? "absent")); Docker 25+ and containerd's default profiles do this: run with a profile that allows io_uring_setup, io_uring_enter and io_uring_register (e.g. `--security-opt seccomp=<profile>`)")
        case ENOSYS:
            return .ioUringUnavailable(errno: code, reason: "io_uring_setup does not exist here: a kernel without io_uring (CONFIG_IO_URING; Spindle needs Linux 5.19+), or a sandbox that hides it (gVisor, some seccomp profiles)")
        case ENOMEM:
            let limit = lockedMemory.map { "\($0 / 1024) KiB" } ?? "unlimited"
            return .ioUringUnavailable(errno: code, reason: "not enough locked memory for the ring (RLIMIT_MEMLOCK is \(limit)); raise `ulimit -l` (kernels before 5.12 charge rings to it)")
        default:
            return .ioUringUnavailable(errno: code, reason: "io_uring_setup failed")
        }
    }
}
