/*
 * test_timeouts.c — per-plugin timeouts in every phase: an overrun is a
 * failure under on_error, its result is discarded, waiting stops at the
 * deadline, and handlers can read their deadline.
 */
#include <math.h>

#include "test_support.h"
#include "plugins.h"

#define HOOK "cmf.tool_pre_invoke"
#define MS 1000000LL

TP_FIXTURE;

/* A plugin with a 50 ms timeout under `on_error`. */
static tp_plugin *timed(const char *name, uint32_t mode, int on_error)
{
    tp_plugin *p = tp_new_in(name, &trace, mode, TP_DEFAULT_PRIORITY);
    p->on_error = on_error;
    p->timeout = 0.05;
    return p;
}

/* A plugin that sleeps 200 ms through its 50 ms timeout. */
static tp_plugin *sleeper(const char *name, uint32_t mode, int on_error)
{
    tp_plugin *p = timed(name, mode, on_error);
    p->sleep_ms = 200;
    return p;
}

/* Initialize `m` (its plugins registered), invoke HOOK once, and check that
 * the pipeline allowed with a timeout recorded for `plugin`. */
static void start_and_expect_timeout(cpex_manager *m, const char *plugin, cpex_pipeline_result *res)
{
    tp_init(m);
    tp_run(m, HOOK, res);
    assert_allowed(res);
    assert_record(res, plugin, "timeout");
}

/* The plugin `name` is disabled by now: the next invoke does not call `p`. */
static void expect_disabled_after_one_call(cpex_manager *m, const char *name, tp_plugin *p,
                                           const char *reason_part)
{
    char reason[256];
    assert_true(tp_is_disabled(m, name, reason, sizeof reason));
    assert_contains(reason, reason_part);
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    tp_run(m, HOOK, &res);
    assert_int_equal(tp_calls(p), 1);
    cpex_pipeline_result_cleanup(&res);
}

static void test_sequential_timeout_fail(void **state)
{
    (void)state;
    cpex_manager *m = tp_manager();
    tp_plugin *s = sleeper("slowpoke", CPEX_MODE_SEQUENTIAL, CPEX_ON_ERROR_FAIL);
    tp_plugin *after = tp_new_in("after", &trace, CPEX_MODE_SEQUENTIAL, 200);
    tp_start(m, s, after);
    cpex_plugin_info info = CPEX_PLUGIN_INFO_INIT;
    assert_int_equal(cpex_manager_plugin_info(m, "slowpoke", &info), CPEX_OK);
    assert_true(info.timeout > 0.049 && info.timeout < 0.051);
    cpex_plugin_info_cleanup(&info);
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    tp_run(m, HOOK, &res);
    assert_denied(&res, "plugin_timeout", "slowpoke");
    assert_contains(res.violation->reason, "slowpoke");
    assert_contains(res.violation->reason, "50");
    assert_int_equal(tp_calls(after), 0);
    tp_finish(m, &res);
}

static void test_sequential_timeout_ignore(void **state)
{
    (void)state;
    cpex_manager *m = tp_manager();
    tp_reg(m, sleeper("slowpoke", CPEX_MODE_SEQUENTIAL, CPEX_ON_ERROR_IGNORE));
    tp_plugin *after = tp_new_in("after", &trace, CPEX_MODE_SEQUENTIAL, 200);
    tp_reg(m, after);
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    start_and_expect_timeout(m, "slowpoke", &res);
    const cpex_error_record *r = tp_find_record(&res, "slowpoke", "timeout");
    assert_contains(r->message, "50"); /* the limit, in ms */
    assert_int_equal(tp_calls(after), 1);
    assert_false(tp_is_disabled(m, "slowpoke", NULL, 0));
    tp_finish(m, &res);
}

static void test_sequential_timeout_disable(void **state)
{
    (void)state;
    cpex_manager *m = tp_manager();
    tp_plugin *s = sleeper("slowpoke", CPEX_MODE_SEQUENTIAL, CPEX_ON_ERROR_DISABLE);
    tp_reg(m, s);
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    start_and_expect_timeout(m, "slowpoke", &res);
    cpex_pipeline_result_cleanup(&res);
    expect_disabled_after_one_call(m, "slowpoke", s, "timed out");
    tp_manager_free(m);
}

static void test_overrun_result_discarded(void **state)
{
    (void)state;
    cpex_manager *m = tp_manager();
    /* Modifies, writes a header and sets metadata, then overruns. */
    tp_plugin *s = timed("late_modifier", CPEX_MODE_SEQUENTIAL, CPEX_ON_ERROR_IGNORE);
    s->append_text = "+late";
    s->caps[0] = "write_headers";
    s->set_header_name = "X-Late";
    s->set_header_value = "1";
    s->meta_key = "late";
    s->meta_value = "true";
    s->sleep_after_ms = 200;
    tp_plugin *next = tp_new_in("next", &trace, CPEX_MODE_SEQUENTIAL, 200);
    next->caps[0] = "read_headers";
    next->read_header = "x-late";
    /* also in transform */
    tp_plugin *xf = timed("late_xf", CPEX_MODE_TRANSFORM, CPEX_ON_ERROR_IGNORE);
    xf->append_text = "+xf";
    xf->sleep_after_ms = 200;
    tp_reg(m, s);
    tp_reg(m, next);
    tp_reg(m, xf);
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    start_and_expect_timeout(m, "late_modifier", &res);
    assert_int_equal(s->rc_payload, CPEX_HOST_OK); /* accepted during the call ... */
    assert_record(&res, "late_xf", "timeout");
    assert_string_equal(next->seen_text, "hello"); /* ... but discarded */
    assert_string_equal(next->seen_header, "(none)");
    assert_false(res.payload_modified);
    assert_null(res.modified_payload);
    assert_false(res.extensions_modified);
    assert_null(res.extensions);
    assert_null(res.metadata);
    tp_finish(m, &res);
}

static void test_overrun_deny_discarded(void **state)
{
    (void)state;
    cpex_manager *m = tp_manager();
    tp_plugin *s = timed("late_denier", CPEX_MODE_SEQUENTIAL, CPEX_ON_ERROR_IGNORE);
    tp_denying(s, "too_late", NULL);
    s->sleep_after_ms = 200;
    tp_reg(m, s);
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    start_and_expect_timeout(m, "late_denier", &res);
    tp_finish(m, &res);
}

static void test_handler_reads_deadline(void **state)
{
    (void)state;
    cpex_manager_options o;
    cpex_manager_options_init(&o);
    o.default_timeout = 5.0;
    cpex_manager *m = tp_manager_with(&o);
    tp_plugin *own = tp_new("own_timeout", &trace);
    own->timeout = 2.0;
    tp_plugin *dflt = tp_new("default_timeout", &trace);
    tp_plugin *co = tp_new_in("conc", &trace, CPEX_MODE_CONCURRENT, TP_DEFAULT_PRIORITY);
    co->timeout = 1.0;
    tp_plugin *ff = tp_new_in("faf", &trace, CPEX_MODE_FIRE_AND_FORGET, TP_DEFAULT_PRIORITY);
    ff->timeout = 3.0;
    tp_start(m, own, dflt, co, ff);
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    tp_run(m, HOOK, &res);
    assert_allowed(&res);
    assert_int_equal(cpex_manager_wait_background(m, 5), CPEX_OK);
    int64_t left_own = own->deadline_ns - own->called_at_ns;
    int64_t left_dflt = dflt->deadline_ns - dflt->called_at_ns;
    int64_t left_co = co->deadline_ns - co->called_at_ns;
    int64_t left_ff = ff->deadline_ns - ff->called_at_ns;
    print_message("deadline left: own %lld ms, default %lld ms, conc %lld ms, faf %lld ms\n",
                  (long long)(left_own / MS), (long long)(left_dflt / MS),
                  (long long)(left_co / MS), (long long)(left_ff / MS));
    assert_true(left_own > 1500 * MS && left_own <= 2000 * MS);
    assert_true(left_dflt > 4500 * MS && left_dflt <= 5000 * MS);
    assert_true(left_co > 500 * MS && left_co <= 1000 * MS);
    assert_true(left_ff > 2500 * MS && left_ff <= 3000 * MS);
    /* Same clock as CLOCK_MONOTONIC. */
    assert_true(own->deadline_ns > tp_now_ns());
    cpex_plugin_info info = CPEX_PLUGIN_INFO_INIT;
    assert_int_equal(cpex_manager_plugin_info(m, "default_timeout", &info), CPEX_OK);
    assert_true(info.timeout == 5.0);
    cpex_plugin_info_cleanup(&info);
    tp_finish(m, &res);
}

/* Timeouts of a second or more are checked on the ticker's clock
 * (util/coarse_clock.h), not by a clock read per call: an overrun is still
 * charged to the plugin that ran long, and to no plugin before or after it,
 * also when many short calls ran on the ticker's clock first. */
static void test_long_timeout_overrun_charged_to_its_plugin(void **state)
{
    (void)state;
    cpex_manager *m = tp_manager();
    tp_plugin *before = tp_new("before", &trace);
    before->timeout = 1.0;
    before->priority = 1;
    tp_plugin *slow = tp_new("slow_second", &trace);
    slow->timeout = 1.0;
    slow->priority = 2;
    slow->on_error = CPEX_ON_ERROR_IGNORE;
    tp_plugin *after = tp_new("after", &trace);
    after->timeout = 1.0;
    after->priority = 3;
    tp_start(m, before, slow, after);
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    /* Warm: the ticker runs; no overrun yet. */
    for (int i = 0; i < 2000; i++) {
        tp_run(m, HOOK, &res);
        assert_allowed(&res);
        assert_int_equal(res.error_count, 0);
        cpex_pipeline_result_cleanup(&res);
        res = (cpex_pipeline_result)CPEX_PIPELINE_RESULT_INIT;
    }
    slow->sleep_ms = 1300;
    tp_run(m, HOOK, &res);
    assert_allowed(&res);
    assert_int_equal(res.error_count, 1);
    assert_record(&res, "slow_second", "timeout");
    assert_int_equal(tp_calls(after), 2001);
    tp_finish(m, &res);
}

/* Work in 10 ms steps until 30 ms before the deadline, then return. */
static int32_t cooperative(tp_plugin *p, const cpex_call *call)
{
    int steps = 0;
    while (tp_now_ns() < call->deadline_ns - 30 * MS) {
        tp_sleep_ms(10);
        steps++;
    }
    snprintf(p->seen_global, sizeof p->seen_global, "%d", steps);
    return tp_append_to_payload(call, "+coop") == CPEX_HOST_OK ? CPEX_ALLOW : CPEX_ERROR;
}

static void test_cooperative_handler_stops_in_time(void **state)
{
    (void)state;
    cpex_manager *m = tp_manager();
    tp_plugin *p = tp_new("coop", &trace);
    p->timeout = 0.2;
    p->custom = cooperative;
    tp_start(m, p);
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    tp_run(m, HOOK, &res);
    assert_allowed(&res);
    assert_int_equal(res.error_count, 0);
    assert_true(atoi(p->seen_global) >= 5);
    assert_string_equal(tp_final_text(&res, NULL), "hello+coop");
    tp_finish(m, &res);
}

static void test_concurrent_timeout_fail(void **state)
{
    (void)state;
    cpex_manager *m = tp_manager();
    tp_plugin *c = timed("slow_conc", CPEX_MODE_CONCURRENT, CPEX_ON_ERROR_FAIL);
    c->sleep_ms = 600;
    tp_plugin *ok = tp_new_in("ok_conc", &trace, CPEX_MODE_CONCURRENT, TP_DEFAULT_PRIORITY);
    tp_plugin *ff = tp_new_in("ff", &trace, CPEX_MODE_FIRE_AND_FORGET, TP_DEFAULT_PRIORITY);
    tp_start(m, c, ok, ff);
    int64_t t0 = tp_now_ns();
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    tp_run(m, HOOK, &res);
    int64_t elapsed = tp_now_ns() - t0;
    assert_denied(&res, "plugin_timeout", "slow_conc");
    /* Waited until the deadline, not for the whole sleep. */
    assert_true(elapsed >= 45 * MS);
    assert_true(elapsed < 400 * MS);
    assert_int_equal(tp_calls(ok), 1);
    cpex_pipeline_result_cleanup(&res);
    assert_int_equal(cpex_manager_wait_background(m, 5), CPEX_OK);
    assert_int_equal(tp_calls(ff), 0);
    tp_manager_free(m);
}

static void test_concurrent_timeout_ignore_late_result_discarded(void **state)
{
    (void)state;
    cpex_manager *m = tp_manager();
    tp_plugin *c = timed("slow_conc", CPEX_MODE_CONCURRENT, CPEX_ON_ERROR_IGNORE);
    c->sleep_ms = 500;
    tp_denying(c, "late", NULL); /* comes too late to count */
    c->meta_key = "late";
    c->meta_value = "1";
    tp_plugin *ff = tp_new_in("ff", &trace, CPEX_MODE_FIRE_AND_FORGET, TP_DEFAULT_PRIORITY);
    tp_start(m, c, ff);
    int64_t t0 = tp_now_ns();
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    /* the caller's message is freed right after: the late handler must not use it */
    tp_run(m, HOOK, &res);
    int64_t elapsed = tp_now_ns() - t0;
    assert_allowed(&res);
    assert_true(elapsed < 350 * MS);
    assert_record(&res, "slow_conc", "timeout");
    assert_contains(tp_find_record(&res, "slow_conc", "timeout")->message, "50");
    assert_null(res.metadata);
    cpex_pipeline_result_cleanup(&res);
    /* Background waits cover the late concurrent handler too. */
    assert_int_equal(cpex_manager_wait_background(m, 5), CPEX_OK);
    assert_int_equal(tp_calls(ff), 1);
    assert_string_equal(c->seen_text, "hello");
    tp_manager_free(m);
}

static void test_concurrent_timeout_disable(void **state)
{
    (void)state;
    cpex_manager *m = tp_manager();
    tp_plugin *c = sleeper("slow_conc", CPEX_MODE_CONCURRENT, CPEX_ON_ERROR_DISABLE);
    tp_reg(m, c);
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    start_and_expect_timeout(m, "slow_conc", &res);
    cpex_pipeline_result_cleanup(&res);
    expect_disabled_after_one_call(m, "slow_conc", c, "timed out");
    tp_manager_free(m);
}

static void test_free_with_late_concurrent_handler(void **state)
{
    (void)state;
    /* The manager is freed while a timed-out handler still runs: free
     * waits for it; nothing is used after it is freed (ASan). */
    cpex_manager *m = tp_manager();
    tp_plugin *c = sleeper("slow_conc", CPEX_MODE_CONCURRENT, CPEX_ON_ERROR_IGNORE);
    c->append_text = "+late";
    c->caps[0] = "write_headers";
    c->set_header_name = "X";
    c->set_header_value = "1";
    tp_start(m, c);
    cpex_extensions *ext = cpex_extensions_new();
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    tp_invoke_text(m, HOOK, "hello", ext, NULL, &res);
    cpex_extensions_unref(ext);
    assert_record(&res, "slow_conc", "timeout");
    tp_finish(m, &res);
    assert_int_equal(atomic_load(&c->shutdown_calls), 1);
    assert_int_equal(atomic_load(&c->destroy_calls), 1);
    assert_int_equal(c->rc_payload, CPEX_HOST_EDENIED);
}

static void test_transform_and_audit_timeouts_recorded(void **state)
{
    (void)state;
    cpex_manager *m = tp_manager();
    tp_plugin *x = sleeper("slow_xf", CPEX_MODE_TRANSFORM, CPEX_ON_ERROR_FAIL);
    tp_plugin *a = sleeper("slow_audit", CPEX_MODE_AUDIT, CPEX_ON_ERROR_FAIL);
    tp_plugin *co = tp_new_in("co", &trace, CPEX_MODE_CONCURRENT, TP_DEFAULT_PRIORITY);
    tp_reg(m, x);
    tp_reg(m, a);
    tp_reg(m, co);
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    start_and_expect_timeout(m, "slow_xf", &res); /* neither phase can halt */
    assert_record(&res, "slow_audit", "timeout");
    assert_int_equal(tp_calls(co), 1);
    tp_finish(m, &res);
}

static void test_faf_timeout_to_background_log(void **state)
{
    (void)state;
    cpex_manager *m = tp_manager();
    tp_start(m, sleeper("slow_faf", CPEX_MODE_FIRE_AND_FORGET, CPEX_ON_ERROR_FAIL));
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    tp_run(m, HOOK, &res);
    assert_allowed(&res);
    assert_int_equal(res.error_count, 0);
    cpex_pipeline_result_cleanup(&res);
    assert_int_equal(cpex_manager_wait_background(m, 5), CPEX_OK);
    cpex_error_record *recs = NULL;
    size_t n = cpex_manager_take_background_errors(m, &recs);
    const cpex_error_record *r = tp_find_record_in(recs, n, "slow_faf", "timeout");
    assert_non_null(r);
    assert_contains(r->message, "50");
    cpex_error_records_free(recs, n);
    tp_manager_free(m);
}

static void test_manager_default_timeout_applies(void **state)
{
    (void)state;
    cpex_manager_options o;
    cpex_manager_options_init(&o);
    o.default_timeout = 0.05;
    cpex_manager *m = tp_manager_with(&o);
    tp_plugin *s = tp_new("slow_default", &trace);
    s->sleep_ms = 200; /* no own timeout */
    tp_start(m, s);
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    tp_run(m, HOOK, &res);
    assert_denied(&res, "plugin_timeout", "slow_default");
    tp_finish(m, &res);
}

/* Every duration of the host API has a documented range, checked where it
 * is given: nothing out of it reaches a deadline computation. */
static void test_timeout_ranges_host_api(void **state)
{
    (void)state;
    static const double bad[] = {0,     -1,     NAN,     INFINITY, -INFINITY,
                                 1e-12, 0.0009, 86400.5, 9.3e9,    1e12};
    for (size_t i = 0; i < CPEX__COUNT(bad); i++) {
        cpex_manager_options o;
        cpex_manager_options_init(&o);
        o.default_timeout = bad[i];
        cpex_manager *m = NULL;
        cpex_error err = CPEX_ERROR_INIT;
        assert_int_equal(cpex_manager_new(&o, &m, &err), CPEX_E_INVALID);
        assert_null(m);
        assert_contains(cpex_error_message(&err),
                        "cpex_manager_options.default_timeout must be a number of seconds from "
                        "0.001 to 86400");
        cpex_error_cleanup(&err);
    }
    cpex_manager_options o;
    cpex_manager_options_init(&o);
    o.default_timeout = CPEX_TIMEOUT_MIN;
    tp_manager_free(tp_manager_with(&o));
    cpex_manager_options_init(&o);
    o.default_timeout = CPEX_TIMEOUT_MAX;
    cpex_manager *m = tp_manager_with(&o);

    /* cpex_plugin_spec.timeout: 0 is the manager's default, else the range. */
    tp_plugin *p = tp_new("ranged", &trace);
    for (size_t i = 1; i < CPEX__COUNT(bad); i++) {
        p->timeout = bad[i];
        cpex_error err = CPEX_ERROR_INIT;
        assert_int_equal(tp_reg_err(m, p, &err), CPEX_E_INVALID);
        assert_contains(cpex_error_message(&err),
                        "cpex_plugin_spec.timeout must be 0 (the manager's default) or a number "
                        "of seconds from 0.001 to 86400");
        cpex_error_cleanup(&err);
    }
    assert_int_equal(cpex_manager_plugin_count(m), 0);
    p->timeout = CPEX_TIMEOUT_MIN;
    tp_reg(m, p);

    /* wait_background: any number but NaN; infinite means no limit. */
    assert_int_equal(cpex_manager_wait_background(m, NAN), CPEX_E_INVALID);
    assert_int_equal(cpex_manager_wait_background(m, INFINITY), CPEX_OK);
    assert_int_equal(cpex_manager_wait_background(m, -INFINITY), CPEX_OK);
    assert_int_equal(cpex_manager_wait_background(m, 0), CPEX_OK);

    /* A configuration: the durations are checked at load, each error with its
     * place (parsing stops the load before any factory is looked up). */
    static const char yaml[] = "plugin_settings:\n  plugin_timeout: 9.3e9\n"
                               "plugins:\n  - name: slow\n    kind: test\n"
                               "    hooks: [cmf.tool_pre_invoke]\n    timeout: 1e12\n";
    cpex_error err = CPEX_ERROR_INIT;
    assert_int_equal(cpex_manager_load_string(m, yaml, strlen(yaml), "big.yaml", NULL, &err),
                     CPEX_E_CONFIG);
    assert_int_equal(err.count, 2);
    assert_contains(cpex_error_message(&err),
                    "big.yaml:2:19: 'plugin_settings.plugin_timeout' must be a number of seconds "
                    "from 0.001 to 86400, got 9.3e9");
    assert_contains(cpex_error_message(&err),
                    "big.yaml:7:14: plugin 'slow': 'timeout' must be a number of seconds from "
                    "0.001 to 86400, got 1e12");
    cpex_error_cleanup(&err);
    tp_manager_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TP_TEST(test_sequential_timeout_fail),
        TP_TEST(test_sequential_timeout_ignore),
        TP_TEST(test_sequential_timeout_disable),
        TP_TEST(test_overrun_result_discarded),
        TP_TEST(test_overrun_deny_discarded),
        TP_TEST(test_handler_reads_deadline),
        TP_TEST(test_long_timeout_overrun_charged_to_its_plugin),
        TP_TEST(test_cooperative_handler_stops_in_time),
        TP_TEST(test_concurrent_timeout_fail),
        TP_TEST(test_concurrent_timeout_ignore_late_result_discarded),
        TP_TEST(test_concurrent_timeout_disable),
        TP_TEST(test_free_with_late_concurrent_handler),
        TP_TEST(test_transform_and_audit_timeouts_recorded),
        TP_TEST(test_faf_timeout_to_background_log),
        TP_TEST(test_manager_default_timeout_applies),
        TP_TEST(test_timeout_ranges_host_api),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
