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

/* One reading of the counter between two readings of CLOCK_MONOTONIC: the
 * clock time it pairs with (their midpoint) and how far that may be off
 * (half the bracket). A thread preempted between the reads gets a wide
 * bracket, so each end of the measurement keeps its narrowest of a few. */
typedef struct tsc_pair {
    int64_t ns;
    int64_t half_bracket;
    uint64_t ticks;
} tsc_pair;

static tsc_pair tsc_read_pair(void)
{
    tsc_pair best = {0, 0, 0};
    for (int i = 0; i < 8; i++) {
        int64_t a = cpex__now_ns();
        uint64_t c = __rdtsc();
        int64_t b = cpex__now_ns();
        if (i == 0 || (b - a) / 2 < best.half_bracket)
            best = (tsc_pair){a + (b - a) / 2, (b - a) / 2, c};
    }
    return best;
}

/* Nanoseconds per tick as a 32.32 fixed-point number, measured against
 * CLOCK_MONOTONIC. The start is the narrowest of up to 32 pairs (a few more
 * rounds while it is wider than 5 us); the end is, among the readings at
 * least 2 ms later, the one whose window has the least relative error
 * (both ends' half brackets over the window), and the measurement stops
 * once that error is under 1/2000 or 100 ms have passed (a machine so
 * loaded that no narrow reading comes: the best end so far). Under load a
 * single pair at each end was off by up to a preemption, which once made a
 * 30 ms call read as 16 ms. 0 when the rate is not plausible (a counter
 * that does not move, or runs at under 100 MHz or over 20 GHz). */
uint64_t cpex__ticks_measure_rate(void)
{
    if (!tsc_invariant())
        return 0;
    tsc_pair p0 = tsc_read_pair();
    for (int i = 0; i < 3 && p0.half_bracket > 5000; i++) {
        tsc_pair q = tsc_read_pair();
        if (q.half_bracket < p0.half_bracket)
            p0 = q;
    }
    tsc_pair p1 = p0;
    bool have_end = false;
    for (;;) {
        tsc_pair p = tsc_read_pair();
        int64_t window = p.ns - p0.ns;
        if (window < 2000000)
            continue;
        /* err(p) < err(p1), cross-multiplied: (p0.hb + p.hb) / window <
           (p0.hb + p1.hb) / (p1.ns - p0.ns); all terms under 2^40. */
        if (!have_end || (p0.half_bracket + p.half_bracket) * (p1.ns - p0.ns) <
                             (p0.half_bracket + p1.half_bracket) * window) {
            p1 = p;
            have_end = true;
        }
        if ((p0.half_bracket + p1.half_bracket) * 2000 <= p1.ns - p0.ns || window >= 100000000)
            break;
    }
    if (p1.ticks <= p0.ticks)
        return 0;
    double ns_per_tick = (double)(p1.ns - p0.ns) / (double)(p1.ticks - p0.ticks);
    if (!(ns_per_tick > 0.05 && ns_per_tick < 10.0))
        return 0;
    return (uint64_t)(ns_per_tick * 4294967296.0);
}
#else
uint64_t cpex__ticks_measure_rate(void) { return 0; }
#endif

static void init_once(void)
{
#if defined(__x86_64__) || defined(__i386__)
    if (tsc_invariant()) {
        uint64_t mult = cpex__ticks_measure_rate();
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
