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

__thread void *spindle_tls_worker __attribute__((tls_model("initial-exec")));
__thread void *spindle_tls_loop __attribute__((tls_model("initial-exec")));
__thread void *spindle_tls_ring __attribute__((tls_model("initial-exec")));

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

extern size_t swift_retainCount(void *object);

size_t spindle_strong_retain_count(const void *object) {
    return swift_retainCount((void *)object);
}
