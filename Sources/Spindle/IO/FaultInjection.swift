// Test support: makes a chosen io_uring request complete with a chosen result, through the
// kernel. After the request's SQE is prepared and before it is submitted, it is rewritten into
// a NOP that completes with that result (IORING_NOP_INJECT_RESULT, Linux 6.9), so the ring, the
// operation table and the code that maps a result to an error or a retry all run exactly as
// for a real completion; only the request itself is not made. This is for results a test
// cannot provoke from a real kernel on demand (-EINTR from a receive, a send or a connect).
//
// A rule names an opcode and optionally a descriptor, and is used once. Unused, the seam costs
// one relaxed load per submission (`spindle_fault_injection_armed`). Relaxed suffices: a test
// arms a rule before it starts the operation, and handing that operation's task to the ring's
// thread (an enqueue, or the same thread) orders the rule before the submission; the rules
// themselves are read under their lock.

internal import CSpindle
internal import CURing
import Synchronization

enum FaultInjection {
    private struct Rule {
        let opcode: UInt8
        let fd: Int32?
        let result: Int32
    }

    private static let rules = Lock<[Rule]>([])
    /// Requests replaced so far. Relaxed: a count read by the test after its operation ended.
    private static let replaced = Atomic<Int>(0)

    /// The next request with `opcode` (on `fd`, if given) completes with `result` instead.
    static func inject(_ result: Int32, into opcode: io_uring_op, fd: Int32? = nil) {
        rules.withLock { rules in
            rules.append(Rule(opcode: UInt8(opcode.rawValue), fd: fd, result: result))
            spindle_set_fault_injection_armed(1)
        }
    }

    /// Drops the rules not used yet.
    static func reset() {
        rules.withLock { rules in
            rules.removeAll()
            spindle_set_fault_injection_armed(0)
        }
    }

    /// How many requests have been replaced since the process started.
    static var replacedCount: Int { replaced.load(ordering: .relaxed) }

    /// Whether the kernel completes a NOP with an injected result (Linux 6.9 and later).
    static nonisolated(nonsending) func isSupported() async throws -> Bool {
        let result = try await IOSubmission.perform { sqe in
            spindle_prep_nop_result(sqe, -EXDEV)
        }.result
        return result == -EXDEV
    }

    /// Rewrites `sqe` if a rule matches it (called by the submission path while armed).
    static func apply(to sqe: UnsafeMutablePointer<io_uring_sqe>) {
        let opcode = sqe.pointee.opcode
        let fd = sqe.pointee.fd
        let result = rules.withLock { rules -> Int32? in
            guard let index = rules.firstIndex(where: { $0.opcode == opcode && ($0.fd ?? fd) == fd }) else {
                return nil
            }
            let rule = rules.remove(at: index)
            if rules.isEmpty { spindle_set_fault_injection_armed(0) }
            return rule.result
        }
        guard let result else { return }
        spindle_prep_nop_result(sqe, result)
        replaced.add(1, ordering: .relaxed)
    }
}
