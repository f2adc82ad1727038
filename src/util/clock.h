/*
 * clock.h — the monotonic clocks libcpex times handlers with, and the one
 * conversion from seconds to nanoseconds.
 */
#ifndef CPEX_UTIL_CLOCK_H
#define CPEX_UTIL_CLOCK_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#ifdef CLOCK_MONOTONIC_COARSE
#define CPEX__COARSE_CLOCK CLOCK_MONOTONIC_COARSE
#else
#define CPEX__COARSE_CLOCK CLOCK_MONOTONIC
#endif

/** CLOCK_MONOTONIC in nanoseconds. */
int64_t cpex__now_ns(void);

/** One step of a spin-wait: tells the processor this thread is waiting. */
static inline void cpex__cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/** CLOCK_MONOTONIC (precise) or its coarse variant (one scheduler tick). */
static inline int64_t cpex__clock_ns(bool coarse)
{
    struct timespec ts;
    clock_gettime(coarse ? CPEX__COARSE_CLOCK : CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/**
 * The shortest timeout, in nanoseconds, that is timed with the coarse
 * clock: 250 ticks of it (1 s with 4 ms ticks), so its error stays under
 * 0.4 % of the budget. INT64_MAX when the coarse clock is unusable.
 */
int64_t cpex__coarse_min_timeout_ns(void);

/**
 * Seconds to nanoseconds, saturating: NaN and values <= 0 give 0, values
 * past INT64_MAX nanoseconds give INT64_MAX. Never undefined behaviour.
 */
int64_t cpex__seconds_to_ns(double seconds);

/** `now + delta` nanoseconds, saturating at INT64_MAX (both non-negative). */
static inline int64_t cpex__deadline_add(int64_t now, int64_t delta)
{
    return delta > INT64_MAX - now ? INT64_MAX : now + delta;
}

#endif
