/*
 * bench_main.c — cpex_bench: the cost of libcpex's hot path, as a table
 * (medians of several repetitions, with min and max) or as JSON.
 *
 *   cpex_bench                 every figure (about 15 s)
 *   cpex_bench --quick         a few thousand iterations of everything (smoke test)
 *   cpex_bench --json          the same figures as JSON on stdout
 *   cpex_bench --case seq_10   one case only (e.g. under callgrind)
 *
 * See docs/performance.md for what each figure means. The program never
 * fails on a timing: it exits non-zero only when a case cannot be set up
 * or a pipeline does not behave as the case expects (a deny, a soft error,
 * a modification that did not happen).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "util/alloc.h"

/* ------------------------------------------------------------------ */
/* Options                                                             */
/* ------------------------------------------------------------------ */

typedef struct options {
    int quick;
    int json;
    const char *only;    /* --case */
    int reps;            /* 0: default */
    long iters;          /* 0: calibrate */
    double time_ms;      /* per repetition of an invoke case */
    int thread_plugins;  /* plugins in the threads case */
    int load_count;      /* plugins in the load case */
} options;

static void usage(FILE *out)
{
    fprintf(out,
            "usage: cpex_bench [--quick] [--json] [--case NAME] [--reps N] [--iters N]\n"
            "                  [--time-ms MS] [--threads-plugins N] [--plugin-dir DIR] [--list]\n"
            "\n"
            "  --quick        a few thousand iterations of every case, 3 repetitions\n"
            "  --json         print JSON instead of the table\n"
            "  --case NAME    run one case (see --list); for profiling\n"
            "  --reps N       repetitions per case (default 9; quick 3; --case 1)\n"
            "  --iters N      iterations per repetition (default: calibrated)\n"
            "  --time-ms MS   target time of one repetition (default 40)\n"
            "  --threads-plugins N  sequential plugins in the threads case (default 5)\n"
            "  --plugin-dir D where libbenchplug.so is (default the build's plugin dir)\n"
            "  --list         list the cases\n");
}

/* ------------------------------------------------------------------ */
/* Cases                                                               */
/* ------------------------------------------------------------------ */

typedef struct invoke_case {
    const char *name;
    int figure;
    const char *what;
    /* results */
    int ran;
    long iters;
    bench_stat ns;
    int have_allocs;
    bench_allocs allocs;
    long denied, soft, modified, invokes;
} invoke_case;

static invoke_case cases[] = {
    {.name = "baseline", .figure = 9, .what = "plain indirect call of the allow handler"},
    {.name = "empty", .figure = 1, .what = "invoke, hook with no plugins"},
    {.name = "seq_1", .figure = 2, .what = "1 sequential plugin, allow"},
    {.name = "seq_5", .figure = 2, .what = "5 sequential plugins, allow"},
    {.name = "seq_10", .figure = 2, .what = "10 sequential plugins, allow"},
    {.name = "seq_50", .figure = 2, .what = "50 sequential plugins, allow"},
    {.name = "seq_10_modify", .figure = 3, .what = "10 sequential, the 5th modifies"},
    {.name = "mixed", .figure = 4, .what = "5 sequential + 5 audit + 5 concurrent"},
    {.name = "lib_1", .figure = 5, .what = "1 sequential plugin from a .so"},
    {.name = "lib_10", .figure = 5, .what = "10 sequential plugins from a .so"},
};
#define CASE_COUNT (sizeof cases / sizeof cases[0])

static const char *const extra_cases[] = {"allocs", "threads", "load_100"};
#define EXTRA_COUNT (sizeof extra_cases / sizeof extra_cases[0])

static invoke_case *find_case(const char *name)
{
    for (size_t i = 0; i < CASE_COUNT; i++)
        if (strcmp(cases[i].name, name) == 0)
            return &cases[i];
    return NULL;
}

/* Threads and load results. */
typedef struct threads_result {
    int ran;
    long iters;
    int plugins;
    bench_stat one, two;         /* invokes per second (wall time) */
    double ratio;                /* median two / median one */
    bench_stat cpu_one, cpu_two; /* CPU ns per invoke (thread CPU clocks) */
    double cpu_scaling;          /* 2 x cpu_one / cpu_two */
    long control_iters;
    double control_ratio;        /* the same for the control loop (nothing shared) */
    double efficiency;           /* ratio / control_ratio */
} threads_result;

typedef struct load_result {
    int ran;
    int count;
    bench_stat ms;
} load_result;

static threads_result thr;
static load_result load;
static int failures;

/* ------------------------------------------------------------------ */
/* Running                                                             */
/* ------------------------------------------------------------------ */

static long calibrate(bench_fixture *f, const options *o)
{
    if (o->iters > 0)
        return o->iters;
    if (o->quick)
        return 2000;
    long n = 1000;
    double per = 0;
    for (;;) {
        int64_t ns = bench_fixture_run(f, n);
        per = (double)ns / (double)n;
        if (ns >= 5000000 || n >= 10000000)
            break;
        n *= 4;
    }
    double want = o->time_ms * 1e6 / (per > 0 ? per : 1);
    if (want < 1000)
        want = 1000;
    if (want > 200000000)
        want = 200000000;
    return (long)want;
}

static void run_invoke_cases(const options *o, int reps, const char *only)
{
    bench_fixture *fx[CASE_COUNT] = {0};
    double *samples[CASE_COUNT] = {0};

    for (size_t i = 0; i < CASE_COUNT; i++) {
        if (only && strcmp(only, cases[i].name) != 0 && strcmp(only, "allocs") != 0)
            continue;
        fx[i] = bench_fixture_new(cases[i].name);
        if (!fx[i]) {
            fprintf(stderr, "cpex_bench: case %s could not be set up\n", cases[i].name);
            failures++;
            continue;
        }
        samples[i] = calloc((size_t)reps, sizeof(double));
        if (!only || strcmp(only, "allocs") != 0)
            cases[i].iters = calibrate(fx[i], o);
    }

    /* Timed repetitions, round robin over the cases so that a noisy moment
       of the machine spreads over all of them rather than one. */
    if (!only || strcmp(only, "allocs") != 0) {
        for (int r = 0; r < reps; r++)
            for (size_t i = 0; i < CASE_COUNT; i++) {
                if (!fx[i])
                    continue;
                int64_t ns = bench_fixture_run(fx[i], cases[i].iters);
                samples[i][r] = (double)ns / (double)cases[i].iters;
            }
        for (size_t i = 0; i < CASE_COUNT; i++)
            if (fx[i]) {
                cases[i].ns = bench_stats(samples[i], reps);
                cases[i].ran = 1;
            }
    }

    /* Allocations per invoke (untimed). */
    for (size_t i = 0; i < CASE_COUNT; i++) {
        if (!fx[i])
            continue;
        long n = o->quick ? 200 : 2000;
        if (strcmp(cases[i].name, "mixed") == 0)
            n /= 4;
        cases[i].allocs = bench_fixture_allocs(fx[i], n);
        cases[i].have_allocs = 1;
    }

    for (size_t i = 0; i < CASE_COUNT; i++) {
        if (!fx[i])
            continue;
        bench_fixture_checks(fx[i], &cases[i].invokes, &cases[i].denied, &cases[i].soft,
                             &cases[i].modified);
        int expect_modified = strcmp(cases[i].name, "seq_10_modify") == 0;
        if (cases[i].denied || cases[i].soft ||
            (expect_modified && cases[i].modified != cases[i].invokes) ||
            (!expect_modified && cases[i].modified)) {
            fprintf(stderr,
                    "cpex_bench: case %s did not run as expected: %ld denied, %ld soft "
                    "errors, %ld of %ld invokes modified\n",
                    cases[i].name, cases[i].denied, cases[i].soft, cases[i].modified,
                    cases[i].invokes);
            failures++;
        }
        bench_fixture_free(fx[i]);
        free(samples[i]);
    }
}

static void run_threads(const options *o, int reps)
{
    thr.plugins = o->thread_plugins;
    long iters = o->iters > 0 ? o->iters : o->quick ? 2000 : 0;
    if (iters == 0) {
        /* calibrate: one thread for ~5x the per-case time */
        double ips = bench_threads_throughput(1, 20000, thr.plugins, NULL);
        if (ips <= 0) {
            fprintf(stderr, "cpex_bench: threads case failed\n");
            failures++;
            return;
        }
        iters = (long)(ips * o->time_ms * 5 / 1e3);
        if (iters < 20000)
            iters = 20000;
    }
    thr.iters = iters;
    double *one = calloc((size_t)reps, sizeof *one), *two = calloc((size_t)reps, sizeof *two);
    double *c1 = calloc((size_t)reps, sizeof *c1), *c2 = calloc((size_t)reps, sizeof *c2);
    double *k1 = calloc((size_t)reps, sizeof *k1), *k2 = calloc((size_t)reps, sizeof *k2);
    int ok = one && two && c1 && c2 && k1 && k2;
    /* The control: plain indirect calls, nothing shared between threads, for
       about as long. Its 2-vs-1 ratio is what the machine gives right now. */
    thr.control_iters = iters * 200;
    for (int r = 0; ok && r < reps; r++) {
        one[r] = bench_threads_throughput(1, iters, thr.plugins, &c1[r]);
        two[r] = bench_threads_throughput(2, iters, thr.plugins, &c2[r]);
        k1[r] = bench_threads_throughput(1, thr.control_iters, 0, NULL);
        k2[r] = bench_threads_throughput(2, thr.control_iters, 0, NULL);
        if (one[r] <= 0 || two[r] <= 0 || k1[r] <= 0 || k2[r] <= 0)
            ok = 0;
    }
    if (ok) {
        thr.one = bench_stats(one, reps);
        thr.two = bench_stats(two, reps);
        thr.ratio = thr.two.median / thr.one.median;
        thr.cpu_one = bench_stats(c1, reps);
        thr.cpu_two = bench_stats(c2, reps);
        thr.cpu_scaling = 2 * thr.cpu_one.median / thr.cpu_two.median;
        bench_stat s1 = bench_stats(k1, reps), s2 = bench_stats(k2, reps);
        thr.control_ratio = s2.median / s1.median;
        thr.efficiency = thr.ratio / thr.control_ratio;
        thr.ran = 1;
    } else {
        fprintf(stderr, "cpex_bench: threads case failed\n");
        failures++;
    }
    free(one);
    free(two);
    free(c1);
    free(c2);
    free(k1);
    free(k2);
    bench_threads_done();
}

static void run_load(const options *o, int reps)
{
    load.count = o->load_count;
    double *ms = calloc((size_t)reps, sizeof *ms);
    for (int r = 0; r < reps; r++) {
        int64_t ns = bench_load_lib_plugins(load.count);
        if (ns < 0) {
            fprintf(stderr, "cpex_bench: loading %d lib: plugins failed\n", load.count);
            failures++;
            free(ms);
            return;
        }
        ms[r] = (double)ns / 1e6;
    }
    load.ms = bench_stats(ms, reps);
    load.ran = 1;
    free(ms);
}

/* ------------------------------------------------------------------ */
/* Derived figures and targets                                         */
/* ------------------------------------------------------------------ */

typedef struct derived {
    double base;           /* baseline ns, or NAN */
    double empty_ratio;
    double slope, slope_ratio, intercept;
    double modify_extra;   /* seq_10_modify - seq_10 */
    double lib1_ratio, lib10_ratio;         /* ratios of medians */
    double lib1_min_ratio, lib10_min_ratio; /* ratios of minima (least disturbed runs) */
    double allocs_cpex, allocs_libc; /* seq_10 */
} derived;

static double med(const char *name)
{
    invoke_case *c = find_case(name);
    return c && c->ran ? c->ns.median : NAN;
}

static double min_of(const char *name)
{
    invoke_case *c = find_case(name);
    return c && c->ran ? c->ns.min : NAN;
}

static derived derive(void)
{
    derived d;
    d.base = med("baseline");
    d.empty_ratio = med("empty") / d.base;
    static const char *const seq[] = {"seq_1", "seq_5", "seq_10", "seq_50"};
    double x[4] = {1, 5, 10, 50}, y[4];
    int have = 1;
    for (int i = 0; i < 4; i++) {
        y[i] = med(seq[i]);
        if (isnan(y[i]))
            have = 0;
    }
    d.slope = have ? bench_slope(x, y, 4) : NAN;
    d.intercept = have ? (y[0] + y[1] + y[2] + y[3]) / 4 - d.slope * (1 + 5 + 10 + 50) / 4.0 : NAN;
    d.slope_ratio = d.slope / d.base;
    d.modify_extra = med("seq_10_modify") - med("seq_10");
    d.lib1_ratio = med("lib_1") / med("seq_1");
    d.lib10_ratio = med("lib_10") / med("seq_10");
    d.lib1_min_ratio = min_of("lib_1") / min_of("seq_1");
    d.lib10_min_ratio = min_of("lib_10") / min_of("seq_10");
    invoke_case *s10 = find_case("seq_10");
    d.allocs_cpex = s10 && s10->have_allocs ? s10->allocs.cpex : NAN;
    d.allocs_libc = s10 && s10->have_allocs && s10->allocs.libc >= 0 ? s10->allocs.libc : NAN;
    return d;
}

typedef struct target {
    const char *what;
    const char *key;
    double value;
    const char *unit;
    double limit;
    int at_most; /* 1: value <= limit holds; 0: value >= limit holds */
} target;

static size_t targets(const derived *d, target *t)
{
    size_t n = 0;
    double allocs = d->allocs_cpex;
    if (!isnan(d->allocs_libc) && d->allocs_libc > allocs)
        allocs = d->allocs_libc;
    t[n++] = (target){"no-plugin invoke, x baseline", "empty_vs_baseline", d->empty_ratio, "x",
                      10, 1};
    t[n++] = (target){"per sequential plugin, x baseline", "slope_vs_baseline", d->slope_ratio,
                      "x", 10, 1};
    t[n++] = (target){"heap allocations per all-allow invoke", "allocs_per_invoke", allocs, "",
                      0, 1};
    t[n++] = (target){"shared library vs compiled in (10 plugins)", "lib_vs_builtin",
                      d->lib10_ratio, "x", 1.1, 1};
    t[n++] = (target){"2 threads vs 1 thread throughput", "threads_ratio",
                      thr.ran ? thr.ratio : NAN, "x", 1.7, 0};
    t[n++] = (target){"load + initialize 100 lib: plugins", "load_100_ms",
                      load.ran ? load.ms.median : NAN, "ms", 100, 1};
    return n;
}

static const char *verdict(const target *t)
{
    if (isnan(t->value))
        return "not run";
    int holds = t->at_most ? t->value <= t->limit + 1e-9 : t->value >= t->limit;
    return holds ? "holds" : "MISSED";
}

/* ------------------------------------------------------------------ */
/* Output                                                              */
/* ------------------------------------------------------------------ */

static void print_table(const options *o, int reps)
{
    derived d = derive();
    printf("libcpex hot path — %ld CPUs, %s\n", bench_cpu_count(), bench_cpu_model());
    printf("%s; %d repetitions per case; ns per invoke incl. result cleanup: median "
           "[min .. max]\n\n",
           o->quick ? "QUICK mode (smoke test: figures are indicative only)" : "full run", reps);
    printf("%-3s %-14s %-40s %10s %21s %9s %13s\n", "fig", "case", "what", "ns/invoke",
           "[min .. max]", "x base", "allocs/inv");
    printf("%-3s %-14s %-40s %10s %21s %9s %13s\n", "", "", "", "", "", "",
           "cpex / libc");
    for (size_t i = 0; i < CASE_COUNT; i++) {
        invoke_case *c = &cases[i];
        if (!c->ran && !c->have_allocs)
            continue;
        char range[64] = "", ratio[32] = "", allocs[48] = "";
        char ns[32] = "";
        if (c->ran) {
            snprintf(ns, sizeof ns, "%.1f", c->ns.median);
            snprintf(range, sizeof range, "[%.1f .. %.1f]", c->ns.min, c->ns.max);
            if (!isnan(d.base))
                snprintf(ratio, sizeof ratio, "%.1f", c->ns.median / d.base);
        }
        if (c->have_allocs) {
            if (c->allocs.libc >= 0)
                snprintf(allocs, sizeof allocs, "%.2f / %.2f", c->allocs.cpex, c->allocs.libc);
            else
                snprintf(allocs, sizeof allocs, "%.2f / -", c->allocs.cpex);
        }
        printf("%-3d %-14s %-40s %10s %21s %9s %13s\n", c->figure, c->name, c->what, ns, range,
               ratio, allocs);
    }
    printf("\n");
    if (!isnan(d.slope))
        printf("2  slope (least squares over 1, 5, 10, 50 plugins): %.2f ns/plugin = %.1fx "
               "baseline (intercept %.1f ns)\n",
               d.slope, d.slope_ratio, d.intercept);
    if (!isnan(d.modify_extra))
        printf("3  one modifying plugin among 10: %+.1f ns per invoke over all-allow\n",
               d.modify_extra);
    if (!isnan(d.lib1_ratio) || !isnan(d.lib10_ratio))
        printf("5  shared library / compiled in: %.3f (1 plugin), %.3f (10 plugins); "
               "ratio of minima %.3f, %.3f\n",
               d.lib1_ratio, d.lib10_ratio, d.lib1_min_ratio, d.lib10_min_ratio);
    if (!isnan(d.allocs_cpex)) {
        char libc[96] = "libc allocations not counted (sanitizer build)";
        if (!isnan(d.allocs_libc))
            snprintf(libc, sizeof libc, "%.2f libc malloc/calloc/realloc calls from any caller",
                     d.allocs_libc);
        printf("6  heap allocations per invoke, 10 sequential all-allow: %.2f through libcpex's "
               "allocator; %s\n",
               d.allocs_cpex, libc);
    }
    if (thr.ran)
        printf("7  throughput, %d sequential plugins, %ld invokes per thread: 1 thread %.2f M/s "
               "[%.2f .. %.2f], 2 threads %.2f M/s [%.2f .. %.2f]; ratio %.2f\n",
               thr.plugins, thr.iters, thr.one.median / 1e6, thr.one.min / 1e6,
               thr.one.max / 1e6, thr.two.median / 1e6, thr.two.min / 1e6, thr.two.max / 1e6,
               thr.ratio);
    if (thr.ran)
        printf("   control (plain calls, nothing shared): 2 vs 1 thread %.2f, so libcpex reaches "
               "%.0f%% of what the machine gave; CPU time per invoke 1 thread %.1f ns, 2 threads "
               "%.1f ns\n",
               thr.control_ratio, 100 * thr.efficiency, thr.cpu_one.median, thr.cpu_two.median);
    if (load.ran)
        printf("8  load + initialize %d lib: plugins: %.2f ms [%.2f .. %.2f]\n", load.count,
               load.ms.median, load.ms.min, load.ms.max);

    target t[8];
    size_t n = targets(&d, t);
    printf("\ntargets\n");
    for (size_t i = 0; i < n; i++) {
        char val[32];
        if (isnan(t[i].value))
            snprintf(val, sizeof val, "-");
        else
            snprintf(val, sizeof val, "%.2f%s", t[i].value, t[i].unit);
        printf("  %-44s %10s   (%s %g%s)  %s\n", t[i].what, val, t[i].at_most ? "<=" : ">=",
               t[i].limit, t[i].unit, verdict(&t[i]));
    }
}

static void json_num(const char *key, double v, int comma)
{
    if (isnan(v) || isinf(v))
        printf("\"%s\": null%s", key, comma ? ", " : "");
    else
        printf("\"%s\": %.4f%s", key, v, comma ? ", " : "");
}

static void json_stat(const char *key, bench_stat s, int comma)
{
    printf("\"%s\": {", key);
    json_num("median", s.median, 1);
    json_num("min", s.min, 1);
    json_num("max", s.max, 0);
    printf("}%s", comma ? ", " : "");
}

static void print_json(const options *o, int reps)
{
    derived d = derive();
    printf("{\n  \"machine\": {\"cpus\": %ld, \"cpu_model\": \"", bench_cpu_count());
    for (const char *p = bench_cpu_model(); *p; p++)
        if (*p != '"' && *p != '\\' && (unsigned char)*p >= 0x20)
            putchar(*p);
    printf("\"},\n  \"quick\": %s, \"repetitions\": %d,\n  \"cases\": [\n",
           o->quick ? "true" : "false", reps);
    int first = 1;
    for (size_t i = 0; i < CASE_COUNT; i++) {
        invoke_case *c = &cases[i];
        if (!c->ran && !c->have_allocs)
            continue;
        printf("%s    {\"name\": \"%s\", \"figure\": %d, \"what\": \"%s\", ", first ? "" : ",\n",
               c->name, c->figure, c->what);
        first = 0;
        if (c->ran) {
            printf("\"iterations\": %ld, ", c->iters);
            json_stat("ns_per_invoke", c->ns, 1);
            json_num("ratio_to_baseline", c->ns.median / d.base, c->have_allocs);
        }
        if (c->have_allocs) {
            json_num("allocs_per_invoke_cpex", c->allocs.cpex, 1);
            json_num("allocs_per_invoke_libc", c->allocs.libc >= 0 ? c->allocs.libc : NAN, 0);
        }
        printf("}");
    }
    printf("\n  ],\n  \"derived\": {");
    json_num("baseline_ns", d.base, 1);
    json_num("empty_vs_baseline", d.empty_ratio, 1);
    json_num("slope_ns_per_plugin", d.slope, 1);
    json_num("slope_vs_baseline", d.slope_ratio, 1);
    json_num("intercept_ns", d.intercept, 1);
    json_num("modify_extra_ns", d.modify_extra, 1);
    json_num("lib_vs_builtin_1", d.lib1_ratio, 1);
    json_num("lib_vs_builtin_10", d.lib10_ratio, 1);
    json_num("lib_vs_builtin_1_min", d.lib1_min_ratio, 1);
    json_num("lib_vs_builtin_10_min", d.lib10_min_ratio, 1);
    json_num("allocs_per_invoke_cpex", d.allocs_cpex, 1);
    json_num("allocs_per_invoke_libc", d.allocs_libc, 0);
    printf("},\n  \"threads\": ");
    if (thr.ran) {
        printf("{\"plugins\": %d, \"iterations_per_thread\": %ld, ", thr.plugins, thr.iters);
        json_stat("one_thread_per_s", thr.one, 1);
        json_stat("two_threads_per_s", thr.two, 1);
        json_num("ratio", thr.ratio, 1);
        json_stat("cpu_ns_per_invoke_one", thr.cpu_one, 1);
        json_stat("cpu_ns_per_invoke_two", thr.cpu_two, 1);
        json_num("cpu_scaling", thr.cpu_scaling, 1);
        json_num("control_ratio", thr.control_ratio, 1);
        json_num("efficiency_vs_control", thr.efficiency, 0);
        printf("}");
    } else {
        printf("null");
    }
    printf(",\n  \"load\": ");
    if (load.ran) {
        printf("{\"plugins\": %d, ", load.count);
        json_stat("ms", load.ms, 0);
        printf("}");
    } else {
        printf("null");
    }
    printf(",\n  \"targets\": [\n");
    target t[8];
    size_t n = targets(&d, t);
    for (size_t i = 0; i < n; i++) {
        printf("    {\"target\": \"%s\", ", t[i].key);
        json_num("value", t[i].value, 1);
        printf("\"%s\": %g, \"verdict\": \"%s\"}%s\n", t[i].at_most ? "at_most" : "at_least",
               t[i].limit, verdict(&t[i]), i + 1 < n ? "," : "");
    }
    printf("  ],\n  \"ok\": %s\n}\n", failures ? "false" : "true");
}

/* ------------------------------------------------------------------ */
/* main                                                                */
/* ------------------------------------------------------------------ */

int main(int argc, char **argv)
{
    options o = {0, 0, NULL, 0, 0, 40.0, 5, 100};
    /* Count jansson's allocations with the library's (the bench is the host). */
    cpex__alloc_hook_jansson();
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *next = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--quick") == 0) {
            o.quick = 1;
        } else if (strcmp(a, "--json") == 0) {
            o.json = 1;
        } else if (strcmp(a, "--case") == 0 && next) {
            o.only = next;
            i++;
        } else if (strcmp(a, "--reps") == 0 && next) {
            o.reps = atoi(next);
            i++;
        } else if (strcmp(a, "--iters") == 0 && next) {
            o.iters = atol(next);
            i++;
        } else if (strcmp(a, "--time-ms") == 0 && next) {
            o.time_ms = atof(next);
            i++;
        } else if (strcmp(a, "--threads-plugins") == 0 && next) {
            o.thread_plugins = atoi(next);
            if (o.thread_plugins < 1 || o.thread_plugins > 1000) {
                usage(stderr);
                return 2;
            }
            i++;
        } else if (strcmp(a, "--plugin-dir") == 0 && next) {
            bench_plugin_dir = next;
            i++;
        } else if (strcmp(a, "--list") == 0) {
            for (size_t k = 0; k < CASE_COUNT; k++)
                printf("%-14s fig %d  %s\n", cases[k].name, cases[k].figure, cases[k].what);
            printf("%-14s fig 6  allocations per invoke of every invoke case\n", "allocs");
            printf("%-14s fig 7  1 vs 2 threads on one manager\n", "threads");
            printf("%-14s fig 8  load + initialize of 100 lib: plugins\n", "load_100");
            return 0;
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        } else {
            usage(stderr);
            return 2;
        }
    }
    const char *env_dir = getenv("CPEX_BENCH_PLUGIN_DIR");
    if (env_dir && *env_dir)
        bench_plugin_dir = env_dir;
    if (o.only) {
        int known = find_case(o.only) != NULL;
        for (size_t k = 0; k < EXTRA_COUNT; k++)
            known |= strcmp(o.only, extra_cases[k]) == 0;
        if (!known) {
            fprintf(stderr, "cpex_bench: unknown case '%s' (see --list)\n", o.only);
            return 2;
        }
    }
    int reps = o.reps > 0 ? o.reps : o.only ? 1 : o.quick ? 3 : 9;
    if (reps > 1000)
        reps = 1000;

    int all = o.only == NULL;
    if (all || find_case(o.only) || strcmp(o.only, "allocs") == 0)
        run_invoke_cases(&o, reps, o.only);
    if (all || strcmp(o.only, "threads") == 0)
        run_threads(&o, reps);
    if (all || strcmp(o.only, "load_100") == 0)
        run_load(&o, o.quick ? 1 : reps);

    if (o.json)
        print_json(&o, reps);
    else
        print_table(&o, reps);
    return failures ? 1 : 0;
}
