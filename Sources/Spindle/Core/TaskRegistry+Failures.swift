// Unobserved failures (asyncio's "Task exception was never retrieved"): a spawned task whose
// operation throws, when nobody can ever read the error, is reported through swift-log with
// its name.
//
// What "nobody" can mean with Swift's `Task` handles: a handle's `value` can be awaited at any
// time, even long after the task ended, and Swift offers no hook when a handle is awaited or
// dropped. What can be known is whether a handle still *exists*: a `Task` is one reference to
// the task object, so the object's strong reference count is the number of handles plus the
// runtime's own references. So the check runs when the operation throws (inside the task,
// before it completes) and counts: the Swift runtime holds one reference while the task is
// scheduled or running (taken when it is enqueued, dropped when it completes), and the
// registry's slot holds one handle (for shutdown's cancellation). A count of exactly those two
// means the caller dropped the handle `spawn` returned and every copy of it: the error can
// never be read, and it is logged. Any other handle means someone can still await it (or is
// awaiting it now), and nothing is logged, even if that handle is later dropped unread: a
// handle dropped after the failure looks the same as one dropped after `await task.value`.
//
// Not reported: `CancellationError` (a cancelled task is not a failure, as in asyncio), tasks
// spawned with a non-throwing operation, and a task that fails before `spawn` has attached its
// handle (a failure on another worker in the instant between the task's creation and `spawn`'s
// return): the handle then still exists, in `spawn`'s frame, and may be kept.
//
// Rejected: wrapping the handle in a class whose deinit reports (`spawn` returns a plain
// `Task`, which composes with everything else in Swift concurrency); a weak reference to the
// task object (tasks are not class instances whose weak references Swift supports); reporting
// at shutdown (the handles still held then may have been awaited already).

internal import CSpindle
import Logging

extension TaskRegistry {
    /// The task object's strong references when no `Task` handle exists outside Spindle: the
    /// Swift runtime's while it runs, and the registry slot's.
    static let referencesWithoutOutsideHandles = 2

    /// Called by a spawned task whose operation threw `error`, before it completes.
    func reportIfUnobservable(_ error: any Error, of id: UInt64, name: String?) {
        if error is CancellationError { return }
        let unobservable = withAttachedTask(id) { address in
            return spindle_strong_retain_count(UnsafeRawPointer(bitPattern: address)) <= Self.referencesWithoutOutsideHandles
        }
        guard unobservable == true else { return }
        let label = name.map { "'\($0)'" } ?? "(unnamed)"
        logger.error(
            "spawned task \(label) failed and nobody can await its error (every handle to it was dropped): \(error)",
            metadata: ["task": .string(name ?? "unnamed"), "error": .string(String(describing: error))])
    }
}
