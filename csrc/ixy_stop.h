/* A stop flag one thread (or a signal handler) raises and a loop running
 * without the GIL polls: relaxed atomics, nothing else is ordered by it. */
#ifndef IXY_STOP_H
#define IXY_STOP_H

#include <stdint.h>
#include <time.h>

static inline void ixy_stop_raise(int *flag) { __atomic_store_n(flag, 1, __ATOMIC_RELAXED); }
static inline int ixy_stop_raised(const int *flag) { return __atomic_load_n(flag, __ATOMIC_RELAXED); }

static inline int64_t ixy_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

#endif
