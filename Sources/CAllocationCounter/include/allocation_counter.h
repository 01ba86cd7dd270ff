// Counts the process's heap allocations, for tests that check a hot path allocates nothing
// (SwiftNIO's allocation-counter tests, in-process). Linked only into the test binary: it
// defines malloc and friends, which then interpose glibc's for the whole process (the
// executable's definitions win over libc's in symbol resolution) and forward to glibc's
// internal entry points. Under the thread or address sanitizer, which interpose malloc
// themselves, nothing is defined and the counter stays at zero
// (`spindle_allocation_counter_is_active` says which).
#pragma once
#include <stdint.h>

/// Allocations (malloc, calloc, realloc, posix_memalign, aligned_alloc, memalign) since the
/// process started, over all threads. Relaxed: a test reads it before and after the work it
/// measures, on a thread ordered after that work by the test's own synchronisation.
uint64_t spindle_allocation_count(void);

/// Whether this build counts (false under a sanitizer).
int spindle_allocation_counter_is_active(void);
