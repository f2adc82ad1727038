/*
 * ticks.h — a cheap, fine-grained interval clock for execution records and
 * latency metrics.
 *
 * Handler deadlines use the coarse clock where they can (util/clock.h):
 * one scheduler tick (4 ms) is plenty to enforce a 30 s timeout, and far
 * too coarse to time a handler that takes microseconds. Timing each call
 * with the precise CLOCK_MONOTONIC costs ~30 ns per read on a VM; the CPU's
 * own counter (the invariant TSC on x86-64, CNTVCT on AArch64) costs a few
 * nanoseconds and is what the vDSO itself reads. Ticks are converted to
 * nanoseconds with a ratio measured once per process against
 * CLOCK_MONOTONIC (x86) or read from the counter's frequency register
 * (AArch64). Where neither counter is usable, a tick is a nanosecond of
 * CLOCK_MONOTONIC.
 *
 * Only intervals on one machine are measured: never compare ticks across
 * processes.
 */
#ifndef CPEX_UTIL_TICKS_H
#define CPEX_UTIL_TICKS_H

#include <stdbool.h>
#include <stdint.h>

#include "util/clock.h"

#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
#endif

/** Whether ticks come from the CPU counter (set once by cpex__ticks_init). */
extern bool cpex__ticks_cpu;
/** ns = ticks * mult >> 32 (set once by cpex__ticks_init). */
extern uint64_t cpex__ticks_mult;

/** Decide the tick source and measure its rate (once per process; thread-safe). */
void cpex__ticks_init(void);

/**
 * Measure the x86 TSC's rate against CLOCK_MONOTONIC now (what
 * cpex__ticks_init does once): nanoseconds per tick as 32.32 fixed point,
 * or 0 where there is no invariant TSC or the rate is not plausible. Takes
 * 2 ms or more (up to about 100 ms on a machine too loaded to read the two
 * clocks close together). For tests; the library uses cpex__ticks_mult.
 */
uint64_t cpex__ticks_measure_rate(void);

/** The interval counter now. */
static inline uint64_t cpex__ticks(void)
{
#if defined(__x86_64__) || defined(__i386__)
    if (__builtin_expect(cpex__ticks_cpu, 1))
        return __rdtsc();
#elif defined(__aarch64__)
    if (__builtin_expect(cpex__ticks_cpu, 1)) {
        uint64_t v;
        __asm__ __volatile__("isb; mrs %0, cntvct_el0" : "=r"(v)::"memory");
        return v;
    }
#endif
    return (uint64_t)cpex__now_ns();
}

/** Nanoseconds as ticks (saturating), for comparing an interval of ticks
 *  with a time limit without converting each reading. */
uint64_t cpex__ticks_from_ns(int64_t ns);

/** A tick interval in nanoseconds (non-negative; a counter that went
 *  backwards across CPUs reads as 0). */
static inline int64_t cpex__ticks_ns(uint64_t from, uint64_t to)
{
    if (to <= from)
        return 0;
    unsigned __int128 ns = (unsigned __int128)(to - from) * cpex__ticks_mult;
    return (int64_t)(ns >> 32);
}

#endif
