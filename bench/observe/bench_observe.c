/*
 * bench_observe.c — what execution records, metrics and audit sinks cost
 * (docs/performance.md, "Observability"). Built as cpex_bench_observe;
 * `make bench` runs it after cpex_bench.
 *
 *   cpex_bench_observe            the table (about 15 s)
 *   cpex_bench_observe --quick    a few iterations of everything (a smoke test)
 *   cpex_bench_observe --case seq_10_records [--iters N]   one case (profilers)
 *   cpex_bench_observe --threads  only the two-thread scaling
 *
 * Every case invokes cmf.tool_pre_invoke on the same request (a CMF
 * message with a text and a tool_call part, a subject extension) against
 * N sequential plugins compiled in, each an allow handler that reads the
 * payload, and cleans the result up: the whole cost a host pays. Cases
 * differ only in what is observed: nothing (off), records, metrics, both,
 * or an audit sink that receives every verdict. Repetitions go round-robin
 * over the cases; the figure is the median of the repetitions, in ns per
 * invoke, with the slope over 1, 10 and 50 plugins (ns per plugin).
 * Allocations are libcpex's own counter (cpex_static's testing allocator)
 * over 1,000 invokes after a warm-up.
 *
 * Threads: invokes per second from 1 and from 2 threads on one manager (5
 * plugins), metrics off and on; the 2-vs-1 ratio with metrics on should
 * match the ratio with them off: counting takes no shared line.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cpex/cpex.h"
#include "cpex/plugin.h"
#include "util/alloc.h"

#define HOOK "cmf.tool_pre_invoke"

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* The allow handler: the work a trivial check does (read the payload). */
static int32_t allow(void *instance, const cpex_call *call)
{
    (void)instance;
    const cpex_cmf_message *m = cpex_call_cmf(call);
    return m && m->part_count > 0 ? CPEX_ALLOW : CPEX_ERROR;
}

static atomic_long sink_verdicts;

static int32_t sink(void *instance, const cpex_call *call, const cpex_verdict *v)
{
    (void)instance;
    (void)call;
    (void)v;
    atomic_fetch_add_explicit(&sink_verdicts, 1, memory_order_relaxed);
    return CPEX_ALLOW;
}

enum { OBS_RECORDS = 1, OBS_METRICS = 2, OBS_SINK = 4 };

typedef struct fixture {
    cpex_manager *m;
    cpex_cmf_message *msg;
    cpex_payload payload;
    cpex_extensions *ext;
    long denied, records;
} fixture;

static const cpex_handler_reg handlers[] = {CPEX_HANDLER(HOOK, allow, "cmf")};

static fixture *fixture_new(int plugins, unsigned obs)
{
    fixture *f = calloc(1, sizeof *f);
    cpex_manager_options o;
    cpex_manager_options_init(&o);
    o.execution_records = (obs & OBS_RECORDS) != 0;
    o.metrics = (obs & OBS_METRICS) != 0;
    o.audit_queue_size = 1 << 16;
    cpex_error err = CPEX_ERROR_INIT;
    if (!f || cpex_manager_new(&o, &f->m, &err) != CPEX_OK) {
        fprintf(stderr, "cpex_bench_observe: %s\n", cpex_error_message(&err));
        exit(1);
    }
    for (int i = 0; i < plugins; i++) {
        char name[32];
        snprintf(name, sizeof name, "p%02d", i);
        cpex_plugin_spec spec;
        cpex_plugin_spec_init(&spec);
        spec.name = name;
        spec.kind = "bench";
        static const char *const caps[] = {"read_subject"};
        spec.capabilities = caps;
        spec.capability_count = 1;
        cpex_plugin_registration reg;
        memset(&reg, 0, sizeof reg);
        reg.struct_size = (uint32_t)sizeof reg;
        reg.abi_version = CPEX_ABI_VERSION;
        reg.handler_count = 1;
        reg.handlers = handlers;
        if (cpex_manager_register(f->m, &spec, &reg, &err) != CPEX_OK) {
            fprintf(stderr, "cpex_bench_observe: %s\n", cpex_error_message(&err));
            exit(1);
        }
    }
    if (obs & OBS_SINK) {
        cpex_sink_spec s;
        cpex_sink_spec_init(&s);
        s.name = "sink";
        s.verdict = sink;
        if (cpex_manager_register_sink(f->m, &s, &err) != CPEX_OK) {
            fprintf(stderr, "cpex_bench_observe: %s\n", cpex_error_message(&err));
            exit(1);
        }
    }
    if (cpex_manager_initialize(f->m, &err) != CPEX_OK) {
        fprintf(stderr, "cpex_bench_observe: %s\n", cpex_error_message(&err));
        exit(1);
    }
    static const char msg[] =
        "{\"role\":\"assistant\",\"content\":[{\"content_type\":\"text\",\"text\":\"hi\"},"
        "{\"content_type\":\"tool_call\",\"content\":{\"tool_call_id\":\"c1\",\"name\":\"search\","
        "\"arguments\":{\"q\":\"x\",\"n\":3,\"deep\":true,\"lang\":\"en\"}}}]}";
    f->msg = cpex_cmf_parse(msg, sizeof msg - 1, &err);
    f->payload = cpex_payload_cmf(f->msg);
    f->ext = cpex_extensions_new();
    cpex_extensions_set(f->ext, CPEX_EXT_SUBJECT_ID, "alice");
    cpex_extensions_set(f->ext, CPEX_EXT_TRACE_ID, "4bf92f3577b34da6a3ce929d0e0e4736");
    return f;
}

static void fixture_free(fixture *f)
{
    cpex_manager_free(f->m);
    cpex_cmf_free(f->msg);
    cpex_extensions_unref(f->ext);
    free(f);
}

static int64_t fixture_run(fixture *f, long iters)
{
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    int64_t t0 = now_ns();
    for (long i = 0; i < iters; i++) {
        cpex_manager_invoke(f->m, HOOK, &f->payload, f->ext, NULL, &res);
        f->denied += !res.continue_processing;
        f->records += (long)res.execution_count;
        cpex_pipeline_result_cleanup(&res);
    }
    return now_ns() - t0;
}

/* ------------------------------------------------------------------ */
/* Cases                                                               */
/* ------------------------------------------------------------------ */

typedef struct bcase {
    const char *name;
    int plugins;
    unsigned obs;
    fixture *f;
    long iters;
    double samples[32];
    double allocs;
} bcase;

#define CASE(n, p, o)                                                                              \
    {                                                                                              \
        .name = (n), .plugins = (p), .obs = (o)                                                    \
    }
static bcase cases[] = {
    CASE("seq_1_off", 1, 0),
    CASE("seq_10_off", 10, 0),
    CASE("seq_50_off", 50, 0),
    CASE("seq_1_records", 1, OBS_RECORDS),
    CASE("seq_10_records", 10, OBS_RECORDS),
    CASE("seq_50_records", 50, OBS_RECORDS),
    CASE("seq_1_metrics", 1, OBS_METRICS),
    CASE("seq_10_metrics", 10, OBS_METRICS),
    CASE("seq_50_metrics", 50, OBS_METRICS),
    CASE("seq_10_both", 10, OBS_RECORDS | OBS_METRICS),
    CASE("seq_10_sink", 10, OBS_SINK),
};
#define NCASES (sizeof cases / sizeof cases[0])

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n, double *mn, double *mx)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    *mn = v[0];
    *mx = v[n - 1];
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static double slope(const double *x, const double *y, int n)
{
    double sx = 0, sy = 0, sxx = 0, sxy = 0;
    for (int i = 0; i < n; i++) {
        sx += x[i];
        sy += y[i];
        sxx += x[i] * x[i];
        sxy += x[i] * y[i];
    }
    return (n * sxy - sx * sy) / (n * sxx - sx * sx);
}

/* ------------------------------------------------------------------ */
/* Threads                                                             */
/* ------------------------------------------------------------------ */

typedef struct tjob {
    fixture *f;
    long iters;
    pthread_barrier_t *start;
    int64_t t0, t1;
} tjob;

static void *thread_main(void *arg)
{
    tjob *j = arg;
    pthread_barrier_wait(j->start);
    j->t0 = now_ns();
    fixture_run(j->f, j->iters);
    j->t1 = now_ns();
    return NULL;
}

/* Invokes per second from `n` threads, each with its own request on one manager. */
static double throughput(cpex_manager *m, int n, long iters)
{
    pthread_t th[2];
    tjob jobs[2];
    fixture fs[2];
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, (unsigned)n);
    cpex_error err = CPEX_ERROR_INIT;
    static const char msg[] =
        "{\"role\":\"user\",\"content\":[{\"content_type\":\"text\",\"text\":\"hi\"}]}";
    for (int i = 0; i < n; i++) {
        memset(&fs[i], 0, sizeof fs[i]);
        fs[i].m = m;
        fs[i].msg = cpex_cmf_parse(msg, sizeof msg - 1, &err);
        fs[i].payload = cpex_payload_cmf(fs[i].msg);
        jobs[i] = (tjob){&fs[i], iters, &start, 0, 0};
        pthread_create(&th[i], NULL, thread_main, &jobs[i]);
    }
    int64_t first = INT64_MAX, last = 0;
    for (int i = 0; i < n; i++) {
        pthread_join(th[i], NULL);
        first = jobs[i].t0 < first ? jobs[i].t0 : first;
        last = jobs[i].t1 > last ? jobs[i].t1 : last;
        cpex_cmf_free(fs[i].msg);
    }
    pthread_barrier_destroy(&start);
    return (double)n * (double)iters / ((double)(last - first) / 1e9);
}

static void threads_report(bool quick)
{
    long iters = quick ? 2000 : 2000000;
    int reps = quick ? 1 : 5;
    printf("\nthreads (5 plugins, %ld invokes per thread, median of %d):\n", iters, reps);
    for (int metrics = 0; metrics < 2; metrics++) {
        fixture *f = fixture_new(5, metrics ? OBS_METRICS : 0);
        double one[8], two[8], ratio[8];
        for (int r = 0; r < reps; r++) {
            one[r] = throughput(f->m, 1, iters);
            two[r] = throughput(f->m, 2, iters);
            ratio[r] = two[r] / one[r];
        }
        double mn, mx;
        double o = median(one, reps, &mn, &mx), t = median(two, reps, &mn, &mx);
        double q = median(ratio, reps, &mn, &mx);
        printf("  metrics %-3s  1 thread %6.2f M/s   2 threads %6.2f M/s   ratio %.2f [%.2f .. "
               "%.2f]\n",
               metrics ? "on" : "off", o / 1e6, t / 1e6, q, mn, mx);
        fixture_free(f);
    }
}

/* ------------------------------------------------------------------ */
/* Main                                                                */
/* ------------------------------------------------------------------ */

int main(int argc, char **argv)
{
    bool quick = false;
    const char *only = NULL;
    long fixed_iters = 0;
    int reps = 9;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0)
            quick = true;
        else if (strcmp(argv[i], "--threads") == 0) {
            threads_report(false);
            return 0;
        } else if (strcmp(argv[i], "--case") == 0 && i + 1 < argc)
            only = argv[++i];
        else if (strcmp(argv[i], "--iters") == 0 && i + 1 < argc)
            fixed_iters = atol(argv[++i]);
        else if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc)
            reps = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: cpex_bench_observe [--quick] [--threads] [--case NAME] "
                            "[--iters N] [--reps N]\n");
            return 2;
        }
    }
    if (quick)
        reps = 1;
    if (reps < 1 || reps > 32)
        reps = 9;
    for (size_t c = 0; c < NCASES; c++) {
        if (only && strcmp(only, cases[c].name) != 0)
            continue;
        bcase *b = &cases[c];
        b->f = fixture_new(b->plugins, b->obs);
        fixture_run(b->f, 1000); /* warm up */
        if (fixed_iters || quick) {
            b->iters = fixed_iters ? fixed_iters : 1000;
        } else {
            long n = 1000;
            int64_t t;
            while ((t = fixture_run(b->f, n)) < 5000000 && n < 100000000)
                n *= 4;
            b->iters = (long)((double)n * 30e6 / (double)(t ? t : 1)) + 1;
        }
        if (b->obs & OBS_SINK)
            cpex_manager_wait_background(b->f->m, 60);
        cpex__alloc_count_reset();
        fixture_run(b->f, 1000);
        b->allocs = (double)cpex__alloc_count() / 1000.0;
    }
    for (int r = 0; r < reps; r++)
        for (size_t c = 0; c < NCASES; c++) {
            bcase *b = &cases[c];
            if (!b->f)
                continue;
            b->samples[r] = (double)fixture_run(b->f, b->iters) / (double)b->iters;
            if (b->obs & OBS_SINK) /* the queue drains between repetitions */
                cpex_manager_wait_background(b->f->m, 60);
        }
    printf("%-18s %12s %24s %14s\n", "case", "ns/invoke", "[min .. max]", "allocs/invoke");
    double med[NCASES];
    int bad = 0;
    for (size_t c = 0; c < NCASES; c++) {
        bcase *b = &cases[c];
        if (!b->f)
            continue;
        double mn, mx;
        med[c] = median(b->samples, reps, &mn, &mx);
        printf("%-18s %12.1f   [%8.1f .. %8.1f] %14.2f\n", b->name, med[c], mn, mx, b->allocs);
        long expect = (b->obs & OBS_RECORDS) ? b->plugins : 0;
        if (b->f->denied || (b->f->records && b->f->records % b->plugins) ||
            ((b->obs & OBS_RECORDS) && !b->f->records) ||
            (!(b->obs & OBS_RECORDS) && b->f->records)) {
            fprintf(stderr,
                    "cpex_bench_observe: %s misbehaved (denied %ld, records %ld, %ld per "
                    "invoke expected)\n",
                    b->name, b->f->denied, b->f->records, expect);
            bad = 1;
        }
    }
    if (!only) {
        double x[3] = {1, 10, 50};
        const char *names[] = {"off", "records", "metrics"};
        for (int k = 0; k < 3; k++) {
            double y[3] = {med[3 * k], med[3 * k + 1], med[3 * k + 2]};
            printf("slope %-8s %6.1f ns per plugin\n", names[k], slope(x, y, 3));
        }
        double s_off = slope(x, (double[]){med[0], med[1], med[2]}, 3);
        double s_rec = slope(x, (double[]){med[3], med[4], med[5]}, 3);
        double s_met = slope(x, (double[]){med[6], med[7], med[8]}, 3);
        printf("records add %.1f ns per plugin and %.1f ns per invoke (seq_10); metrics add "
               "%.1f ns per plugin; a sink adds %.1f ns per invoke (seq_10)\n",
               s_rec - s_off, med[4] - med[1] - 10 * (s_rec - s_off), s_met - s_off,
               med[10] - med[1]);
        threads_report(quick);
    }
    for (size_t c = 0; c < NCASES; c++)
        if (cases[c].f)
            fixture_free(cases[c].f);
    return bad;
}
