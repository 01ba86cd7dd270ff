// CLOCK_MONOTONIC, the clock every Spindle deadline is kept in, and conversions to it.

import Glibc

/// Nanoseconds on CLOCK_MONOTONIC, the clock every Spindle deadline is kept in.
@inline(__always)
func monotonicNanos() -> UInt64 {
    var spec = timespec()
    clock_gettime(CLOCK_MONOTONIC, &spec)
    return UInt64(spec.tv_sec) &* 1_000_000_000 &+ UInt64(spec.tv_nsec)
}

extension Duration {
    /// The duration in whole nanoseconds, clamped at zero and at about 292 years.
    var clampedNanoseconds: UInt64 {
        // A deadline already in the past is zero, including durations between -1 s and 0,
        // whose components are (0, negative attoseconds).
        if self <= .zero { return 0 }
        let (seconds, attoseconds) = components
        if seconds >= 9_000_000_000 { return UInt64(Int64.max) }
        return UInt64(seconds) * 1_000_000_000 + UInt64(attoseconds / 1_000_000_000)
    }
}

/// Nanoseconds from now until `deadline` (CLOCK_MONOTONIC), zero once it has passed.
func remaining(until deadline: UInt64) -> Int64 {
    let now = monotonicNanos()
    return deadline > now ? Int64(clamping: deadline - now) : 0
}

/// A CLOCK_MONOTONIC deadline `duration` from now, saturating.
func monotonicDeadline(after duration: Duration) -> UInt64 {
    let now = monotonicNanos()
    let nanos = duration.clampedNanoseconds
    return nanos >= UInt64.max - now ? UInt64.max - 1 : now + nanos
}
