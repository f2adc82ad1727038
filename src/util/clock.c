/* clock.c — see clock.h. */
#include "util/clock.h"

#include <stdatomic.h>

int64_t cpex__now_ns(void) { return cpex__clock_ns(false); }

static _Atomic int64_t coarse_min_timeout = -1;

int64_t cpex__coarse_min_timeout_ns(void)
{
    int64_t v = atomic_load_explicit(&coarse_min_timeout, memory_order_relaxed);
    if (v < 0) {
        struct timespec r;
        if (clock_getres(CPEX__COARSE_CLOCK, &r) == 0 && r.tv_sec == 0 && r.tv_nsec > 0 &&
            r.tv_nsec <= 10000000)
            v = (int64_t)r.tv_nsec * 250;
        else
            v = INT64_MAX;
        atomic_store_explicit(&coarse_min_timeout, v, memory_order_relaxed);
    }
    return v;
}

int64_t cpex__seconds_to_ns(double seconds)
{
    if (!(seconds > 0)) /* NaN too */
        return 0;
    /* 9.2e9 s is the last whole second below INT64_MAX ns; the double
     * product is exact enough to decide, and the cast below is in range. */
    if (seconds >= 9223372036.0)
        return INT64_MAX;
    return (int64_t)(seconds * 1e9);
}
