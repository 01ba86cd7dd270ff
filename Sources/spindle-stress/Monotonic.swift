import Glibc

/// CLOCK_MONOTONIC in nanoseconds: the clock Spindle's timers use.
func monotonicNanos() -> UInt64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return UInt64(now.tv_sec) &* 1_000_000_000 &+ UInt64(now.tv_nsec)
}

/// Seconds since `start` (a `monotonicNanos()` reading).
func secondsSince(_ start: UInt64) -> Double {
    Double(monotonicNanos() &- start) / 1e9
}
