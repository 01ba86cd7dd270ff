#define _GNU_SOURCE
#include "CSpindle.h"
#include <pthread.h>
#include <sched.h>
#include <unistd.h>
#include <sys/syscall.h>

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
