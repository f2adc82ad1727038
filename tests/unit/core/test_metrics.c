/*
 * test_metrics.c — per plugin and hook counters and latency histograms:
 * off by default, every outcome counted in every phase (fire-and-forget
 * on its worker, cancelled and not started ones too), exact totals from
 * several threads at once and from threads that exited, series that keep
 * counting when a plugin is registered again under its name, the
 * snapshot's ownership, and the Prometheus text (HELP, TYPE, escaping).
 */
#include "test_support.h"
#include "plugins.h"

#include "core/observe.h"

#define HOOK "cmf.tool_pre_invoke"

TP_FIXTURE;

static cpex_manager *metrics_manager(void)
{
    cpex_manager_options o;
    cpex_manager_options_init(&o);
    o.metrics = true;
    return tp_manager_with(&o);
}

/* The row of (plugin, hook, kind) in a fresh snapshot; the caller frees *st. */
static const cpex_plugin_stats *row(cpex_manager *m, cpex_stats **st, const char *plugin,
                                    const char *hook, uint32_t kind)
{
    assert_int_equal(cpex_manager_stats(m, st), CPEX_OK);
    for (size_t i = 0; i < (*st)->plugin_count; i++) {
        const cpex_plugin_stats *r = cpex_stats_plugin(*st, i);
        if (r->kind == kind && strcmp(r->plugin, plugin) == 0 && strcmp(r->hook, hook) == 0)
            return r;
    }
    fail_msg("no stats row for %s on %s", plugin, hook);
    return NULL;
}

static const cpex_hook_stats *hook_row(const cpex_stats *st, const char *hook)
{
    for (size_t i = 0; i < st->hook_count; i++)
        if (strcmp(cpex_stats_hook(st, i)->hook, hook) == 0)
            return cpex_stats_hook(st, i);
    fail_msg("no stats row for hook %s", hook);
    return NULL;
}

static uint64_t bucket_total(const cpex_plugin_stats *r)
{
    uint64_t n = 0;
    for (size_t i = 0; i < CPEX_STATS_BUCKETS; i++)
        n += r->buckets[i];
    return n;
}

static void run_n(cpex_manager *m, const char *hook, int n)
{
    for (int i = 0; i < n; i++) {
        cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
        tp_run(m, hook, &res);
        cpex_pipeline_result_cleanup(&res);
    }
}

static void test_off_by_default(void **state)
{
    (void)state;
    cpex_manager *m = tp_manager();
    tp_start(m, tp_new("a", &trace));
    run_n(m, HOOK, 3);
    cpex_stats *st = NULL;
    const cpex_plugin_stats *r = row(m, &st, "a", HOOK, CPEX_STATS_HANDLER);
    assert_int_equal(st->metrics_on, 0);
    assert_int_equal(r->invocations, 0); /* listed (registered), nothing counted */
    cpex_stats_free(st);
    tp_manager_free(m);
}

static void test_outcomes_counted(void **state)
{
    (void)state;
    cpex_manager *m = metrics_manager();
    tp_plugin *a = tp_new_in("allower", &trace, CPEX_MODE_SEQUENTIAL, 1);
    a->sleep_ms = 1;
    tp_plugin *e =
        tp_failing(tp_new_in("erring", &trace, CPEX_MODE_SEQUENTIAL, 2), CPEX_ON_ERROR_IGNORE, "x");
    tp_plugin *t = tp_new_in("slow", &trace, CPEX_MODE_SEQUENTIAL, 3);
    t->timeout = 0.01;
    t->on_error = CPEX_ON_ERROR_IGNORE;
    t->sleep_ms = 25;
    tp_plugin *d =
        tp_failing(tp_new_in("disabling", &trace, CPEX_MODE_AUDIT, 1), CPEX_ON_ERROR_DISABLE, "y");
    tp_plugin *g = tp_denying(tp_new_in("gate", &trace, CPEX_MODE_SEQUENTIAL, 4), "no", "no");
    tp_start(m, a, e, t, d, g);
    run_n(m, HOOK, 3);
    cpex_stats *st = NULL;
    const cpex_plugin_stats *r = row(m, &st, "allower", HOOK, CPEX_STATS_HANDLER);
    assert_int_equal(st->metrics_on, 1);
    assert_int_equal(r->invocations, 3);
    assert_int_equal(r->allows, 3);
    assert_int_equal(r->duration_count, 3);
    assert_int_equal(bucket_total(r), 3);
    assert_true(r->duration_sum_ns >= 3 * 500000);
    double p50 = cpex_plugin_stats_quantile(r, 0.5);
    assert_true(p50 >= 500000 && p50 < 10e9);
    cpex_stats_free(st);
    r = row(m, &st, "erring", HOOK, CPEX_STATS_HANDLER);
    assert_int_equal(r->errors, 3);
    assert_int_equal(r->invocations, 3);
    cpex_stats_free(st);
    r = row(m, &st, "slow", HOOK, CPEX_STATS_HANDLER);
    assert_int_equal(r->timeouts, 3);
    cpex_stats_free(st);
    r = row(m, &st, "gate", HOOK, CPEX_STATS_HANDLER);
    assert_int_equal(r->denies, 3);
    cpex_stats_free(st);
    /* Audit runs after the sequential phase, which denied: never called. */
    r = row(m, &st, "disabling", HOOK, CPEX_STATS_HANDLER);
    assert_int_equal(r->invocations, 0);
    const cpex_hook_stats *h = hook_row(st, HOOK);
    assert_int_equal(h->invokes, 3);
    assert_int_equal(h->denies, 3);
    cpex_stats_free(st);
    tp_manager_free(m);
}

static void test_disables_and_worker_phases(void **state)
{
    (void)state;
    cpex_manager *m = metrics_manager();
    tp_plugin *d =
        tp_failing(tp_new_in("disabling", &trace, CPEX_MODE_AUDIT, 1), CPEX_ON_ERROR_DISABLE, "y");
    tp_plugin *c = tp_new_in("conc", &trace, CPEX_MODE_CONCURRENT, 1);
    tp_plugin *f = tp_new_in("bg", &trace, CPEX_MODE_FIRE_AND_FORGET, 1);
    f->sleep_ms = 2;
    tp_start(m, d, c, f);
    run_n(m, HOOK, 4);
    assert_int_equal(cpex_manager_wait_background(m, 60), CPEX_OK);
    cpex_stats *st = NULL;
    const cpex_plugin_stats *r = row(m, &st, "disabling", HOOK, CPEX_STATS_HANDLER);
    assert_int_equal(r->invocations, 1);
    assert_int_equal(r->errors, 1);
    assert_int_equal(r->disables, 1);
    cpex_stats_free(st);
    r = row(m, &st, "conc", HOOK, CPEX_STATS_HANDLER);
    assert_int_equal(r->allows, 4);
    assert_int_equal(r->duration_count, 4);
    cpex_stats_free(st);
    r = row(m, &st, "bg", HOOK, CPEX_STATS_HANDLER); /* counted on its worker thread */
    assert_int_equal(r->allows, 4);
    assert_true(r->duration_sum_ns >= 4 * 1000000);
    cpex_stats_free(st);
    tp_manager_free(m);
}

static void test_cancelled_counted(void **state)
{
    (void)state;
    cpex_manager *m = metrics_manager();
    tp_plugin *d = tp_denying(tp_new_in("fast", &trace, CPEX_MODE_CONCURRENT, 1), "x", "y");
    tp_plugin *s = tp_new_in("slow", &trace, CPEX_MODE_CONCURRENT, 2);
    s->sleep_ms = 300;
    tp_start(m, d, s);
    run_n(m, HOOK, 1);
    cpex_stats *st = NULL;
    const cpex_plugin_stats *r = row(m, &st, "slow", HOOK, CPEX_STATS_HANDLER);
    assert_int_equal(r->cancelled, 1);
    assert_int_equal(r->invocations, 1);
    cpex_stats_free(st);
    assert_int_equal(cpex_manager_wait_background(m, 60), CPEX_OK);
    tp_manager_free(m);
}

/* Several threads at once, and threads that exit: exact totals. */
typedef struct counter_job {
    cpex_manager *m;
    int n;
} counter_job;

static void *counter_thread(void *arg)
{
    counter_job *j = arg;
    run_n(j->m, HOOK, j->n);
    return NULL;
}

static void test_threads_exact_and_exited(void **state)
{
    (void)state;
    cpex_manager *m = metrics_manager();
    tp_start(m, tp_new("a", NULL));
    enum { THREADS = 4, EACH = 500 };
    pthread_t th[THREADS];
    counter_job job = {m, EACH};
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, counter_thread, &job), 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL); /* they exit: their shards fold into the retired counts */
    run_n(m, HOOK, 7);
    cpex_stats *st = NULL;
    const cpex_plugin_stats *r = row(m, &st, "a", HOOK, CPEX_STATS_HANDLER);
    assert_int_equal(r->invocations, THREADS * EACH + 7);
    assert_int_equal(r->allows, THREADS * EACH + 7);
    assert_int_equal(bucket_total(r), THREADS * EACH + 7);
    assert_int_equal(hook_row(st, HOOK)->invokes, THREADS * EACH + 7);
    cpex_stats_free(st);
    tp_manager_free(m);
}

/* A thread counting for two managers, one freed before the thread ends. */
static void *two_managers(void *arg)
{
    cpex_manager **ms = arg;
    run_n(ms[0], HOOK, 2);
    run_n(ms[1], HOOK, 3);
    tp_manager_free(ms[0]);
    run_n(ms[1], HOOK, 1);
    return NULL;
}

static void test_thread_outlives_a_manager(void **state)
{
    (void)state;
    cpex_manager *ms[2] = {metrics_manager(), metrics_manager()};
    tp_start(ms[0], tp_new("x", NULL));
    tp_start(ms[1], tp_new("y", NULL));
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, two_managers, ms), 0);
    pthread_join(t, NULL);
    cpex_stats *st = NULL;
    const cpex_plugin_stats *r = row(ms[1], &st, "y", HOOK, CPEX_STATS_HANDLER);
    assert_int_equal(r->invocations, 4);
    cpex_stats_free(st);
    tp_manager_free(ms[1]);
}

/* A series is named by plugin and hook: a plugin registered again under
 * its name (as a reload does) keeps counting into it. */
static void test_series_survive_reregistration(void **state)
{
    (void)state;
    cpex_manager *m = metrics_manager();
    tp_start(m, tp_new("a", &trace));
    run_n(m, HOOK, 2);
    assert_int_equal(cpex_manager_unregister(m, "a", NULL), CPEX_OK);
    cpex_stats *st = NULL;
    const cpex_plugin_stats *r = row(m, &st, "a", HOOK, CPEX_STATS_HANDLER);
    assert_int_equal(r->invocations, 2); /* gone, but it counted: still shown */
    cpex_stats_free(st);
    tp_reg(m, tp_new("a", &trace));
    run_n(m, HOOK, 3);
    r = row(m, &st, "a", HOOK, CPEX_STATS_HANDLER);
    assert_int_equal(r->invocations, 5);
    size_t rows_a = 0;
    for (size_t i = 0; i < st->plugin_count; i++)
        rows_a += strcmp(cpex_stats_plugin(st, i)->plugin, "a") == 0;
    assert_int_equal(rows_a, 1);
    cpex_stats_free(st);
    tp_manager_free(m);
}

static int32_t sink_ok(void *instance, const cpex_call *call, const cpex_verdict *v)
{
    (void)instance;
    (void)call;
    (void)v;
    return CPEX_ALLOW;
}

static void test_sink_rows(void **state)
{
    (void)state;
    cpex_manager *m = metrics_manager();
    tp_start(m, tp_new("a", &trace));
    cpex_sink_spec spec;
    cpex_sink_spec_init(&spec);
    spec.name = "audit";
    spec.verdict = sink_ok;
    assert_int_equal(cpex_manager_register_sink(m, &spec, NULL), CPEX_OK);
    run_n(m, HOOK, 2);
    assert_int_equal(cpex_manager_wait_background(m, 60), CPEX_OK);
    cpex_stats *st = NULL;
    const cpex_plugin_stats *r = row(m, &st, "audit", HOOK, CPEX_STATS_SINK);
    assert_int_equal(r->invocations, 2);
    assert_int_equal(r->allows, 2);
    assert_int_equal(st->audit_delivered, 2);
    cpex_stats_free(st);
    char *text = cpex_manager_metrics_text(m);
    assert_contains(text, "cpex_sink_invocations_total{sink=\"audit\",hook=\"" HOOK "\"} 2\n");
    free(text);
    tp_manager_free(m);
}

static void test_setting_turns_metrics_on(void **state)
{
    (void)state;
    cpex_manager *m = tp_manager();
    static const char yaml[] = "plugin_settings:\n  metrics: true\nplugins: []\n";
    assert_int_equal(cpex_manager_load_string(m, yaml, sizeof yaml - 1, NULL, NULL, NULL), CPEX_OK);
    tp_start(m, tp_new("a", &trace));
    run_n(m, HOOK, 2);
    cpex_stats *st = NULL;
    assert_int_equal(row(m, &st, "a", HOOK, CPEX_STATS_HANDLER)->invocations, 2);
    cpex_stats_free(st);
    tp_manager_free(m);
}

static void test_prometheus_text(void **state)
{
    (void)state;
    cpex_manager *m = metrics_manager();
    const char *odd = "odd\"hook\\with\nbreak";
    tp_plugin *a = tp_new("a", &trace);
    a->hooks[0] = odd;
    a->hooks[1] = HOOK;
    tp_start(m, a);
    run_n(m, HOOK, 3);
    char *text = cpex_manager_metrics_text(m);
    assert_non_null(text);
    assert_contains(text, "# HELP cpex_plugin_invocations_total ");
    assert_contains(text, "# TYPE cpex_plugin_invocations_total counter\n");
    assert_contains(text, "cpex_plugin_invocations_total{plugin=\"a\",hook=\"" HOOK "\"} 3\n");
    assert_contains(text, "# TYPE cpex_plugin_duration_seconds histogram\n");
    assert_contains(text, "cpex_plugin_duration_seconds_bucket{plugin=\"a\",hook=\"" HOOK
                          "\",le=\"+Inf\"} 3\n");
    assert_contains(text, "cpex_plugin_duration_seconds_count{plugin=\"a\",hook=\"" HOOK "\"} 3\n");
    assert_contains(text, "cpex_plugin_duration_seconds_bucket{plugin=\"a\",hook=\"" HOOK
                          "\",le=\"1.024e-06\"} ");
    assert_contains(text, "hook=\"odd\\\"hook\\\\with\\nbreak\"} 0\n"); /* escaped */
    assert_contains(text, "# TYPE cpex_hook_invokes_total counter\n");
    assert_contains(text, "cpex_hook_invokes_total{hook=\"" HOOK "\"} 3\n");
    assert_contains(text, "# TYPE cpex_audit_queue_depth gauge\n");
    assert_contains(text, "cpex_audit_verdicts_dropped_total 0\n");
    /* Every sample line belongs to a family declared before it. */
    char *save = NULL;
    char *copy = strdup(text);
    int families = 0;
    for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (strncmp(line, "# TYPE ", 7) == 0)
            families++;
        else if (line[0] != '#')
            assert_true(families > 0);
    }
    free(copy);
    /* Buckets are cumulative. */
    const char *needle = "cpex_plugin_duration_seconds_bucket{plugin=\"a\",hook=\"" HOOK "\",le=\"";
    unsigned long long last = 0;
    for (const char *p = strstr(text, needle); p; p = strstr(p + 1, needle)) {
        const char *v = strstr(p, "} ");
        unsigned long long n = strtoull(v + 2, NULL, 10);
        assert_true(n >= last);
        last = n;
    }
    assert_int_equal(last, 3);
    free(text);
    tp_manager_free(m);
}

static void test_buckets_and_quantiles(void **state)
{
    (void)state;
    assert_int_equal(cpex_stats_bucket_le_ns(0), 1024);
    assert_int_equal(cpex_stats_bucket_le_ns(1), 2048);
    assert_int_equal(cpex_stats_bucket_le_ns(CPEX_STATS_BUCKETS - 1), INT64_MAX);
    assert_int_equal(cpex__mbucket(0), 0);
    assert_int_equal(cpex__mbucket(1024), 0);
    assert_int_equal(cpex__mbucket(1025), 1);
    assert_int_equal(cpex__mbucket(2048), 1);
    assert_int_equal(cpex__mbucket(2049), 2);
    assert_int_equal(cpex__mbucket(INT64_MAX), CPEX_STATS_BUCKETS - 1);
    for (size_t i = 0; i + 1 < CPEX_STATS_BUCKETS; i++) {
        assert_int_equal(cpex__mbucket(cpex_stats_bucket_le_ns(i)), i);
        assert_int_equal(cpex__mbucket(cpex_stats_bucket_le_ns(i) + 1), i + 1);
    }
    cpex_plugin_stats r;
    memset(&r, 0, sizeof r);
    assert_true(cpex_plugin_stats_quantile(&r, 0.5) < 0);
    r.buckets[3] = 100; /* (4096, 8192] ns */
    double p50 = cpex_plugin_stats_quantile(&r, 0.5);
    assert_true(p50 > 4096 && p50 <= 8192);
    r.buckets[10] = 1;
    double p99 = cpex_plugin_stats_quantile(&r, 0.999);
    assert_true(p99 > 8192);
    assert_true(cpex_plugin_stats_quantile(&r, 1.5) < 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TP_TEST(test_off_by_default),
        TP_TEST(test_outcomes_counted),
        TP_TEST(test_disables_and_worker_phases),
        TP_TEST(test_cancelled_counted),
        TP_TEST(test_threads_exact_and_exited),
        TP_TEST(test_thread_outlives_a_manager),
        TP_TEST(test_series_survive_reregistration),
        TP_TEST(test_sink_rows),
        TP_TEST(test_setting_turns_metrics_on),
        TP_TEST(test_prometheus_text),
        TP_TEST(test_buckets_and_quantiles),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
