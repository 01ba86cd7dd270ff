#ifndef CSPINDLE_H
#define CSPINDLE_H
// <features.h> first for the same reason as in CURing/shim.h (glibc layouts must match SwiftGlibc).
#include <features.h>
// The kernel's <linux/io_uring.h> before liburing's: both guard on LINUX_IO_URING_H, so the
// ring structures are declared by the one header that other C modules (swift-system's CSystem,
// which SwiftNIO pulls in) include too. With liburing's own copy, a Swift file importing Spindle
// beside NIOPosix failed to build (two differing definitions of io_uring_sqe).
#include <linux/io_uring.h>
#include <liburing.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/socket.h>

/// The per-thread "current worker" and "current event loop" pointers. C `__thread` variables in
/// the initial-exec TLS model are one `fs`-relative load, inlined into Swift: far cheaper than a
/// pthread key or a Swift task-local on the enqueue path (the default model for position-
/// independent code called `__tls_get_addr`, 4.5% of a yield-heavy profile).
extern __thread void *spindle_tls_worker __attribute__((tls_model("initial-exec")));
extern __thread void *spindle_tls_loop __attribute__((tls_model("initial-exec")));
/// The ring of the thread that runs jobs (a worker or an event loop), for I/O operations.
extern __thread void *spindle_tls_ring __attribute__((tls_model("initial-exec")));

static inline void *spindle_current_worker(void) { return spindle_tls_worker; }
static inline void spindle_set_current_worker(void *worker) { spindle_tls_worker = worker; }
static inline void *spindle_current_loop(void) { return spindle_tls_loop; }
static inline void spindle_set_current_loop(void *loop) { spindle_tls_loop = loop; }
static inline void *spindle_current_ring(void) { return spindle_tls_ring; }
static inline void spindle_set_current_ring(void *ring) { spindle_tls_ring = ring; }
/// The epoll reactor of the thread that runs jobs, when its executor runs on epoll (the ring's
/// slot is then empty; Reactor/Reactor.swift).
extern __thread void *spindle_tls_epoll __attribute__((tls_model("initial-exec")));
static inline void *spindle_current_epoll(void) { return spindle_tls_epoll; }
static inline void spindle_set_current_epoll(void *reactor) { spindle_tls_epoll = reactor; }

/// The kernel thread id of the calling thread (gettid is _GNU_SOURCE-only in glibc headers).
int32_t spindle_gettid(void);

/// Names the calling thread (at most 15 bytes are kept by the kernel).
void spindle_set_thread_name(const char *name);

/// Number of CPUs in the calling thread's affinity mask, or 0 if it cannot be read.
int32_t spindle_affinity_cpu_count(void);

/// Pins the calling thread to the first `count` CPUs of its current mask (0 on success).
int32_t spindle_restrict_affinity(int32_t count);

/// A spin-wait hint to the CPU (x86 `pause`, arm64 `yield`).
static inline void spindle_cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
/// The strong reference count of a Swift heap object (the Swift runtime's `swift_retainCount`,
/// which the standard library's `_getRetainCount` calls): how many `Task` handles to a task
/// exist, for the unobserved-failure check in Core/TaskRegistry.swift.
size_t spindle_strong_retain_count(const void *object);

#endif
}

/// Starts watching signal `signo` (sigaction with a handler that counts it and writes every
/// waiter's eventfd). Returns 0, or -errno.
int32_t spindle_signal_watch(int32_t signo);

/// Registers a waiter: a new eventfd that every watched signal writes. Returns it,
/// or -errno (-EBUSY when 128 waiters are registered already).
int32_t spindle_signal_waiter_add(void);

/// Unregisters the waiter `fd` and closes it (once no handler can be writing to it).
void spindle_signal_waiter_remove(int32_t fd);

/// How many waiters are registered (for tests).
int32_t spindle_signal_waiter_count(void);

/// How many times `signo` arrived since the last call (resets the count).
uint32_t spindle_signal_take(int32_t signo);

/// Socket constants: glibc declares them as enum values plus same-named macros, which Swift
/// sees differently through Glibc and through this module; these are unambiguous.
static inline int spindle_sock_stream(void) { return SOCK_STREAM; }
static inline int spindle_sock_dgram(void) { return SOCK_DGRAM; }
static inline int spindle_sock_cloexec(void) { return SOCK_CLOEXEC; }
static inline int spindle_msg_nosignal(void) { return MSG_NOSIGNAL; }

/// Test support (IO/FaultInjection.swift): nonzero while a test wants some request replaced
/// by an injected result. Submissions read it with one relaxed load, so unused it costs that.
extern int spindle_fault_injection_flag;
static inline int spindle_fault_injection_armed(void) {
    return __atomic_load_n(&spindle_fault_injection_flag, __ATOMIC_RELAXED);
}
static inline void spindle_set_fault_injection_armed(int armed) {
    __atomic_store_n(&spindle_fault_injection_flag, armed, __ATOMIC_RELAXED);
}

/// Turns `sqe` into a NOP that completes with `result` (IORING_NOP_INJECT_RESULT, Linux 6.9;
/// older kernels complete it with 0). The flag goes in the op-flags union (`nop_flags`, which
/// liburing 2.3's headers do not name) and the result in `len`.
static inline void spindle_prep_nop_result(struct io_uring_sqe *sqe, int32_t result) {
    io_uring_prep_nop(sqe);
    sqe->rw_flags = 1U << 0;
    sqe->len = (uint32_t)result;
}

/// IORING_ASYNC_CANCEL_ANY (missing from liburing 2.3's headers).
static inline uint32_t spindle_cancel_flag_any(void) { return 1U << 2; }

/// Multishot accept (liburing 2.3 has the helper, but its flag is a macro on some versions).
static inline void spindle_prep_multishot_accept(struct io_uring_sqe *sqe, int fd, int flags) {
    io_uring_prep_multishot_accept(sqe, fd, NULL, NULL, flags);
}

/// Whether a CQE says more completions follow for the same request (multishot).
static inline int spindle_cqe_has_more(uint32_t flags) { return (flags & IORING_CQE_F_MORE) != 0; }

/// Whether the kernel flags deferred task work (completions not yet posted) or a CQ overflow.
static inline int spindle_ring_has_deferred_work(struct io_uring *ring) {
    return (IO_URING_READ_ONCE(*ring->sq.kflags) & (IORING_SQ_CQ_OVERFLOW | IORING_SQ_TASKRUN)) != 0;
}

// MARK: epoll (Reactor/EpollReactor.swift)

/// epoll_pwait2 with a timeout in nanoseconds (negative: none), falling back to epoll_wait
/// with the timeout rounded up to milliseconds where the kernel lacks epoll_pwait2 (< 5.11).
/// Returns the number of events, or -errno.
int32_t spindle_epoll_wait(int32_t epfd, struct epoll_event *events, int32_t capacity, int64_t nanos);

/// Registers `fd` edge-triggered for reading and writing (EPOLLIN|EPOLLOUT|EPOLLRDHUP|EPOLLET)
/// with `data` as its tag, or level-triggered for reading only when `edge` is 0. 0 or -errno.
int32_t spindle_epoll_add(int32_t epfd, int32_t fd, uint64_t data, int32_t edge);

/// The tag and the events of `events[index]` (the struct is packed on x86_64).
uint64_t spindle_epoll_event_data(const struct epoll_event *events, int32_t index);
uint32_t spindle_epoll_event_mask(const struct epoll_event *events, int32_t index);
/// The size of one `struct epoll_event`.
int32_t spindle_epoll_event_size(void);

/// Readiness masks: what wakes a reader, what wakes a writer.
uint32_t spindle_epoll_read_mask(void);
uint32_t spindle_epoll_write_mask(void);

/// Sets or clears O_NONBLOCK on `fd`. 0 or -errno.
int32_t spindle_set_nonblocking(int32_t fd, int32_t on);

/// accept4 (not exported by Swift's Glibc module). The descriptor, or -1 with errno set.
int32_t spindle_accept4(int32_t fd, int32_t flags);

/// The soft RLIMIT_MEMLOCK in bytes (UINT64_MAX when unlimited or unreadable).
uint64_t spindle_locked_memory_limit(void);

/// SOCK_NONBLOCK, for sockets created for a non-blocking connect.
static inline int spindle_sock_nonblock(void) { return SOCK_NONBLOCK; }
/// MSG_DONTWAIT.
static inline int spindle_msg_dontwait(void) { return MSG_DONTWAIT; }

// MARK: seccomp (tests and examples)

/// Installs a seccomp filter on the calling thread (and the threads it creates afterwards) that
/// makes io_uring_setup, io_uring_enter and io_uring_register fail with EPERM, as Docker's
/// default profile does; the filter checks the architecture (x86_64, aarch64) and allows
/// everything else. Needs no privilege (it sets PR_SET_NO_NEW_PRIVS first). 0 or -errno
/// (-ENOTSUP on another architecture).
int32_t spindle_seccomp_deny_io_uring(void);

/// The strong reference count of a Swift heap object (the Swift runtime's `swift_retainCount`,
/// which the standard library's `_getRetainCount` calls): how many `Task` handles to a task
/// exist, for the unobserved-failure check in Core/TaskRegistry.swift.
size_t spindle_strong_retain_count(const void *object);

#endif
