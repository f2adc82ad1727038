/*
 * bench.h — shared declarations of the cpex_bench program (the .c files of bench/).
 *
 *   bench_main.c     options, the run order, measuring each case
 *   bench_cases.c    the table of cases (what each measures, callgrind plan)
 *   bench_report.c   derived figures, targets, the table and the JSON output
 *   bench_request.c  the request (a CMF payload of a given size) and manager helpers
 *   bench_fixture.c  invoke fixtures: managers with the case's plugins, the loops
 *   bench_setup.c    register / load + initialize cases
 *   bench_threads.c  1 vs 2 threads, and the control loop
 *   bench_stats.c    clock, statistics, machine description
 *   bench_alloc.c    counting every heap allocation (libc malloc wrapper)
 */
#ifndef CPEX_BENCH_H
#define CPEX_BENCH_H

#include <stddef.h>
#include <stdint.h>

#include "cpex/manager.h"

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

/* ---- the request and managers (bench_request.c) ---- */

#define BENCH_KB 1024u
#define BENCH_MB (1024u * 1024u)

/** Plugin dir used for the `lib:` cases (CPEX_PLUGIN_DIR unless overridden). */
extern const char *bench_plugin_dir;

/** One request as a host sends it: payload, extensions, context. */
typedef struct bench_request {
    cpex_cmf_message *msg;
    cpex_payload payload;
    cpex_extensions *ext;
    cpex_context_table *ctx;
    size_t bytes; /* size of the message as JSON text */
} bench_request;

/** A request whose CMF message is about `bytes` long as JSON (see bench_request.c). */
int bench_request_init(bench_request *r, size_t bytes);
void bench_request_cleanup(bench_request *r);
/** A CMF message with no parts: every bench allow handler denies it (the probe). */
cpex_cmf_message *bench_probe_message(void);

/** A manager with the `lib:` scheme and the factory of kind "bench-allow". */
cpex_manager *bench_manager_new(void);
/** Register a compiled-in plugin (enum bench_role, bench_handlers.h) on `hook`. */
int bench_add_builtin(cpex_manager *m, const char *name, const char *hook, uint32_t mode,
                      int32_t priority, int role);
int bench_load_yaml(cpex_manager *m, const char *yaml);
int bench_initialize(cpex_manager *m);
/** Append printf-style text to a growing buffer; -1 when out of memory. */
int bench_buf_printf(char **buf, size_t *len, size_t *cap, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/**
 * How many plugins of `mode` (or any mode when mode < 0) have `hook` wired,
 * by cpex_manager_plugin_info; -1 on failure.
 */
int bench_plugins_on_hook(cpex_manager *m, const char *hook, int mode);
/**
 * Invoke `hook` with the probe message; 0 when the pipeline denied it with
 * plugin `first` as the denier (so that plugin really runs on the hook).
 */
int bench_probe(cpex_manager *m, const char *hook, const char *first);

/* ---- in-place edit slots of ABI 1.1 (detected when cmake configures) ---- */

/** NULL when the slot is usable, else why not ("not available in this build …"). */
const char *bench_slot_unavailable(int role);

/* ---- invoke fixtures (bench_fixture.c) ---- */

enum bench_special {
    BENCH_INVOKE = 0,
    BENCH_BASELINE = 1, /* a plain indirect call of the allow handler */
    BENCH_ARGS_WORK = 2 /* the modifying handler's own JSON work, no invoke */
};

/** What an invoke case's manager holds and how it is invoked. */
typedef struct bench_spec {
    int special;    /* enum bench_special */
    int seq;        /* sequential plugins on the invoked hook (allow, or one modifies) */
    int audit;      /* audit allow plugins */
    int conc;       /* concurrent allow plugins */
    int lib;        /* sequential allow plugins loaded from libbenchplug.so */
    int modify;     /* enum bench_role: the plugin of priority 4 among `seq` modifies */
    int hooks;      /* > 0: that many distinct hooks, one plugin each; the last is invoked */
    int other_hook; /* the plugins serve BENCH_HOOK, the invoke asks another hook */
    int by_handle;  /* invoke by a handle resolved once (cpex_manager_hook) */
    size_t payload; /* bytes of the CMF message as JSON; 0: 1 KB */
} bench_spec;

typedef struct bench_fixture bench_fixture;

/** Build a fixture, or NULL with a message on stderr. */
bench_fixture *bench_fixture_new(const bench_spec *spec);
void bench_fixture_free(bench_fixture *f);
/** Run `iters` iterations; returns elapsed nanoseconds. */
int64_t bench_fixture_run(bench_fixture *f, long iters);

/** What the loops saw since the fixture was built. */
typedef struct bench_checks {
    long invokes, denied, soft_errors, modified;
} bench_checks;
bench_checks bench_fixture_checks(const bench_fixture *f);

/** Per-invoke allocations on a fixture: libcpex's own counter and all libc mallocs. */
typedef struct bench_allocs {
    double cpex; /* cpex__alloc_count() per invoke */
    double libc; /* malloc+calloc+realloc per invoke; -1 when not counted */
} bench_allocs;
bench_allocs bench_fixture_allocs(bench_fixture *f, long iters);

/* ---- register / load + initialize (bench_setup.c) ---- */

enum bench_setup_kind {
    BENCH_SETUP_REGISTER = 1, /* one compiled-in plugin per hook, cpex_manager_register */
    BENCH_SETUP_YAML = 2,     /* the same from one YAML (factory "bench-allow") */
    BENCH_SETUP_LIB = 3       /* lib: plugins of libbenchplug.so, several entries, one YAML */
};

/**
 * One register/load + initialize of `count` plugins into a fresh manager.
 * Returns the nanoseconds of the measured part (manager creation and free
 * excluded), or -1 with a message on stderr when it failed or the result
 * was not what was asked for.
 */
int64_t bench_setup_once(int kind, int count);
/** YAML of `count` "bench-allow" plugins h0000… on hooks bench.hook_0000…; malloc'd. */
char *bench_hooks_yaml(int count);

/* ---- threads (bench_threads.c) ---- */

/**
 * Invokes per second of wall time with `threads` threads on one manager,
 * `iters` invokes each, each thread its own request. Stores the CPU time per
 * invoke (thread CPU clocks) in *cpu_ns when non-NULL. plugins == 0 runs
 * the control instead: the baseline call loop, which shares nothing between
 * threads, so its ratio is what the machine allows. -1 on failure.
 */
double bench_threads_throughput(int threads, long iters, int plugins, double *cpu_ns);
/** Free the manager the threads case keeps between calls. */
void bench_threads_done(void);

/* ---- the cases (bench_cases.c) and their results ---- */

enum bench_case_kind {
    BENCH_CASE_INVOKE = 0, /* a figure per invoke (ns, or instructions) */
    BENCH_CASE_SETUP = 1,  /* a figure per operation (ms, or instructions) */
    BENCH_CASE_THREADS = 2 /* 1 vs 2 threads against the control */
};

typedef struct bench_case {
    const char *name;
    const char *group;
    const char *what;
    int kind;        /* enum bench_case_kind */
    bench_spec spec; /* invoke cases */
    int setup_kind;  /* setup cases: enum bench_setup_kind */
    int setup_count;
    long cg_iters;       /* bench-callgrind: N (then 2N); 0: never run there */
    int cg_slow;         /* minutes under valgrind: only when asked for (--all, --case) */
    const char *cg_note; /* why it is left out there */
    /* results */
    const char *skipped; /* why the case did not run (a 1.1 slot not in this build) */
    int ran;
    long iters;        /* per repetition (invokes, or operations) */
    bench_stat per_op; /* ns (time) or instructions per invoke / operation */
    int have_allocs;
    bench_allocs allocs;
    bench_checks checks;
} bench_case;

extern bench_case bench_cases[];
extern const size_t bench_case_count;
bench_case *bench_find_case(const char *name);

/** The threads case's results. */
typedef struct bench_threads_result {
    int ran;
    long iters;
    int plugins;
    bench_stat one, two;         /* invokes per second (wall time) */
    double ratio;                /* median two / median one */
    bench_stat cpu_one, cpu_two; /* CPU ns per invoke (thread CPU clocks) */
    double control_ratio;        /* the same ratio for the control loop */
    double efficiency;           /* ratio / control_ratio: the fraction of the control's scaling */
} bench_threads_result;

/* ---- output (bench_report.c) ---- */

typedef struct bench_run_info {
    int quick;
    int reps;
    int instructions; /* figures are callgrind instructions, not nanoseconds */
    int failures;
    const char *only; /* --case: print that case alone (no derived figures, no targets) */
    const bench_threads_result *threads;
} bench_run_info;

void bench_print_table(const bench_run_info *run);
void bench_print_json(const bench_run_info *run);

/* ---- internal to bench_fixture.c and bench_threads.c ---- */

/** The baseline loop over `req`'s payload; returns elapsed ns, counts a deny in *denied. */
int64_t bench_baseline_loop(const bench_request *req, long iters, long *denied);
/** Invoke + cleanup `iters` times, threading the context; updates the counts. */
void bench_invoke_loop(cpex_manager *m, const char *hook, const cpex_hook_handle *handle,
                       bench_request *req, long iters, bench_checks *c);

#endif
