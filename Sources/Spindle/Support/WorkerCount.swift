// How many workers a runtime gets by default: the CPUs this process may really use, which is
// the smaller of its affinity mask and its cgroup CPU quota (as Go 1.25 and SwiftNIO do), so a
// container limited to 2 CPUs on a 64-core host gets 2 workers, not 64.

internal import CSpindle
import Glibc

enum WorkerCount {
    static func available() -> Int {
        var count = Int(spindle_affinity_cpu_count())
        if count <= 0 { count = max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN))) }
        if let quota = cgroupQuota() { count = min(count, quota) }
        return max(1, count)
    }

    /// `ceil(quota / period)` from cgroup v2's cpu.max, or v1's cfs files; nil when unlimited.
    static func cgroupQuota() -> Int? {
        if let text = readSmallFile("/sys/fs/cgroup/cpu.max") {
            let fields = text.split(whereSeparator: { $0 == " " || $0 == "\n" })
            if fields.count >= 2, let quota = Int(fields[0]), let period = Int(fields[1]), period > 0 {
                return max(1, (quota + period - 1) / period)
            }
            return nil  // "max": no quota
        }
        if let quotaText = readSmallFile("/sys/fs/cgroup/cpu/cpu.cfs_quota_us"),
           let periodText = readSmallFile("/sys/fs/cgroup/cpu/cpu.cfs_period_us"),
           let quota = Int(quotaText.filter { !$0.isWhitespace }),
           let period = Int(periodText.filter { !$0.isWhitespace }),
           quota > 0, period > 0 {
            return max(1, (quota + period - 1) / period)
        }
        return nil
    }

    private static func readSmallFile(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { return nil }
        defer { close(fd) }
        var bytes = [UInt8](repeating: 0, count: 256)
        let n = bytes.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n <= 0 { return nil }
        return String(decoding: bytes[0..<n], as: UTF8.self)
    }
}
