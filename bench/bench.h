/*
 * bench.h — shared declarations of the cpex_bench program (the .c files of bench/).
 *
 *   bench_main.c   options, the run order, the table and the JSON output
 *   bench_cases.c  fixtures (managers, payload, extensions) and the cases
 *   bench_stats.c  clock, statistics, machine description
 *   bench_alloc.c  counting every heap allocation (libc malloc wrapper)
 */
#ifndef CPEX_BENCH_H
#define CPEX_BENCH_H

#include <stddef.h>
#include <stdint.h>

/* ---- clock and statistics ---- */

/** CLOCK_MONOTONIC in nanoseconds. */
int64_t bench_now_ns(void);

typedef struct bench_stat {
    double median, min, max;
    int n;
} bench_stat;

/** Median, min and max of `n` samples (sorts them in place). */
bench_stat bench_stats(double *samples, int n);

/** Least-squares slope of y over x. */
double bench_slope(const double *x, const double *y, int n);

/** The CPU model (first "model name" of /proc/cpuinfo), or "unknown". */
const char *bench_cpu_model(void);
/** Online CPUs. */
long bench_cpu_count(void);

/* ---- heap allocation counting (bench_alloc.c) ---- */

/**
 * Whether the libc malloc wrapper of this binary is active (false under
 * sanitizers, which bring their own allocator, and if the interposition
 * does not take effect).
 */
int bench_malloc_wrapped(void);
/** Start counting malloc, calloc and realloc calls of every thread. */
void bench_malloc_count_start(void);
/** Stop counting; return the number of calls since the start. */
uint64_t bench_malloc_count_stop(void);

/* ---- cases (bench_cases.c) ---- */

/** An invoke fixture: one manager and one request (payload, extensions, context). */
typedef struct bench_fixture bench_fixture;

/** Plugin dir used for the `lib:` cases (CPEX_PLUGIN_DIR unless overridden). */
extern const char *bench_plugin_dir;

/**
 * Build the fixture of an invoke case by name (see bench_case_names), or
 * NULL with a message on stderr.
 */
bench_fixture *bench_fixture_new(const char *name);
void bench_fixture_free(bench_fixture *f);
/** Run `iters` iterations; returns elapsed nanoseconds. */
int64_t bench_fixture_run(bench_fixture *f, long iters);
/**
 * Sanity counts since the fixture was built: invokes that did not continue,
 * soft errors seen, and invokes whose payload was modified.
 */
void bench_fixture_checks(const bench_fixture *f, long *invokes, long *denied,
                          long *soft_errors, long *modified);

/** Per-invoke allocations on a fixture: libcpex's own counter and all libc mallocs. */
typedef struct bench_allocs {
    double cpex;  /* cpex__alloc_count() per invoke */
    double libc;  /* malloc+calloc+realloc per invoke; -1 when not counted */
} bench_allocs;
bench_allocs bench_fixture_allocs(bench_fixture *f, long iters);

/**
 * Threads case: invokes per second of wall time with `threads` threads on
 * one manager, `iters` invokes each, each thread its own request. Stores
 * the CPU time per invoke (thread CPU clocks) in *cpu_ns when non-NULL.
 * plugins == 0 runs the control instead: the baseline call loop, which
 * shares nothing between threads, so its ratio is what the machine allows.
 * -1 on failure.
 */
double bench_threads_throughput(int threads, long iters, int plugins, double *cpu_ns);
/** Free the manager the threads case keeps between calls. */
void bench_threads_done(void);

/** Load + initialize of `count` lib: plugins; returns nanoseconds, or -1 on failure. */
int64_t bench_load_lib_plugins(int count);

#endif
