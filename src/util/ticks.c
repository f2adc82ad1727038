/* ticks.c — see ticks.h. */
#include "util/ticks.h"

#include <pthread.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

bool cpex__ticks_cpu;
uint64_t cpex__ticks_mult = (uint64_t)1 << 32; /* 1 ns per tick until measured */

static pthread_once_t once = PTHREAD_ONCE_INIT;

#if defined(__x86_64__) || defined(__i386__)
/* The TSC counts at a constant rate in every power state only when the CPU
 * says so (invariant TSC, CPUID 0x80000007 EDX bit 8). */
static bool tsc_invariant(void)
{
    unsigned a, b, c, d;
    if (!__get_cpuid(0x80000000u, &a, &b, &c, &d) || a < 0x80000007u)
        return false;
    __get_cpuid(0x80000007u, &a, &b, &c, &d);
    return (d & (1u << 8)) != 0;
}

/* Nanoseconds per tick as a 32.32 fixed-point number, measured over about
 * 2 ms against CLOCK_MONOTONIC: each end pairs a counter read with the
 * clock reads around it, so the error is a few ns in 2 ms (1e-5). 0 when
 * the rate is not plausible (a counter that does not move, or runs at
 * under 100 MHz or over 20 GHz). */
static uint64_t measure_tsc(void)
{
    int64_t a0 = cpex__now_ns();
    uint64_t c0 = __rdtsc();
    int64_t a1 = cpex__now_ns();
    int64_t t0 = a0 + (a1 - a0) / 2;
    int64_t t1 = t0;
    uint64_t c1 = c0;
    while (t1 - t0 < 2000000) {
        int64_t b0 = cpex__now_ns();
        c1 = __rdtsc();
        int64_t b1 = cpex__now_ns();
        t1 = b0 + (b1 - b0) / 2;
    }
    if (c1 <= c0)
        return 0;
    double ns_per_tick = (double)(t1 - t0) / (double)(c1 - c0);
    if (!(ns_per_tick > 0.05 && ns_per_tick < 10.0))
        return 0;
    return (uint64_t)(ns_per_tick * 4294967296.0);
}
#endif

static void init_once(void)
{
#if defined(__x86_64__) || defined(__i386__)
    if (tsc_invariant()) {
        uint64_t mult = measure_tsc();
        if (mult) {
            cpex__ticks_mult = mult;
            cpex__ticks_cpu = true;
        }
    }
#elif defined(__aarch64__)
    uint64_t freq;
    __asm__ __volatile__("mrs %0, cntfrq_el0" : "=r"(freq));
    if (freq >= 1000000 && freq <= 10000000000ull) {
        cpex__ticks_mult = (uint64_t)((1e9 / (double)freq) * 4294967296.0);
        cpex__ticks_cpu = true;
    }
#endif
}

void cpex__ticks_init(void) { pthread_once(&once, init_once); }

uint64_t cpex__ticks_from_ns(int64_t ns)
{
    if (ns <= 0)
        return 0;
    unsigned __int128 t = ((unsigned __int128)(uint64_t)ns << 32) / cpex__ticks_mult;
    return t > UINT64_MAX ? UINT64_MAX : (uint64_t)t;
}
