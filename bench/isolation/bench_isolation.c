/*
 * bench_isolation.c — cpex_bench_isolation: what process isolation costs
 * (docs/isolation.md, "Costs"; docs/performance.md).
 *
 *   cpex_bench_isolation            every figure (about 10 s)
 *   cpex_bench_isolation --quick    a smoke test (figures indicative only)
 *
 * Each invoke is timed on its own (CLOCK_MONOTONIC around invoke + result
 * cleanup), so the table shows the distribution: p50, p99, p99.9 and the
 * mean. Cases (the same plugin code, libbenchplug.so?entry=allow, in
 * process and isolated):
 *   inproc_1k      in process, a 1 KB CMF message (a 1 KB text part)
 *   iso_tiny       isolated, a 2-byte message: the transport's own round trip
 *   iso_1k         isolated, the 1 KB message
 *   iso_1k_ext     isolated, the 1 KB message plus extensions the plugin
 *                  may read (subject, 4 headers, request id)
 *   iso_modify_1k  isolated, the modifying entry: the new message comes back
 *   iso_16k        isolated, a 16 KB message
 * and the fault path, with libbenchcrash.so (crashes on "crash"):
 *   crash          a call whose worker dies of SIGSEGV: until its result
 *   restart        from that crash until the next call is answered (the
 *                  new worker: spawn, load, initialize)
 * The program exits non-zero only when a case does not behave (a deny
 * where an allow was due, a crash not reported), never on a timing.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cpex/cmf.h"
#include "cpex/extensions.h"
#include "cpex/loader.h"
#include "cpex/manager.h"
#include "cpex/payload.h"
#include "cpex/result.h"

#ifndef CPEX_PLUGIN_DIR
#define CPEX_PLUGIN_DIR "build/plugins"
#endif
#ifndef CPEX_WORKER_PATH
#define CPEX_WORKER_PATH "build/cpex-worker"
#endif

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

typedef struct dist {
    double p50, p99, p999, mean;
    int n;
} dist;

static dist distribution(double *s, int n)
{
    dist d = {0, 0, 0, 0, n};
    if (n <= 0)
        return d;
    qsort(s, (size_t)n, sizeof *s, cmp);
    double sum = 0;
    for (int i = 0; i < n; i++)
        sum += s[i];
    d.mean = sum / n;
    d.p50 = s[n / 2];
    d.p99 = s[(int)((double)n * 0.99)];
    d.p999 = s[(int)((double)n * 0.999)];
    return d;
}

/* ------------------------------------------------------------------ */
/* Fixtures                                                            */
/* ------------------------------------------------------------------ */

static void quiet(void *u, uint32_t l, const char *p, const char *m)
{
    (void)u, (void)l, (void)p, (void)m;
}

static cpex_manager *manager(const char *kind, int isolated, const char *caps, const char *extra)
{
    cpex_manager_options o;
    cpex_manager_options_init(&o);
    o.worker_path = getenv("CPEX_WORKER") ? getenv("CPEX_WORKER") : CPEX_WORKER_PATH;
    o.log = quiet;
    cpex_manager *m = NULL;
    cpex_error err = CPEX_ERROR_INIT;
    char yaml[2048];
    snprintf(yaml, sizeof yaml,
             "plugins:\n  - name: p\n    kind: \"lib:%s/%s\"\n    hooks: [cmf.tool_pre_invoke]\n"
             "    capabilities: [%s]\n%s%s",
             CPEX_PLUGIN_DIR, kind, caps, isolated ? "    isolation: process\n" : "",
             extra ? extra : "");
    if (cpex_manager_new(&o, &m, &err) != CPEX_OK || cpex_loader_register(m, &err) != CPEX_OK ||
        cpex_manager_load_string(m, yaml, strlen(yaml), "bench.yaml", NULL, &err) != CPEX_OK ||
        cpex_manager_initialize(m, &err) != CPEX_OK) {
        fprintf(stderr, "cpex_bench_isolation: %s\n", cpex_error_message(&err));
        cpex_error_cleanup(&err);
        cpex_manager_free(m);
        return NULL;
    }
    return m;
}

/* A user message with one text part of `size` bytes. */
static cpex_cmf_message *message(size_t size)
{
    char *text = malloc(size + 1);
    for (size_t i = 0; i < size; i++)
        text[i] = "the quick brown fox jumps over the lazy dog "[i % 44];
    cpex_cmf_message *m = cpex_cmf_new(CPEX_ROLE_USER);
    cpex_cmf_append_text(m, CPEX_PART_TEXT, text, size);
    free(text);
    return m;
}

static cpex_extensions *extensions(void)
{
    cpex_extensions *e = cpex_extensions_new();
    cpex_extensions_set(e, CPEX_EXT_SUBJECT_ID, "alice");
    cpex_extensions_set(e, CPEX_EXT_SUBJECT_TYPE, "user");
    cpex_extensions_set(e, CPEX_EXT_REQUEST_ID, "req-42");
    cpex_extensions_set_header(e, CPEX_HEADERS_REQUEST, "x-request-id", "req-42");
    cpex_extensions_set_header(e, CPEX_HEADERS_REQUEST, "authorization", "Bearer abc.def.ghi");
    cpex_extensions_set_header(e, CPEX_HEADERS_REQUEST, "content-type", "application/json");
    cpex_extensions_set_header(e, CPEX_HEADERS_REQUEST, "user-agent", "bench/1.0");
    return e;
}

/* ------------------------------------------------------------------ */
/* Cases                                                               */
/* ------------------------------------------------------------------ */

typedef struct bcase {
    const char *name, *what;
    const char *kind;
    int isolated;
    size_t payload; /* bytes of text */
    int ext;
    int modify;
    /* results */
    dist d;
    int ran;
} bcase;

#define ALLOW "libbenchplug.so?entry=allow"
static bcase cases[] = {
    {.name = "inproc_1k", .what = "in process, 1 KB CMF message", .kind = ALLOW, .payload = 1024},
    {.name = "iso_tiny",
     .what = "isolated, a 2-byte message (transport floor)",
     .kind = ALLOW,
     .isolated = 1,
     .payload = 2},
    {.name = "iso_1k",
     .what = "isolated, 1 KB CMF message",
     .kind = ALLOW,
     .isolated = 1,
     .payload = 1024},
    {.name = "iso_1k_ext",
     .what = "isolated, 1 KB + readable extensions",
     .kind = ALLOW,
     .isolated = 1,
     .payload = 1024,
     .ext = 1},
    {.name = "iso_modify_1k",
     .what = "isolated, 1 KB, plugin returns a new one",
     .kind = "libbenchplug.so?entry=modify_text",
     .isolated = 1,
     .payload = 1024,
     .modify = 1},
    {.name = "iso_16k",
     .what = "isolated, 16 KB CMF message",
     .kind = ALLOW,
     .isolated = 1,
     .payload = 16384},
};
#define NCASES (sizeof cases / sizeof *cases)

static int run_case(bcase *c, int samples)
{
    cpex_manager *m = manager(c->kind, c->isolated,
                              c->ext ? "read_subject, read_headers, read_request" : "", NULL);
    if (!m)
        return -1;
    cpex_cmf_message *msg = message(c->payload);
    cpex_payload p = cpex_payload_cmf(msg);
    cpex_extensions *ext = c->ext ? extensions() : NULL;
    double *s = malloc((size_t)samples * sizeof *s);
    int warm = samples / 5 + 100, bad = 0;
    for (int i = -warm; i < samples; i++) {
        cpex_pipeline_result r = CPEX_PIPELINE_RESULT_INIT;
        int64_t t0 = now_ns();
        cpex_manager_invoke(m, "cmf.tool_pre_invoke", &p, ext, NULL, &r);
        int ok = r.continue_processing && r.error_count == 0 && (!c->modify || r.payload_modified);
        cpex_pipeline_result_cleanup(&r);
        int64_t t1 = now_ns();
        if (!ok)
            bad++;
        if (i >= 0)
            s[i] = (double)(t1 - t0) / 1000.0;
    }
    c->d = distribution(s, samples);
    c->ran = 1;
    free(s);
    cpex_extensions_unref(ext);
    cpex_cmf_free(msg);
    cpex_manager_free(m);
    if (bad)
        fprintf(stderr, "cpex_bench_isolation: case %s: %d calls did not behave\n", c->name, bad);
    return bad ? -1 : 0;
}

/* Crash and restart cycles: the crash call, then calls until one is answered. */
static int run_crash(int cycles, dist *crash, dist *restart)
{
    cpex_manager *m =
        manager("libbenchcrash.so", 1, "", "    sandbox: {max_crashes_per_minute: 100000}\n");
    if (!m)
        return -1;
    cpex_cmf_message *boom = cpex_cmf_new(CPEX_ROLE_USER), *fine = message(1024);
    cpex_cmf_append_text(boom, CPEX_PART_TEXT, "crash", 5);
    cpex_payload pb = cpex_payload_cmf(boom), pf = cpex_payload_cmf(fine);
    double *sc = malloc((size_t)cycles * sizeof *sc), *sr = malloc((size_t)cycles * sizeof *sr);
    int bad = 0;
    for (int i = 0; i < cycles; i++) {
        cpex_pipeline_result r = CPEX_PIPELINE_RESULT_INIT;
        int64_t t0 = now_ns();
        cpex_manager_invoke(m, "cmf.tool_pre_invoke", &pb, NULL, NULL, &r);
        int64_t t1 = now_ns();
        if (!r.violation || strcmp(r.violation->code, "plugin_crashed") != 0)
            bad++;
        cpex_pipeline_result_cleanup(&r);
        cpex_manager_invoke(m, "cmf.tool_pre_invoke", &pf, NULL, NULL, &r);
        int64_t t2 = now_ns();
        if (!r.continue_processing)
            bad++;
        cpex_pipeline_result_cleanup(&r);
        sc[i] = (double)(t1 - t0) / 1000.0;
        sr[i] = (double)(t2 - t0) / 1000.0;
    }
    *crash = distribution(sc, cycles);
    *restart = distribution(sr, cycles);
    free(sc);
    free(sr);
    cpex_cmf_free(boom);
    cpex_cmf_free(fine);
    cpex_manager_free(m);
    if (bad)
        fprintf(stderr, "cpex_bench_isolation: the crash cycles did not behave (%d)\n", bad);
    return bad ? -1 : 0;
}

int main(int argc, char **argv)
{
    int quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
    int samples = quick ? 2000 : 100000, cycles = quick ? 20 : 300;
    int failed = 0;
    for (size_t i = 0; i < NCASES; i++)
        failed |= run_case(&cases[i], samples) != 0;
    dist crash, restart;
    memset(&crash, 0, sizeof crash);
    memset(&restart, 0, sizeof restart);
    failed |= run_crash(cycles, &crash, &restart) != 0;

    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    printf("libcpex process isolation — %ld CPUs; %s; µs per invoke incl. result cleanup, "
           "each invoke timed\n\n",
           cpus, quick ? "QUICK mode (smoke test: figures are indicative only)" : "full run");
    printf("%-14s %-42s %9s %9s %9s %9s %9s\n", "case", "what", "p50 µs", "p99 µs", "p99.9 µs",
           "mean µs", "x inproc");
    double base = cases[0].d.p50;
    for (size_t i = 0; i < NCASES; i++) {
        const bcase *c = &cases[i];
        if (!c->ran)
            continue;
        printf("%-14s %-42s %9.2f %9.2f %9.2f %9.2f %9.1f\n", c->name, c->what, c->d.p50, c->d.p99,
               c->d.p999, c->d.mean, base > 0 ? c->d.p50 / base : NAN);
    }
    printf("%-14s %-42s %9.1f %9.1f %9.1f %9.1f\n", "crash", "a call whose worker dies (SIGSEGV)",
           crash.p50, crash.p99, crash.p999, crash.mean);
    printf("%-14s %-42s %9.1f %9.1f %9.1f %9.1f\n", "restart",
           "crash until the next call is answered", restart.p50, restart.p99, restart.p999,
           restart.mean);
    printf("\n%d invokes per case (after %d warm-up), %d crash cycles\n", samples,
           samples / 5 + 100, cycles);
    return failed;
}
