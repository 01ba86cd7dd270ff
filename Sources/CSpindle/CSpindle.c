#define _GNU_SOURCE
#include "CSpindle.h"
#include <pthread.h>
#include <sched.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <sys/eventfd.h>
#include <signal.h>
#include <errno.h>
#include <stdatomic.h>
#include <stddef.h>
#include <fcntl.h>
#include <time.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>

__thread void *spindle_tls_worker __attribute__((tls_model("initial-exec")));
__thread void *spindle_tls_loop __attribute__((tls_model("initial-exec")));
__thread void *spindle_tls_ring __attribute__((tls_model("initial-exec")));
__thread void *spindle_tls_epoll __attribute__((tls_model("initial-exec")));

int spindle_fault_injection_flag;

int32_t spindle_gettid(void) { return (int32_t)syscall(SYS_gettid); }

void spindle_set_thread_name(const char *name) { pthread_setname_np(pthread_self(), name); }

int32_t spindle_affinity_cpu_count(void) {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof(set), &set) != 0) return 0;
    return CPU_COUNT(&set);
}

int32_t spindle_restrict_affinity(int32_t count) {
    cpu_set_t set, out;
    CPU_ZERO(&set);
    CPU_ZERO(&out);
    if (sched_getaffinity(0, sizeof(set), &set) != 0) return -1;
    int32_t kept = 0;
    for (int cpu = 0; cpu < CPU_SETSIZE && kept < count; cpu++) {
        if (CPU_ISSET(cpu, &set)) { CPU_SET(cpu, &out); kept++; }
    }
    return sched_setaffinity(0, sizeof(out), &out);
}

// Signals: the handler only does async-signal-safe things (atomic operations and writes).
// Every task waiting in Signals.wait has an eventfd of its own in `spindle_signal_waiters`
// (stored as fd + 1, 0 for a free slot), and the handler writes each one, so no waiter can
// consume another's wake-up. The counts say which signals arrived. A waiter registers its slot
// before it checks the counts, and the handler counts before it reads the slots; both are
// sequentially consistent, so a signal is either seen in the count or wakes the waiter.
// `spindle_signal_in_handler` counts handlers running: a waiter that leaves clears its slot,
// then waits for it to be zero before closing its eventfd, so a handler that read the slot just
// before can never write to a descriptor number the process has reused.
#define SPINDLE_SIGNAL_WAITERS 128
static _Atomic uint32_t spindle_signal_counts[65];
static _Atomic int spindle_signal_waiters[SPINDLE_SIGNAL_WAITERS];
static _Atomic int spindle_signal_in_handler;
static pthread_mutex_t spindle_signal_lock = PTHREAD_MUTEX_INITIALIZER;

static void spindle_signal_handler(int signo) {
    int saved = errno;
    atomic_fetch_add(&spindle_signal_in_handler, 1);
    if (signo > 0 && signo < 65) atomic_fetch_add(&spindle_signal_counts[signo], 1);
    uint64_t one = 1;
    for (int i = 0; i < SPINDLE_SIGNAL_WAITERS; i++) {
        int slot = atomic_load(&spindle_signal_waiters[i]);
        if (slot > 0) {
            ssize_t ignored = write(slot - 1, &one, sizeof one);
            (void)ignored;
        }
    }
    atomic_fetch_sub(&spindle_signal_in_handler, 1);
    errno = saved;
}

int32_t spindle_signal_watch(int32_t signo) {
    if (signo <= 0 || signo >= 65) return -EINVAL;
    pthread_mutex_lock(&spindle_signal_lock);
    struct sigaction action;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_RESTART;
    action.sa_handler = spindle_signal_handler;
    int result = sigaction(signo, &action, NULL);
    int code = result == 0 ? 0 : errno;
    // Let at least the calling thread take it, should it have inherited a mask that blocks it.
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, signo);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
    pthread_mutex_unlock(&spindle_signal_lock);
    return -code;
}

int32_t spindle_signal_waiter_add(void) {
    // Blocking, so that io_uring waits for it to become readable rather than failing the read
    // with EAGAIN. The handler's write cannot block: the counter would have to reach 2^64 - 2.
    int fd = eventfd(0, EFD_CLOEXEC);
    if (fd < 0) return -errno;
    for (int i = 0; i < SPINDLE_SIGNAL_WAITERS; i++) {
        int expected = 0;
        if (atomic_compare_exchange_strong(&spindle_signal_waiters[i], &expected, fd + 1)) return fd;
    }
    close(fd);
    return -EBUSY;
}

void spindle_signal_waiter_remove(int32_t fd) {
    for (int i = 0; i < SPINDLE_SIGNAL_WAITERS; i++) {
        int expected = fd + 1;
        if (atomic_compare_exchange_strong(&spindle_signal_waiters[i], &expected, 0)) break;
    }
    // A handler that read the slot before it was cleared may still write to fd.
    while (atomic_load(&spindle_signal_in_handler) != 0) sched_yield();
    close(fd);
}

int32_t spindle_signal_waiter_count(void) {
    int32_t count = 0;
    for (int i = 0; i < SPINDLE_SIGNAL_WAITERS; i++) {
        if (atomic_load(&spindle_signal_waiters[i]) > 0) count++;
    }
    return count;
}

uint32_t spindle_signal_take(int32_t signo) {
    if (signo <= 0 || signo >= 65) return 0;
    return atomic_exchange(&spindle_signal_counts[signo], 0);
}

// MARK: epoll

int32_t spindle_epoll_wait(int32_t epfd, struct epoll_event *events, int32_t capacity, int64_t nanos) {
    static _Atomic int no_pwait2;
    int result;
    if (!atomic_load_explicit(&no_pwait2, memory_order_relaxed)) {
        struct timespec timeout = { .tv_sec = nanos / 1000000000, .tv_nsec = nanos % 1000000000 };
        result = epoll_pwait2(epfd, events, capacity, nanos < 0 ? NULL : &timeout, NULL);
        if (result >= 0) return result;
        if (errno != ENOSYS) return -errno;
        atomic_store_explicit(&no_pwait2, 1, memory_order_relaxed);
    }
    int millis = nanos < 0 ? -1 : (int)((nanos + 999999) / 1000000);
    if (nanos > (int64_t)2000000000 * 1000000) millis = 2000000000;
    result = epoll_wait(epfd, events, capacity, millis);
    return result >= 0 ? result : -errno;
}

int32_t spindle_epoll_add(int32_t epfd, int32_t fd, uint64_t data, int32_t edge) {
    struct epoll_event event = { 0 };
    event.events = edge ? (EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET) : EPOLLIN;
    event.data.u64 = data;
    return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &event) == 0 ? 0 : -errno;
}

uint64_t spindle_epoll_event_data(const struct epoll_event *events, int32_t index) { return events[index].data.u64; }
uint32_t spindle_epoll_event_mask(const struct epoll_event *events, int32_t index) { return events[index].events; }
int32_t spindle_epoll_event_size(void) { return (int32_t)sizeof(struct epoll_event); }
uint32_t spindle_epoll_read_mask(void) { return EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR | EPOLLPRI; }
uint32_t spindle_epoll_write_mask(void) { return EPOLLOUT | EPOLLHUP | EPOLLERR; }

int32_t spindle_set_nonblocking(int32_t fd, int32_t on) {
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0) return -errno;
    int wanted = on ? (flags | O_NONBLOCK) : (flags & ~O_NONBLOCK);
    if (wanted != flags && fcntl(fd, F_SETFL, wanted) != 0) return -errno;
    return 0;
}

int32_t spindle_accept4(int32_t fd, int32_t flags) { return accept4(fd, NULL, NULL, flags); }

uint64_t spindle_locked_memory_limit(void) {
    struct rlimit limit;
    if (getrlimit(RLIMIT_MEMLOCK, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY) return UINT64_MAX;
    return (uint64_t)limit.rlim_cur;
}

// MARK: seccomp

int32_t spindle_seccomp_deny_io_uring(void) {
#if defined(__x86_64__)
    const uint32_t arch = AUDIT_ARCH_X86_64;
#elif defined(__aarch64__)
    const uint32_t arch = AUDIT_ARCH_AARCH64;
#else
    return -ENOTSUP;
#endif
    // io_uring_setup, io_uring_enter, io_uring_register are 425, 426, 427 on both.
    struct sock_filter program[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, arch, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),  // another ABI: leave it alone
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 425, 3, 0),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 426, 2, 0),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 427, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA)),
    };
    struct sock_fprog filter = { .len = sizeof(program) / sizeof(program[0]), .filter = program };
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return -errno;
    if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &filter) != 0) return -errno;
    return 0;
}

extern size_t swift_retainCount(void *object);

size_t spindle_strong_retain_count(const void *object) {
    return swift_retainCount((void *)object);
}
