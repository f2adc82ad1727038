/*
 * bench_state.c — cpex_bench_state: what a state slot costs on each backend,
 * and what the rate-limit example's invoke costs on each.
 *
 *   cpex_bench_state           full run (starts its own redis-server on a free
 *                              loopback port, with no persistence; stops it after)
 *   cpex_bench_state --quick   a few thousand calls of each case (smoke test)
 *
 * Each sample is one call timed with CLOCK_MONOTONIC: a slot called from a
 * handler (incr, and get of a short value), and a whole invoke of the rate
 * limiter (one tool call; the memory backend, then Redis). Reported: p50,
 * p99 and the mean, in microseconds, over all samples after a warm-up.
 * Redis runs on the same 2-core machine as the client, so its figures are
 * a loopback round trip plus the server's work, both competing for CPU.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cpex/cpex.h"
#include "redis_server.h"

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void report(const char *name, double *us, int n, int failures)
{
    qsort(us, (size_t)n, sizeof *us, cmp_d);
    double sum = 0;
    for (int i = 0; i < n; i++)
        sum += us[i];
    printf("%-34s %8d  %9.2f  %9.2f  %9.2f%s\n", name, n, us[n / 2], us[(int)((double)n * 0.99)],
           sum / n, failures ? "  (FAILED CALLS)" : "");
}

/* ---- a slot in a loop, inside one handler call ---- */

typedef struct slot_case {
    int kind; /* 0 incr, 1 get */
    int n;
    double *us;
    int failures;
} slot_case;

static slot_case *g_case;

static int32_t slot_handler(void *instance, const cpex_call *call)
{
    (void)instance;
    const cpex_host_api *h = cpex_host_api_get();
    slot_case *c = g_case;
    char key[32];
    h->state_set(call, "value", "some text of a value", 20, 0);
    for (int i = 0; i < c->n; i++) {
        snprintf(key, sizeof key, "counter-%d", i % 64);
        int64_t t0 = now_ns();
        int32_t st;
        if (c->kind == 0) {
            st = h->state_incr(call, key, 1, 60000, NULL, NULL);
        } else {
            cpex_str v;
            st = h->state_get(call, "value", &v);
            if (st == CPEX_HOST_OK)
                h->free((void *)v.ptr);
        }
        c->us[i] = (double)(now_ns() - t0) / 1000.0;
        c->failures += st != CPEX_HOST_OK;
    }
    return CPEX_ALLOW;
}

static cpex_manager *manager(const char *url)
{
    cpex_manager_options o;
    cpex_manager_options_init(&o);
    cpex_state_options so;
    cpex_state_options_init(&so);
    if (url) {
        so.backend = CPEX_STATE_REDIS;
        so.url = url;
    }
    o.state = url ? &so : NULL; /* memory: the default, as a configuration may choose */
    cpex_manager *m = NULL;
    cpex_error err = CPEX_ERROR_INIT;
    if (cpex_manager_new(&o, &m, &err) != CPEX_OK || cpex_loader_register(m, &err) != CPEX_OK) {
        fprintf(stderr, "cpex_bench_state: %s\n", cpex_error_message(&err));
        exit(1);
    }
    return m;
}

static void run_slots(const char *label, const char *url, int n)
{
    static const cpex_handler_reg h[] = {CPEX_HANDLER("bench.state", slot_handler, NULL)};
    cpex_manager *m = manager(url);
    cpex_plugin_registration reg;
    memset(&reg, 0, sizeof reg);
    reg.struct_size = (uint32_t)sizeof reg;
    reg.abi_version = CPEX_ABI_VERSION;
    reg.handler_count = 1;
    reg.handlers = h;
    cpex_plugin_spec spec;
    cpex_plugin_spec_init(&spec);
    spec.name = "bench";
    spec.timeout = 600;
    cpex_error err = CPEX_ERROR_INIT;
    if (cpex_manager_register(m, &spec, &reg, &err) != CPEX_OK ||
        cpex_manager_initialize(m, &err) != CPEX_OK) {
        fprintf(stderr, "cpex_bench_state: %s\n", cpex_error_message(&err));
        exit(1);
    }
    const char *names[] = {"state_incr", "state_get"};
    for (int kind = 0; kind < 2; kind++) {
        slot_case c = {kind, n, calloc((size_t)n, sizeof(double)), 0};
        g_case = &c;
        cpex_pipeline_result r = CPEX_PIPELINE_RESULT_INIT;
        c.n = n / 10; /* warm-up: connections, tables */
        cpex_manager_invoke(m, "bench.state", NULL, NULL, NULL, &r);
        cpex_pipeline_result_cleanup(&r);
        c.n = n;
        c.failures = 0;
        cpex_manager_invoke(m, "bench.state", NULL, NULL, NULL, &r);
        cpex_pipeline_result_cleanup(&r);
        char name[64];
        snprintf(name, sizeof name, "%s, %s", names[kind], label);
        report(name, c.us, n, c.failures);
        free(c.us);
    }
    cpex_manager_free(m);
}

/* ---- the rate limiter's invoke ---- */

static void run_rate_limit(const char *label, const char *url, int n)
{
    cpex_manager *m = manager(NULL);
    char yaml[1024];
    snprintf(yaml, sizeof yaml,
             "%s%s%s"
             "plugins:\n"
             "  - name: rate-limit\n"
             "    kind: \"lib:%s/librate_limit.so\"\n"
             "    hooks: [cmf.tool_pre_invoke]\n"
             "    capabilities: [read_subject]\n"
             "    config: { limit: 1000000000, window_seconds: 3600 }\n",
             url ? "plugin_settings:\n  state: { backend: redis, url: \"" : "", url ? url : "",
             url ? "\" }\n" : "", CPEX_PLUGIN_DIR);
    cpex_error err = CPEX_ERROR_INIT;
    if (cpex_manager_load_string(m, yaml, strlen(yaml), "bench.yaml", NULL, &err) != CPEX_OK ||
        cpex_manager_initialize(m, &err) != CPEX_OK) {
        fprintf(stderr, "cpex_bench_state: %s\n", cpex_error_message(&err));
        exit(1);
    }
    const char *json =
        "{\"role\":\"assistant\",\"content\":[{\"content_type\":\"tool_call\","
        "\"content\":{\"tool_call_id\":\"c1\",\"name\":\"search\",\"arguments\":{}}}]}";
    cpex_cmf_message *msg = cpex_cmf_parse(json, strlen(json), NULL);
    cpex_payload p;
    memset(&p, 0, sizeof p);
    p.struct_size = (uint32_t)sizeof p;
    p.kind = CPEX_PAYLOAD_CMF;
    p.type_name.ptr = "cmf";
    p.type_name.len = 3;
    p.data = msg;
    double *us = calloc((size_t)n, sizeof *us);
    int failures = 0;
    for (int i = -n / 10; i < n; i++) {
        cpex_pipeline_result r = CPEX_PIPELINE_RESULT_INIT;
        int64_t t0 = now_ns();
        cpex_manager_invoke(m, "cmf.tool_pre_invoke", &p, NULL, NULL, &r);
        if (i >= 0) {
            us[i] = (double)(now_ns() - t0) / 1000.0;
            failures += !r.continue_processing;
        }
        cpex_pipeline_result_cleanup(&r);
    }
    char name[64];
    snprintf(name, sizeof name, "rate-limit invoke, %s", label);
    report(name, us, n, failures);
    free(us);
    cpex_cmf_free(msg);
    cpex_manager_free(m);
}

int main(int argc, char **argv)
{
    int quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
    if (argc > 1 && !quick) {
        fprintf(stderr, "usage: cpex_bench_state [--quick]\n");
        return 2;
    }
    int n = quick ? 2000 : 50000;
    test_redis srv;
    memset(&srv, 0, sizeof srv);
    if (!test_redis_start(&srv, 0)) {
        fprintf(stderr, "cpex_bench_state: cannot start redis-server: %s\n", srv.error);
        return 1;
    }
    printf("cpex_bench_state: %s, %d samples per case (microseconds)\n",
           quick ? "QUICK mode (smoke test: figures are indicative only)" : "full run", n);
    printf("%-34s %8s  %9s  %9s  %9s\n", "case", "samples", "p50", "p99", "mean");
    run_slots("memory", NULL, n);
    run_slots("redis (loopback)", srv.url, n);
    run_rate_limit("memory", NULL, n);
    run_rate_limit("redis (loopback)", srv.url, n);
    test_redis_stop(&srv);
    return 0;
}
