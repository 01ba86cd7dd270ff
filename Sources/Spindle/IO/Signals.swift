// Waiting for a signal (SIGINT, SIGTERM...) as an async call, for servers that stop cleanly.
//
// A signal handler (in C, async-signal-safe: an atomic counter per signal and eventfd writes)
// replaces the signal's default action the first time a signal is watched. Each waiting task
// has an eventfd of its own, registered with the handler, which writes every registered one:
// so two tasks waiting at once (for different signals, or the same) each wake, and neither can
// consume the other's wake-up. The waiter reads its eventfd through io_uring and then takes the
// counters. This works whatever the threads' signal masks are, unlike signalfd, which needs the
// signal blocked in every thread.

internal import CSpindle
internal import CURing
import Glibc

/// Signals as async events.
public enum Signals {
    /// Starts delivering `signals` to ``wait(for:)`` instead of their default action, without
    /// waiting yet (so a signal sent between start-up and the first wait is not fatal).
    ///
    /// - Throws: ``SpindleIOError`` (`EINVAL` for a number that is not a signal that can be caught).
    public static func watch(_ signals: [Int32]) throws {
        for signal in signals {
            let result = spindle_signal_watch(signal)
            if result < 0 { throw SpindleIOError(.read, errno: -result) }
        }
    }

    /// Waits until one of `signals` arrives and returns it. From the first call on, those
    /// signals no longer have their default action (terminating the process) but are
    /// delivered here; a signal that arrives while nobody waits is kept for the next call.
    /// Several tasks may wait at once (up to 128); each arrival of a signal is returned to
    /// one of the tasks waiting for it.
    ///
    /// ```swift
    /// let signal = try await Signals.wait(for: [SIGINT, SIGTERM])
    /// listener.close()   // stop accepting; the server drains and exits
    /// ```
    ///
    /// - Throws: `CancellationError`, or ``SpindleIOError`` (`EBUSY` with 128 tasks waiting already).
    public static nonisolated(nonsending) func wait(for signals: [Int32]) async throws -> Int32 {
        try watch(signals)
        let eventFD = spindle_signal_waiter_add()
        if eventFD < 0 { throw SpindleIOError(.read, errno: -eventFD) }
        // After the last read's completion: the kernel is done with the counter and the fd.
        defer { spindle_signal_waiter_remove(eventFD) }
        let counter = UnsafeMutablePointer<UInt64>.allocate(capacity: 1)
        defer { counter.deallocate() }
        while true {
            for signal in signals where spindle_signal_take(signal) > 0 { return signal }
            let result: Int32
            if let epoll = try IOSubmission.epollReactor() {
                result = await readWhenReady(eventFD, into: counter, on: epoll)
            } else {
                result = try await IOSubmission.perform { sqe in
                    io_uring_prep_read(sqe, eventFD, counter, 8, 0)
                }.result
            }
            if result == -ECANCELED { throw CancellationError() }
            if result < 0 && result != -EINTR && result != -EAGAIN { throw SpindleIOError(.read, errno: -result) }
        }
    }

    /// On epoll: reads the (blocking) eventfd once it is readable, so the read never blocks.
    private static nonisolated(nonsending) func readWhenReady(
        _ eventFD: Int32, into counter: UnsafeMutablePointer<UInt64>, on epoll: EpollReactor
    ) async -> Int32 {
        let readiness = Readiness(fd: eventFD, reactor: epoll)
        defer { readiness.deregister() }  // before the caller closes the eventfd
        return Int32(await ReadinessIO.perform(readiness, .read) {
            var request = pollfd(fd: eventFD, events: Int16(POLLIN), revents: 0)
            if poll(&request, 1, 0) == 0 {
                errno = EAGAIN
                return -1
            }
            return read(eventFD, counter, 8)
        })
    }

    /// Tasks waiting in ``wait(for:)`` right now (for tests).
    static var waiterCount: Int { Int(spindle_signal_waiter_count()) }
}
