/*
 * test_timeouts.c — per-plugin timeouts in every phase: an overrun is a
 * failure under on_error, its result is discarded, waiting stops at the
 * deadline, and handlers can read their deadline.
 */
#include "test_support.h"
#include "plugins.h"

#define HOOK "cmf.tool_pre_invoke"
#define MS 1000000LL

static tp_trace trace;

static int setup(void **state)
{
    (void)state;
    tp_trace_init(&trace);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    tp_free_all();
    return 0;
}

static void invoke(cpex_manager *m, cpex_pipeline_result *res)
{
    cpex_cmf_message *msg = tp_msg("hello");
    tp_invoke(m, HOOK, msg, NULL, NULL, res);
    cpex_cmf_free(msg);
}

static tp_plugin *sleeper(const char *name, uint32_t mode, int on_error)
{
    tp_plugin *p = tp_new(name, &trace);
    p->mode = mode;
    p->on_error = on_error;
    p->timeout = 0.05;
    p->sleep_ms = 200;
    return p;
}

static void test_sequential_timeout_fail(void **state)
{
    (void)state;
    cpex_manager *m = tp_manager();
    tp_plugin *s = sleeper("slowpoke", CPEX_MODE_SEQUENTIAL, CPEX_ON_ERROR_FAIL);
    tp_plugin *after = tp_new("after", &trace);
    after->priority = 200;
    tp_reg(m, s);
    tp_reg(m, after);
    tp_init(m);
    cpex_plugin_info info;
    assert_int_equal(cpex_manager_plugin_info(m, "slowpoke", &info), CPEX_OK);
    assert_true(info.timeout > 0.049 && info.timeout < 0.051);
    cpex_plugin_info_cleanup(&info);
    cpex_pipeline_result res;
    invoke(m, &res);
    assert_denied(&res, "plugin_timeout", "slowpoke");
    assert_contains(res.violation->reason, "slowpoke");
    assert_contains(res.violation->reason, "50");
    assert_int_equal(tp_calls(after), 0);
    cpex_pipeline_result_cleanup(&res);
    tp_manager_free(m);
}

static void test_sequential_timeout_ignore(void **state)
{
    (void)state;
    cpex_manager *m = tp_manager();
    tp_plugin *s = sleeper("slowpoke", CPEX_MODE_SEQUENTIAL, CPEX_ON_ERROR_IGNORE);
    tp_plugin *after = tp_new("after", &trace);
    after->priority = 200;
    tp_reg(m, s);
    tp_reg(m, after);
    tp_init(m);
    cpex_pipeline_result res;
    invoke(m, &res);
    assert_allowed(&res);
    assert_record(&res, "slowpoke", "timeout");
    const cpex_error_record *r = tp_find_record(&res, "slowpoke", "timeout");
    assert_contains(r->message, "50"); /* the limit, in ms */
    assert_int_equal(tp_calls(after), 1);
    assert_false(tp_is_disabled(m, "slowpoke", NULL, 0));
    cpex_pipeline_result_cleanup(&res);
    tp_manager_free(m);
}

static void test_sequential_timeout_disable(void **state)
{
    (void)state;
    cpex_manager *m = tp_manager();
    tp_plugin *s = sleeper("slowpoke", CPEX_MODE_SEQUENTIAL, CPEX_ON_ERROR_DISABLE);
    tp_reg(m, s);
    tp_init(m);
    cpex_pipeline_result res;
    invoke(m, &res);
    assert_allowed(&res);
    assert_record(&res, "slowpoke", "timeout");
    cpex_pipeline_result_cleanup(&res);
    char reason[256];
    assert_true(tp_is_disabled(m, "slowpoke", reason, sizeof reason));
    assert_contains(reason, "timed out");
    invoke(m, &res);
    assert_int_equal(tp_calls(s), 1);
    cpex_pipeline_result_cleanup(&res);
    tp_manager_free(m);
}

static void test_overrun_result_discarded(void **state)
{
    (void)state;
    cpex_manager *m = tp_manager();
    /* Modifies, writes a header and sets metadata, then overruns. */
    tp_plugin *s = tp_new("late_modifier", &trace);
    s->on_error = CPEX_ON_ERROR_IGNORE;
    s->timeout = 0.05;
    s->append_text = "+late";
    s->caps[0] = "write_headers";
    s->set_header_name = "X-Late";
    s->set_header_value = "1";
    s->meta_key = "late";
    s->meta_value = "true";
    s->sleep_after_ms = 200;
    tp_plugin *next = tp_new("next", &trace);
    next->priority = 200;
    next->caps[0] = "read_headers";
    next->read_header = "x-late";
    tp_plugin *xf = tp_new("late_xf", &trace); /* also in transform */
    xf->mode = CPEX_MODE_TRANSFORM;
    xf->on_error = CPEX_ON_ERROR_IGNORE;
    xf->timeout = 0.05;
    xf->append_text = "+xf";
    xf->sleep_after_ms = 200;
    tp_reg(m, s);
    tp_reg(m, next);
    tp_reg(m, xf);
    tp_init(m);
    cpex_pipeline_result res;
    invoke(m, &res);
    assert_allowed(&res);
    assert_int_equal(s->rc_payload, CPEX_HOST_OK); /* accepted during the call ... */
    assert_record(&res, "late_modifier", "timeout");
    assert_record(&res, "late_xf", "timeout");
    assert_string_equal(next->seen_text, "hello"); /* ... but discarded */
    assert_string_equal(next->seen_header, "(none)");
    assert_false(res.payload_modified);
    assert_null(res.modified_payload);
    assert_false(res.extensions_modified);
    assert_null(res.extensions);
    assert_null(res.metadata);
    cpex_pipeline_result_cleanup(&res);
    tp_manager_free(m);
}

static void test_overrun_deny_discarded(void **state)
{
    (void)state;
    cpex_manager *m = tp_manager();
    tp_plugin *s = tp_new("late_denier", &trace);
    s->on_error = CPEX_ON_ERROR_IGNORE;
    s->timeout = 0.05;
    s->decision = CPEX_DENY;
    s->deny_code = "too_late";
    s->sleep_after_ms = 200;
    tp_reg(m, s);
    tp_init(m);
    cpex_pipeline_result res;
    invoke(m, &res);
    assert_allowed(&res);
    assert_record(&res, "late_denier", "timeout");
    cpex_pipeline_result_cleanup(&res);
    tp_manager_free(m);
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
    tp_plugin *co = tp_new("conc", &trace);
    co->mode = CPEX_MODE_CONCURRENT;
    co->timeout = 1.0;
    tp_plugin *ff = tp_new("faf", &trace);
    ff->mode = CPEX_MODE_FIRE_AND_FORGET;
    ff->timeout = 3.0;
    tp_reg(m, own);
    tp_reg(m, dflt);
    tp_reg(m, co);
    tp_reg(m, ff);
    tp_init(m);
    cpex_pipeline_result res;
    invoke(m, &res);
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
    cpex_plugin_info info;
    assert_int_equal(cpex_manager_plugin_info(m, "default_timeout", &info), CPEX_OK);
    assert_true(info.timeout == 5.0);
    cpex_plugin_info_cleanup(&info);
    cpex_pipeline_result_cleanup(&res);
    tp_manager_free(m);
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
    tp_reg(m, p);
    tp_init(m);
    cpex_pipeline_result res;
    invoke(m, &res);
    assert_allowed(&res);
    assert_int_equal(res.error_count, 0);
    assert_true(atoi(p->seen_global) >= 5);
    assert_string_equal(tp_final_text(&res, NULL), "hello+coop");
    cpex_pipeline_result_cleanup(&res);
    tp_manager_free(m);
}

static void test_concurrent_timeout_fail(void **state)
{
    (void)state;
    cpex_manager *m = tp_manager();
    tp_plugin *c = tp_new("slow_conc", &trace);
    c->mode = CPEX_MODE_CONCURRENT;
    c->on_error = CPEX_ON_ERROR_FAIL;
    c->timeout = 0.05;
    c->sleep_ms = 600;
    tp_plugin *ok = tp_new("ok_conc", &trace);
    ok->mode = CPEX_MODE_CONCURRENT;
    tp_plugin *ff = tp_new("ff", &trace);
    ff->mode = CPEX_MODE_FIRE_AND_FORGET;
    tp_reg(m, c);
    tp_reg(m, ok);
    tp_reg(m, ff);
    tp_init(m);
    int64_t t0 = tp_now_ns();
    cpex_pipeline_result res;
    invoke(m, &res);
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
    tp_plugin *c = tp_new("slow_conc", &trace);
    c->mode = CPEX_MODE_CONCURRENT;
    c->on_error = CPEX_ON_ERROR_IGNORE;
    c->timeout = 0.05;
    c->sleep_ms = 500;
    c->decision = CPEX_DENY; /* comes too late to count */
    c->deny_code = "late";
    c->meta_key = "late";
    c->meta_value = "1";
    tp_plugin *ff = tp_new("ff", &trace);
    ff->mode = CPEX_MODE_FIRE_AND_FORGET;
    tp_reg(m, c);
    tp_reg(m, ff);
    tp_init(m);
    int64_t t0 = tp_now_ns();
    cpex_pipeline_result res;
    invoke(m,
           &res); /* the caller's message is freed right after: the late handler must not use it */
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
    tp_init(m);
    cpex_pipeline_result res;
    invoke(m, &res);
    assert_allowed(&res);
    assert_record(&res, "slow_conc", "timeout");
    cpex_pipeline_result_cleanup(&res);
    assert_true(tp_is_disabled(m, "slow_conc", NULL, 0));
    invoke(m, &res);
    cpex_pipeline_result_cleanup(&res);
    assert_int_equal(tp_calls(c), 1);
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
    tp_reg(m, c);
    tp_init(m);
    cpex_extensions *ext = cpex_extensions_new();
    cpex_pipeline_result res;
    cpex_cmf_message *msg = tp_msg("hello");
    tp_invoke(m, HOOK, msg, ext, NULL, &res);
    cpex_cmf_free(msg);
    cpex_extensions_unref(ext);
    assert_record(&res, "slow_conc", "timeout");
    cpex_pipeline_result_cleanup(&res);
    tp_manager_free(m);
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
    tp_plugin *co = tp_new("co", &trace);
    co->mode = CPEX_MODE_CONCURRENT;
    tp_reg(m, x);
    tp_reg(m, a);
    tp_reg(m, co);
    tp_init(m);
    cpex_pipeline_result res;
    invoke(m, &res);
    assert_allowed(&res); /* neither phase can halt */
    assert_record(&res, "slow_xf", "timeout");
    assert_record(&res, "slow_audit", "timeout");
    assert_int_equal(tp_calls(co), 1);
    cpex_pipeline_result_cleanup(&res);
    tp_manager_free(m);
}

static void test_faf_timeout_to_background_log(void **state)
{
    (void)state;
    cpex_manager *m = tp_manager();
    tp_plugin *f = sleeper("slow_faf", CPEX_MODE_FIRE_AND_FORGET, CPEX_ON_ERROR_FAIL);
    tp_reg(m, f);
    tp_init(m);
    cpex_pipeline_result res;
    invoke(m, &res);
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
    tp_reg(m, s);
    tp_init(m);
    cpex_pipeline_result res;
    invoke(m, &res);
    assert_denied(&res, "plugin_timeout", "slow_default");
    cpex_pipeline_result_cleanup(&res);
    tp_manager_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_sequential_timeout_fail, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sequential_timeout_ignore, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sequential_timeout_disable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_overrun_result_discarded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_overrun_deny_discarded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_handler_reads_deadline, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cooperative_handler_stops_in_time, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_timeout_fail, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_timeout_ignore_late_result_discarded, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_timeout_disable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_with_late_concurrent_handler, setup, teardown),
        cmocka_unit_test_setup_teardown(test_transform_and_audit_timeouts_recorded, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_faf_timeout_to_background_log, setup, teardown),
        cmocka_unit_test_setup_teardown(test_manager_default_timeout_applies, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
