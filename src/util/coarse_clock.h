/*
 * coarse_clock.h — CLOCK_MONOTONIC to about a millisecond, read from a word
 * in memory that a ticker thread keeps current.
 *
 * Why: a sequential handler's timeout is checked after every call, and on
 * a VM even the kernel's coarse clock costs 6–8 ns a read through the vDSO
 * (the TSC ~11 ns): half of what a further plugin costs on the allow path.
 * Timeouts long enough for the coarse clock (cpex__coarse_min_timeout_ns)
 * read this word instead: one relaxed load.
 *
 * The ticker ("cpex-ticker"): started by the first reading, it stores
 * CLOCK_MONOTONIC every 2 ms (half the kernel coarse clock's 4 ms step;
 * 500 wakeups a second while invokes run). Every 500 ms it clears the
 * word for one step; a reader that finds it cleared reads CLOCK_MONOTONIC
 * itself and marks the clock wanted. When nobody read during that step
 * the ticker parks (an idle host pays no wakeups) until the next reader
 * wakes it. A value is never ahead of CLOCK_MONOTONIC; while the ticker
 * runs it lags by its step plus however long the scheduler keeps it
 * waiting, the same kind of error the kernel's coarse clock has. If the
 * thread cannot be started every reading is a CLOCK_MONOTONIC read:
 * slower, never wrong.
 *
 * Process-wide: the ticker is shared by every manager, reset in the child
 * of a fork (its thread is not copied; a child made without atfork
 * handlers, by _Fork or a raw clone, keeps a frozen word and must not
 * invoke) and stopped when libcpex is unloaded.
 */
#ifndef CPEX_UTIL_COARSE_CLOCK_H
#define CPEX_UTIL_COARSE_CLOCK_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "util/clock.h"

/** The ticker's word: CLOCK_MONOTONIC in ns, or 0 when not being kept. */
extern _Atomic int64_t cpex__coarse_word;

/** The reading when the word is 0 (see above). */
int64_t cpex__coarse_now_slow(void);

/** CLOCK_MONOTONIC, to the ticker's step (any thread). */
static inline __attribute__((always_inline)) int64_t cpex__coarse_now_ns(void)
{
    int64_t v = atomic_load_explicit(&cpex__coarse_word, memory_order_relaxed);
    return __builtin_expect(v != 0, 1) ? v : cpex__coarse_now_slow();
}

/** The clock a handler's deadline is checked on: this one when `coarse`
 *  (the plugin's timeout is long enough for it), else CLOCK_MONOTONIC. */
static inline __attribute__((always_inline)) int64_t cpex__deadline_now_ns(bool coarse)
{
    return coarse ? cpex__coarse_now_ns() : cpex__clock_ns(false);
}

/** For tests: whether the ticker thread is running (not parked, not
 *  stopped), and its step and probe period in nanoseconds. */
int cpex__coarse_ticker_running(void);
#define CPEX__COARSE_STEP_NS 2000000
#define CPEX__COARSE_PROBE_STEPS 250

#endif
