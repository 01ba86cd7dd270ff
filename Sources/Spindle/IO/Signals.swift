// Waiting for a signal (SIGINT, SIGTERM...) as an async call, for servers that stop cleanly.
//
// A signal handler (in C, async-signal-safe: an atomic counter per signal and an eventfd write)
// replaces the signal's default action the first time a signal is watched; the waiting task
// reads the eventfd through io_uring and then takes the counters. This works whatever the
// threads' signal masks are, unlike signalfd, which needs the signal blocked in every thread.

import CSpindle
import CURing
import Glibc

/// Signals as async events.
public enum Signals {
    /// Starts delivering `signals` to ``wait(for:)`` instead of their default action, without
    /// waiting yet (so a signal sent between start-up and the first wait is not fatal).
    /// Returns the descriptor the handler writes.
    @discardableResult
    public static func watch(_ signals: [Int32]) throws -> Int32 {
        var fd: Int32 = -1
        for signal in signals {
            fd = spindle_signal_watch(signal)
            if fd < 0 { throw IOError(.read, errno: -fd) }
        }
        return fd
    }

    /// Waits until one of `signals` arrives and returns it. From the first call on, those
    /// signals no longer have their default action (terminating the process) but are
    /// delivered here; a signal that arrives while nobody waits is kept for the next call.
    ///
    /// ```swift
    /// let signal = try await Signals.wait(for: [SIGINT, SIGTERM])
    /// listener.close()   // stop accepting; the server drains and exits
    /// ```
    public static func wait(for signals: [Int32]) async throws -> Int32 {
        let fd = try watch(signals)
        let counter = UnsafeMutablePointer<UInt64>.allocate(capacity: 1)
        defer { counter.deallocate() }  // after the read's completion
        while true {
            for signal in signals where spindle_signal_take(signal) > 0 { return signal }
            let eventFD = fd
            let result = try await IOSubmission.perform { sqe in
                io_uring_prep_read(sqe, eventFD, counter, 8, 0)
            }.result
            if result == -ECANCELED { throw CancellationError() }
            if result < 0 && result != -EINTR && result != -EAGAIN { throw IOError(.read, errno: -result) }
        }
    }
}
