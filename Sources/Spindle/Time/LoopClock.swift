// An event loop's clock as a Swift `Clock`, so that code written against `some Clock<Duration>`
// (a retry policy, a rate limiter, swift-async-algorithms' `debounce`) runs on the loop's
// virtual time in a test and on real time otherwise (swift-clocks' `TestClock` idea, with
// Tokio's auto-advance instead of a manual `advance`).
//
// `now` is the loop's present (EventLoop/SpindleEventLoop+VirtualTime.swift): CLOCK_MONOTONIC
// on a real loop, the virtual clock on a virtual one. `sleep(until:)` sets a timer on the loop's
// wheels at exactly that instant, from any thread (a task elsewhere sleeps on the loop's
// shared wheel and resumes on its own executor); off the loop, the loop must be running.

/// The clock of a ``SpindleEventLoop``: its real monotonic time, or its virtual time when it
/// was made with ``SpindleEventLoop/ClockMode/virtual``.
///
/// ```swift
/// try await SpindleEventLoop.run(clock: .virtual) {
///     let clock = SpindleEventLoop.current!.clock
///     let start = clock.now
///     try await clock.sleep(for: .seconds(3600))      // returns at once in real time
///     assert(start.duration(to: clock.now) == .seconds(3600))
/// }
/// ```
public struct LoopClock: Clock, Sendable {
    /// A moment on a loop's clock, in nanoseconds on CLOCK_MONOTONIC's scale.
    public struct Instant: InstantProtocol, Sendable, Hashable, Comparable, CustomStringConvertible {
        /// Nanoseconds since CLOCK_MONOTONIC's origin (a virtual clock starts at the real
        /// reading when its loop was made and moves only by jumps).
        public let nanoseconds: UInt64

        /// The instant `nanoseconds` after CLOCK_MONOTONIC's origin.
        public init(nanoseconds: UInt64) { self.nanoseconds = nanoseconds }

        /// This instant moved by `duration` (saturating at the ends of the scale).
        public func advanced(by duration: Duration) -> Instant {
            if duration < .zero {
                let back = (Duration.zero - duration).clampedNanoseconds
                return Instant(nanoseconds: back >= nanoseconds ? 0 : nanoseconds - back)
            }
            let forward = duration.clampedNanoseconds
            return Instant(nanoseconds: forward >= UInt64.max - nanoseconds ? .max : nanoseconds + forward)
        }

        /// The time from this instant to `other` (negative if `other` is earlier).
        public func duration(to other: Instant) -> Duration {
            other.nanoseconds >= nanoseconds
                ? .nanoseconds(Int64(clamping: other.nanoseconds - nanoseconds))
                : .zero - .nanoseconds(Int64(clamping: nanoseconds - other.nanoseconds))
        }

        /// Whether `lhs` comes before `rhs`.
        public static func < (lhs: Instant, rhs: Instant) -> Bool { lhs.nanoseconds < rhs.nanoseconds }

        /// The instant as seconds on the monotonic scale, e.g. `12345.678000000 s`.
        public var description: String {
            let fraction = String(nanoseconds % 1_000_000_000)
            return "\(nanoseconds / 1_000_000_000).\(String(repeating: "0", count: 9 - fraction.count))\(fraction) s"
        }
    }

    /// The loop whose clock this is.
    public let loop: SpindleEventLoop

    /// The clock of `loop`; the same as `loop.clock`.
    public init(_ loop: SpindleEventLoop) { self.loop = loop }

    /// The loop's present. Callable from any thread; on a virtual loop it changes only when
    /// the loop, idle, jumps to its next timer.
    public var now: Instant { Instant(nanoseconds: loop.timerNow) }

    /// The timer wheels' resolution: deadlines are rounded up to a whole millisecond.
    public var minimumResolution: Duration { .milliseconds(1) }

    /// Suspends until the loop's clock reaches `deadline` (never early; on a virtual loop,
    /// exactly then). `tolerance` is ignored.
    ///
    /// - Throws: `CancellationError` if the task is cancelled first.
    public func sleep(until deadline: Instant, tolerance: Duration? = nil) async throws {
        try await Spindle.sleep(on: .loop(Unmanaged.passUnretained(loop)), deadline: deadline.nanoseconds)
    }
}

extension SpindleEventLoop {
    /// This loop's clock, a Swift `Clock`: real monotonic time, or the loop's virtual time
    /// (``ClockMode/virtual``). Pass it where code takes `some Clock<Duration>` so that it follows
    /// the loop's time.
    public var clock: LoopClock { LoopClock(self) }
}
