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

// Signals: the handler only does async-signal-safe things (an atomic add and a write).
static _Atomic uint32_t spindle_signal_counts[65];
static int spindle_signal_eventfd = -1;
static pthread_mutex_t spindle_signal_lock = PTHREAD_MUTEX_INITIALIZER;

static void spindle_signal_handler(int signo) {
    int saved = errno;
    if (signo > 0 && signo < 65) atomic_fetch_add(&spindle_signal_counts[signo], 1);
    uint64_t one = 1;
    ssize_t ignored = write(spindle_signal_eventfd, &one, sizeof one);
    (void)ignored;
    errno = saved;
}

int32_t spindle_signal_watch(int32_t signo) {
    if (signo <= 0 || signo >= 65) return -EINVAL;
    pthread_mutex_lock(&spindle_signal_lock);
    if (spindle_signal_eventfd < 0) {
        spindle_signal_eventfd = eventfd(0, EFD_CLOEXEC);
        if (spindle_signal_eventfd < 0) {
            int code = errno;
            pthread_mutex_unlock(&spindle_signal_lock);
            return -code;
        }
    }
    struct sigaction action;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_RESTART;
    action.sa_handler = spindle_signal_handler;
    int result = sigaction(signo, &action, NULL);
    // Let at least the calling thread take it, should it have inherited a mask that blocks it.
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, signo);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
    int fd = spindle_signal_eventfd;
    pthread_mutex_unlock(&spindle_signal_lock);
    return result == 0 ? fd : -errno;
}

uint32_t spindle_signal_take(int32_t signo) {
    if (signo <= 0 || signo >= 65) return 0;
    return atomic_exchange(&spindle_signal_counts[signo], 0);
}
