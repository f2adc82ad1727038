/*
 * bench_main.c — cpex_bench: the cost of libcpex's hot path, of modifying,
 * of the concurrent phase and of setting up, as a table (medians of
 * several repetitions, with min and max, and ratios to a plain indirect
 * call measured in the same run) or as JSON.
 *
 *   cpex_bench                 every case (about half a minute)
 *   cpex_bench --quick         a short run of every case (smoke test)
 *   cpex_bench --json          the same figures as JSON on stdout
 *   cpex_bench --case seq_10   one case only (e.g. under callgrind)
 *
 * bench/callgrind.sh (make bench-callgrind) runs each case under callgrind
 * through --case, then hands the instruction counts back with
 * --from-callgrind, so both kinds of figure come out of one report.
 *
 * See docs/performance.md for what each case means. The program never
 * fails on a timing: it exits non-zero only when a case cannot be set up
 * or a pipeline does not behave as the case expects (a deny, a soft error,
 * a modification that did not happen or one that should not have).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "util/alloc.h"

typedef struct options {
    int quick;
    int json;
    int no_allocs;
    const char *only;    /* --case */
    int reps;            /* 0: default */
    long iters;          /* 0: calibrate */
    double time_ms;      /* per repetition of an invoke case */
    int thread_plugins;  /* plugins in the threads case */
    const char *from_cg; /* --from-callgrind FILE */
} options;

static int failures;
static bench_threads_result thr;

static void usage(FILE *out)
{
    fprintf(out,
            "usage: cpex_bench [--quick] [--json] [--case NAME] [--reps N] [--iters N]\n"
            "                  [--time-ms MS] [--threads-plugins N] [--plugin-dir DIR]\n"
            "                  [--no-allocs] [--list] [--callgrind-plan] [--from-callgrind FILE]\n"
            "\n"
            "  --quick        a short run of every case (3 repetitions of a few ms)\n"
            "  --json         print JSON instead of the table\n"
            "  --case NAME    run one case (see --list); for profiling\n"
            "  --reps N       repetitions per case (default 9; quick 3; --case 1)\n"
            "  --iters N      invokes (setup: operations) per repetition; default calibrated\n"
            "  --time-ms MS   target time of one repetition (default 40)\n"
            "  --threads-plugins N  sequential plugins in the threads case (default 5)\n"
            "  --plugin-dir D where libbenchplug.so is (default the build's plugin dir)\n"
            "  --no-allocs    do not count allocations (bench-callgrind)\n"
            "  --list         list the cases\n"
            "  --callgrind-plan     the cases and iterations bench/callgrind.sh runs\n"
            "  --from-callgrind F   report the instruction counts in F (written by\n"
            "                       bench/callgrind.sh) instead of measuring\n");
}

/* ------------------------------------------------------------------ */
/* Invoke cases                                                        */
/* ------------------------------------------------------------------ */

static long calibrate(bench_fixture *f, const options *o)
{
    if (o->iters > 0)
        return o->iters;
    if (o->quick) { /* a couple of milliseconds, whatever the case costs */
        bench_fixture_run(f, 1);
        double per = (double)bench_fixture_run(f, 4) / 4;
        double want = 2e6 / (per > 1 ? per : 1);
        return want < 5 ? 5 : want > 2000 ? 2000 : (long)want;
    }
    long n = 1;
    double per = 0;
    for (;;) {
        int64_t ns = bench_fixture_run(f, n);
        per = (double)ns / (double)n;
        if (ns >= 5000000 || n >= 10000000)
            break;
        n *= 4;
    }
    double want = o->time_ms * 1e6 / (per > 0 ? per : 1);
    return want < 10 ? 10 : want > 200000000 ? 200000000 : (long)want;
}

static int selected(const bench_case *c, const options *o)
{
    return !o->only || strcmp(o->only, c->name) == 0;
}

static void check_case(bench_case *c)
{
    const bench_checks *k = &c->checks;
    int expect_modified = c->spec.modify != 0;
    if (k->denied || k->soft_errors || (expect_modified && k->modified != k->invokes) ||
        (!expect_modified && k->modified)) {
        fprintf(stderr,
                "cpex_bench: case %s did not run as expected: %ld denied, %ld soft errors, %ld "
                "of %ld invokes modified\n",
                c->name, k->denied, k->soft_errors, k->modified, k->invokes);
        failures++;
    }
}

static void run_invoke_cases(const options *o, int reps)
{
    bench_fixture **fx = calloc(bench_case_count, sizeof *fx);
    double *samples = calloc(bench_case_count * (size_t)reps, sizeof *samples);
    if (!fx || !samples) {
        fprintf(stderr, "cpex_bench: out of memory\n");
        exit(1);
    }
    for (size_t i = 0; i < bench_case_count; i++) {
        bench_case *c = &bench_cases[i];
        if (c->kind != BENCH_CASE_INVOKE || !selected(c, o))
            continue;
        c->skipped = bench_slot_unavailable(c->spec.modify);
        if (c->skipped)
            continue;
        fx[i] = bench_fixture_new(&c->spec);
        if (!fx[i]) {
            fprintf(stderr, "cpex_bench: case %s could not be set up\n", c->name);
            failures++;
            continue;
        }
        c->iters = calibrate(fx[i], o);
    }

    /* Timed repetitions, round robin over the cases so that a noisy moment
       of the machine spreads over all of them rather than one. */
    for (int r = 0; r < reps; r++)
        for (size_t i = 0; i < bench_case_count; i++)
            if (fx[i]) {
                int64_t ns = bench_fixture_run(fx[i], bench_cases[i].iters);
                samples[i * (size_t)reps + (size_t)r] = (double)ns / (double)bench_cases[i].iters;
            }

    for (size_t i = 0; i < bench_case_count; i++) {
        bench_case *c = &bench_cases[i];
        if (!fx[i])
            continue;
        c->per_op = bench_stats(&samples[i * (size_t)reps], reps);
        c->ran = 1;
        if (!o->no_allocs) { /* untimed; about 20 ms worth of invokes (2 in quick mode) */
            double n = (o->quick ? 2e6 : 2e7) / (c->per_op.median > 1 ? c->per_op.median : 1);
            long cap = o->quick ? 200 : 2000;
            c->allocs = bench_fixture_allocs(fx[i], n < 16 ? 16 : n > cap ? cap : (long)n);
            c->have_allocs = 1;
        }
        c->checks = bench_fixture_checks(fx[i]);
        check_case(c);
        bench_fixture_free(fx[i]);
    }
    free(fx);
    free(samples);
}

/* ------------------------------------------------------------------ */
/* Setup cases                                                         */
/* ------------------------------------------------------------------ */

static void run_setup_cases(const options *o, int reps)
{
    for (size_t i = 0; i < bench_case_count; i++) {
        bench_case *c = &bench_cases[i];
        if (c->kind != BENCH_CASE_SETUP || !selected(c, o))
            continue;
        long ops = o->iters > 0 ? o->iters : 1;
        int want = o->quick ? 1 : reps;
        double *ms = calloc((size_t)want, sizeof *ms);
        int n = 0;
        int64_t spent = 0;
        /* At least 3 repetitions (1 in quick mode), then stop after ~1.5 s. */
        while (ms && n < want && (n < 3 || spent < 1500000000)) {
            int64_t total = 0;
            for (long k = 0; k < ops; k++) {
                int64_t ns = bench_setup_once(c->setup_kind, c->setup_count);
                if (ns < 0) {
                    fprintf(stderr, "cpex_bench: case %s failed\n", c->name);
                    failures++;
                    free(ms);
                    ms = NULL;
                    break;
                }
                total += ns;
            }
            if (!ms)
                break;
            spent += total;
            ms[n++] = (double)total / (double)ops;
        }
        if (ms && n > 0) {
            c->per_op = bench_stats(ms, n);
            c->iters = ops;
            c->ran = 1;
        }
        free(ms);
    }
}

/* ------------------------------------------------------------------ */
/* Threads                                                             */
/* ------------------------------------------------------------------ */

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
    double *v = calloc((size_t)reps * 6, sizeof *v);
    double *one = v, *two = v + reps, *c1 = v + 2 * reps, *c2 = v + 3 * reps;
    double *k1 = v + 4 * reps, *k2 = v + 5 * reps;
    int ok = v != NULL;
    /* The control: plain indirect calls, nothing shared between threads, for
       about as long. Its 2-vs-1 ratio is what the machine gives right now. */
    long control_iters = iters * 200;
    for (int r = 0; ok && r < reps; r++) {
        one[r] = bench_threads_throughput(1, iters, thr.plugins, &c1[r]);
        two[r] = bench_threads_throughput(2, iters, thr.plugins, &c2[r]);
        k1[r] = bench_threads_throughput(1, control_iters, 0, NULL);
        k2[r] = bench_threads_throughput(2, control_iters, 0, NULL);
        if (one[r] <= 0 || two[r] <= 0 || k1[r] <= 0 || k2[r] <= 0)
            ok = 0;
    }
    if (ok) {
        thr.one = bench_stats(one, reps);
        thr.two = bench_stats(two, reps);
        thr.ratio = thr.two.median / thr.one.median;
        thr.cpu_one = bench_stats(c1, reps);
        thr.cpu_two = bench_stats(c2, reps);
        bench_stat s1 = bench_stats(k1, reps), s2 = bench_stats(k2, reps);
        thr.control_ratio = s2.median / s1.median;
        thr.efficiency = thr.ratio / thr.control_ratio;
        thr.ran = 1;
        bench_find_case("threads")->ran = 1;
    } else {
        fprintf(stderr, "cpex_bench: threads case failed\n");
        failures++;
    }
    free(v);
    bench_threads_done();
}

/* ------------------------------------------------------------------ */
/* bench-callgrind                                                     */
/* ------------------------------------------------------------------ */

/*
 * The plan bench/callgrind.sh follows, one case a line: "NAME N TOGGLE"
 * (TOGGLE: the function to count, or "-" for the whole process), "slow NAME
 * N TOGGLE" for a case it runs only when asked for, "# NAME: why" for one
 * it never runs.
 */
static void print_callgrind_plan(void)
{
    for (size_t i = 0; i < bench_case_count; i++) {
        const bench_case *c = &bench_cases[i];
        const char *why =
            c->kind == BENCH_CASE_INVOKE ? bench_slot_unavailable(c->spec.modify) : NULL;
        if (why || c->cg_iters <= 0)
            printf("# %s: %s\n", c->name, why ? why : c->cg_note ? c->cg_note : "not run");
        else
            printf("%s%s %ld %s\n", c->cg_slow ? "slow " : "", c->name, c->cg_iters,
                   c->kind == BENCH_CASE_SETUP ? "bench_setup_measured" : "-");
    }
}

/* The counts bench/callgrind.sh gathered: lines "NAME N IR_N IR_2N". */
static int load_callgrind(const char *path)
{
    FILE *f = fopen(path, "r");
    char line[512], name[128];
    long n;
    double a, b;
    if (!f) {
        fprintf(stderr, "cpex_bench: cannot read %s\n", path);
        return -1;
    }
    while (fgets(line, sizeof line, f)) {
        if (sscanf(line, "%127s %ld %lf %lf", name, &n, &a, &b) != 4 || n <= 0)
            continue;
        bench_case *c = bench_find_case(name);
        if (!c)
            continue;
        double per = (b - a) / (double)n;
        c->per_op = (bench_stat){per, per, per, 1};
        c->iters = n;
        c->ran = 1;
    }
    fclose(f);
    /* A case not in the file says why: a slot this build lacks, or its note. */
    for (size_t i = 0; i < bench_case_count; i++) {
        bench_case *c = &bench_cases[i];
        if (c->ran)
            continue;
        c->skipped = c->kind == BENCH_CASE_INVOKE ? bench_slot_unavailable(c->spec.modify) : NULL;
        if (!c->skipped)
            c->skipped =
                c->cg_note ? c->cg_note : "not measured in this run (see bench/callgrind.sh's log)";
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* main                                                                */
/* ------------------------------------------------------------------ */

int main(int argc, char **argv)
{
    options o = {0, 0, 0, NULL, 0, 0, 40.0, 5, NULL};
    int plan = 0;
    /* Count jansson's allocations with the library's (the bench is the host). */
    cpex__alloc_hook_jansson();
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *next = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--quick") == 0) {
            o.quick = 1;
        } else if (strcmp(a, "--json") == 0) {
            o.json = 1;
        } else if (strcmp(a, "--no-allocs") == 0) {
            o.no_allocs = 1;
        } else if (strcmp(a, "--callgrind-plan") == 0) {
            plan = 1;
        } else if (strcmp(a, "--from-callgrind") == 0 && next) {
            o.from_cg = next;
            i++;
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
            for (size_t k = 0; k < bench_case_count; k++)
                printf("%-22s %-10s %s\n", bench_cases[k].name, bench_cases[k].group,
                       bench_cases[k].what);
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
    if (plan) {
        print_callgrind_plan();
        return 0;
    }
    if (o.only && !bench_find_case(o.only)) {
        fprintf(stderr, "cpex_bench: unknown case '%s' (see --list)\n", o.only);
        return 2;
    }
    int reps = o.reps > 0 ? o.reps : o.only ? 1 : o.quick ? 3 : 9;
    if (reps > 1000)
        reps = 1000;

    bench_run_info run = {o.quick, reps, 0, 0, o.only, &thr};
    if (o.from_cg) {
        if (load_callgrind(o.from_cg) != 0)
            return 1;
        run.instructions = 1;
        run.reps = 1;
    } else {
        run_invoke_cases(&o, reps);
        run_setup_cases(&o, reps);
        if (selected(bench_find_case("threads"), &o))
            run_threads(&o, reps);
    }
    run.failures = failures;
    if (o.json)
        bench_print_json(&run);
    else
        bench_print_table(&run);
    return failures ? 1 : 0;
}
