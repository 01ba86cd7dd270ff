// How a task performs one io_uring request and waits for it.
//
// 1. Find the ring of the thread the task is running on (a worker's or an event loop's). A task
//    on some other thread (Swift's default executor, a plain thread) is moved for the duration
//    of the request onto the process's I/O loop (`IOLoop`), a `SpindleEventLoop` started on first use,
//    and returns to its own executor afterwards.
// 2. Reserve a slot in that ring, then suspend: inside the continuation closure, which runs
//    synchronously on the same thread, prepare the SQE with the slot's user_data and attach the
//    continuation. The ring submits it with the next batch.
// 3. The task resumes when the completion is reaped, on the ring's thread, and never before:
//    whatever the kernel may write or read (a buffer, a sockaddr, a timespec) lives in the
//    caller's frame or in an object it holds, and stays valid for as long as the kernel owns it.
//    This is what makes a cancelled read safe by construction.
// 4. Cancellation of the task submits IORING_OP_ASYNC_CANCEL for the slot on the owning ring
//    (from the cancelling thread through the ring's inbox; a cancel drained before the request
//    was attached makes the attach refuse it, and the task resumes with -ECANCELED). The original request then completes,
//    with -ECANCELED or with a result that raced in; the caller decides what that means (a read
//    that got data returns the data).

internal import CSpindle
internal import CURing
import Glibc

enum IOSubmission {
    /// Performs one request on the calling thread's ring and returns its completion. `prepare`
    /// fills the SQE (its user_data is set afterwards); everything it points the kernel at must
    /// stay valid until this returns. Throws only if the task is on no ring and the process's
    /// I/O loop cannot be started.
    ///
    /// `nonisolated(nonsending)`, like every I/O operation of Spindle's: it runs on its
    /// caller's executor, so a task on a worker reaches its ring with no executor switch (a
    /// nonisolated async call is a `swift_task_switch` on entry and on return, each taking the
    /// task's status-record lock to find its preferred executor: 4 of them per request, nearly
    /// 12 per echoed message through the layers of a read, before these annotations).
    static nonisolated(nonsending) func perform(
        _ prepare: (UnsafeMutablePointer<io_uring_sqe>) -> Void
    ) async throws -> IOCompletion {
        if let ring = Ring.current {
            let completion = await perform(on: ring, prepare)
            if completion.result != IOCompletion.notSubmitted.result { return completion }
        }
        // Off a ring the request is prepared here, into a copy, while the caller's closure is
        // still in reach: the caller's executor (an actor's, say) must be left before the
        // request moves to the I/O loop, and the closure cannot go with it.
        var template = SubmissionTemplate()
        prepare(&template.sqe)
        return try await performOffRing(template)
    }

    /// A request prepared off a ring, to be copied into a ring's SQE. @unchecked Sendable: a
    /// plain 64-byte value whose pointers lead to memory of the awaiting caller, which stays
    /// suspended (and keeps that memory) until the request's completion.
    struct SubmissionTemplate: @unchecked Sendable {
        var sqe = io_uring_sqe()
    }

    /// `perform` for a caller on no ring's thread (Swift's default executor, an actor with its
    /// own executor, a plain thread): the request moves onto the process's I/O loop for its
    /// duration. `@concurrent`, so the caller's own executor is left first and taken again
    /// after the return. (Nonsending, with the preference for the loop set from inside an
    /// actor, the actor's code went on running on the shared loop's thread afterwards: a
    /// default actor runs its jobs on the task's preferred executor.)
    @concurrent
    private static func performOffRing(_ template: SubmissionTemplate) async throws -> IOCompletion {
        while true {
            let loop = try IOLoop.shared()
            // Only io_uring requests come here (ReadinessIO.swift routes the rest); with
            // the I/O loop on epoll there is no ring to take them.
            if loop.reactor.ring == nil {
                throw SpindleError.ioUringUnavailable(errno: ENOTSUP, reason: "this request needs io_uring, and the process I/O loop runs on epoll")
            }
            let completion = try await withTaskExecutorPreference(loop) {
                try await performHere { $0.pointee = template.sqe }
            }
            if completion.result != IOCompletion.notSubmitted.result { return completion }
        }
    }

    /// `perform`, for a task that has just been moved onto a ring's thread.
    private static nonisolated(nonsending) func performHere(
        _ prepare: (UnsafeMutablePointer<io_uring_sqe>) -> Void
    ) async throws -> IOCompletion {
        guard let ring = Ring.current else { return .notSubmitted }
        return await perform(on: ring, prepare)
    }

    private static nonisolated(nonsending) func perform(
        on ring: Ring, _ prepare: (UnsafeMutablePointer<io_uring_sqe>) -> Void
    ) async -> IOCompletion {
        // Already cancelled: nothing is submitted, so nothing can be lost.
        if Task.isCancelled { return IOCompletion(result: -ECANCELED, flags: 0) }
        let userData = ring.reserve()
        let activity = SpawnedTaskRecord.ofCurrentTask  // for the task dump (Support/TaskActivity.swift)
        defer { activity?.resumed() }
        return await _unsafeInheritExecutor_withTaskCancellationHandler {
            await withUnsafeContinuation { (continuation: UnsafeContinuation<IOCompletion, Never>) in
                // Still the thread that reserved the slot: nothing between the reservation and
                // this closure suspends. Checked anyway: only the ring's owner submits.
                guard Ring.current === ring else {
                    ring.requestRelease(userData)
                    continuation.resume(returning: .notSubmitted)
                    return
                }
                ring.submit(userData, waiter: continuation) { sqe in
                    prepare(sqe)
                    activity?.suspending(on: TaskWait.io(opcode: sqe.pointee.opcode, descriptor: sqe.pointee.fd))
                    // Tests only: a request a rule names completes with the rule's result.
                    if spindle_fault_injection_armed() != 0 { FaultInjection.apply(to: sqe) }
                }
            }
        } onCancel: {
            ring.requestCancel(userData)
        }
    }

    /// Starts a multishot request feeding `sink` on the calling thread's ring (which must
    /// exist: callers move onto a ring first). Returns the ring and the request's user_data
    /// (to cancel it).
    static func startMultishot(
        on ring: Ring, sink: any CompletionSink,
        _ prepare: (UnsafeMutablePointer<io_uring_sqe>) -> Void
    ) -> UInt64 {
        ring.startMultishot(sink: sink, prepare)
    }
}

/// The event loop that performs I/O for tasks that are not on a Spindle thread.
enum IOLoop {
    private static let loop = LazyEventLoop(name: "spindle-io")

    /// The loop, started on first use. A start that fails (descriptors or threads ran out)
    /// throws and is tried again by the next call.
    static func shared() throws(SpindleError) -> SpindleEventLoop {
        try loop.get()
    }
}

/// An event loop started by the first call that needs it. A failed start is not remembered:
/// the error goes to that caller, and the next call tries again (the failure is usually
/// transient: EMFILE, EAGAIN from thread creation).
final class LazyEventLoop: Sendable {
    private let name: String
    /// The loop once started. Calls that find it nil start it under the lock, so at most one
    /// loop is ever started.
    private let loop = Lock<SpindleEventLoop?>(nil)

    init(name: String) {
        self.name = name
    }

    func get() throws(SpindleError) -> SpindleEventLoop {
        let result = loop.withLock { loop -> Result<SpindleEventLoop, SpindleError> in
            if let loop { return .success(loop) }
            do throws(SpindleError) {
                let started = try SpindleEventLoop(name: name)
                loop = started
                return .success(started)
            } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }
}
