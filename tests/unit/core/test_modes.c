/*
 * test_modes.c — what each mode may do (transform, audit, concurrent,
 * fire_and_forget, disabled) and the on_error matrix in every phase,
 * including disable persisting across invokes and hooks.
 */
#include "test_support.h"
#include "plugins.h"

#define HOOK "cmf.tool_pre_invoke"
#define POST "cmf.tool_post_invoke"

TP_FIXTURE;

/* A case of the table-driven on_error tests: the failing plugin's mode and on_error. */
typedef struct phase_case {
    uint32_t mode;
    int on_error;
} phase_case;

/* ------------------------------------------------------------------ */
/* Transform                                                           */
/* ------------------------------------------------------------------ */

static void test_transform_chain(void **state)
{
    (void)state;
    cpex_manager *m = tp_manager();
    tp_plugin *s1 = tp_new("s1", &trace);
    s1->priority = 500; /* sequential runs before transform whatever the priority */
    s1->append_text = "+s1";
    tp_plugin *t1 = tp_new_in("t1", &trace, CPEX_MODE_TRANSFORM, 1);
    t1->append_text = "+t1";
    tp_plugin *t2 = tp_new_in("t2", &trace, CPEX_MODE_TRANSFORM, 2);
    t2->append_text = "+t2";
    tp_plugin *t3 = tp_new_in("t3", &trace, CPEX_MODE_TRANSFORM, 3); /* reads only */
    tp_plugin *au = tp_new_in("au", &trace, CPEX_MODE_AUDIT, TP_DEFAULT_PRIORITY);
    tp_start(m, t2, au, t3, t1, s1);

    cpex_cmf_message *msg = test_text_message("hello");
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    tp_invoke(m, HOOK, msg, NULL, NULL, &res);
    assert_allowed(&res);
    assert_string_equal(s1->seen_text, "hello");
    assert_string_equal(t1->seen_text, "hello+s1");
    assert_string_equal(t2->seen_text, "hello+s1+t1");
    assert_string_equal(t3->seen_text, "hello+s1+t1+t2");
    assert_string_equal(au->seen_text, "hello+s1+t1+t2");
    assert_int_equal(t1->rc_payload, CPEX_HOST_OK);
    assert_true(res.payload_modified);
    assert_non_null(res.modified_payload);
    assert_int_equal(res.modified_payload->kind, CPEX_PAYLOAD_CMF);
    assert_string_equal(tp_final_text(&res, msg), "hello+s1+t1+t2");
    assert_string_equal(tp_msg_text(msg), "hello"); /* caller's message untouched */
    assert_int_equal(res.error_count, 0);
    cpex_cmf_free(msg);
    tp_finish(m, &res);
}

static void test_transform_deny_dropped_and_recorded(void **state)
{
    (void)state;
    cpex_manager *m = tp_manager();
    tp_plugin *t1 = tp_new_in("t_denier", &trace, CPEX_MODE_TRANSFORM, 1);
    tp_denying(t1, "nope", "transform says no");
    tp_plugin *t_silent = tp_new_in("t_silent", &trace, CPEX_MODE_TRANSFORM, 2);
    tp_denying(t_silent, NULL, NULL); /* without a violation */
    tp_plugin *t2 = tp_new_in("t2", &trace, CPEX_MODE_TRANSFORM, 3);
    t2->append_text = "+t2";
    tp_plugin *co = tp_new_in("co", &trace, CPEX_MODE_CONCURRENT, TP_DEFAULT_PRIORITY);
    tp_start(m, t1, t_silent, t2, co);

    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    tp_run(m, HOOK, &res);
    assert_allowed(&res);
    assert_record(&res, "t_denier", "dropped_deny");
    assert_record(&res, "t_silent", "dropped_deny");
    assert_contains(tp_find_record(&res, "t_denier", "dropped_deny")->message, "transform says no");
    assert_int_equal(tp_calls(t2), 1);
    assert_int_equal(tp_calls(co), 1);
    assert_string_equal(tp_final_text(&res, NULL), "hello+t2");
    tp_finish(m, &res);
}

/* JSON payload: add {"<plugin name>": <number of keys seen>} to a copy. */
static int32_t json_add_key(tp_plugin *p, const cpex_call *call)
{
    const cpex_host_api *h = tp_host();
    if (!call->payload || call->payload->kind != CPEX_PAYLOAD_JSON)
        return CPEX_ERROR;
    const cpex_json *doc = call->payload->data;
    cpex_json *copy = h->json_copy(doc);
    h->json_object_set(copy, p->name, h->json_new_integer((int64_t)h->json_size(doc)));
    p->rc_payload = h->set_payload_json(call, copy);
    /* A CMF payload on a JSON hook is refused (and recorded). */
    static const char wrong_json[] = "{\"role\":\"user\",\"content\":[]}";
    cpex_cmf_message *wrong = h->cmf_parse(wrong_json, sizeof wrong_json - 1);
    if (wrong)
        p->rc_label = h->set_payload_cmf(call, wrong);
    return CPEX_ALLOW;
}

static void test_transform_json_payload_chain(void **state)
{
    (void)state;
    cpex_manager *m = tp_manager();
    cpex_error err = CPEX_ERROR_INIT;
    assert_int_equal(cpex_manager_define_hook(m, "doc.check", "json", &err), CPEX_OK);
    tp_plugin *t1 = tp_new_in("json_t1", &trace, CPEX_MODE_TRANSFORM, TP_DEFAULT_PRIORITY);
    t1->hooks[0] = "doc.check";
    t1->payload_type = "json";
    t1->custom = json_add_key;
    tp_plugin *t2 = tp_new_in("json_t2", &trace, CPEX_MODE_TRANSFORM, 200);
    t2->hooks[0] = "doc.check";
    t2->custom = json_add_key;
    tp_start(m, t1, t2);
    json_t *doc = json_pack("{s:s}", "input", "x");
    cpex_payload pl = cpex_payload_json(doc);
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    cpex_manager_invoke(m, "doc.check", &pl, NULL, NULL, &res);
    assert_allowed(&res);
    assert_int_equal(t1->rc_payload, CPEX_HOST_OK);
    assert_int_equal(t2->rc_payload, CPEX_HOST_OK);
    assert_true(res.payload_modified);
    assert_non_null(res.modified_payload);
    assert_int_equal(res.modified_payload->kind, CPEX_PAYLOAD_JSON);
    const json_t *out = res.modified_payload->data;
    assert_int_equal(json_integer_value(json_object_get(out, "json_t1")), 1);
    assert_int_equal(json_integer_value(json_object_get(out, "json_t2")), 2); /* saw t1's */
    assert_int_equal(json_object_size(doc), 1); /* the caller's document is untouched */
    assert_int_not_equal(t1->rc_label, CPEX_HOST_OK);
    assert_record(&res, "json_t1", "dropped_modification");
    json_decref(doc);
    cpex_error_cleanup(&err);
    tp_finish(m, &res);
}

/* ------------------------------------------------------------------ */
/* Audit                                                               */
/* ------------------------------------------------------------------ */

static void test_audit_is_read_only(void **state)
{
    (void)state;
    cpex_manager *m = tp_manager();
    tp_plugin *au = tp_new_in("auditor", &trace, CPEX_MODE_AUDIT, TP_DEFAULT_PRIORITY);
    au->append_text = "+audit";
    au->decision = CPEX_ALLOW;
    tp_plugin *au2 = tp_new_in("auditor2", &trace, CPEX_MODE_AUDIT, 200);
    tp_start(m, au, au2);
    cpex_cmf_message *msg = test_text_message("hello");
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    tp_invoke(m, HOOK, msg, NULL, NULL, &res);
    assert_allowed(&res);
    assert_int_equal(au->rc_payload, CPEX_HOST_EDENIED);
    assert_record(&res, "auditor", "dropped_modification");
    assert_false(res.payload_modified);
    assert_null(res.modified_payload);
    assert_string_equal(au2->seen_text, "hello"); /* the next one saw the original */
    assert_string_equal(tp_final_text(&res, msg), "hello");
    cpex_cmf_free(msg);
    tp_finish(m, &res);
}

static void test_audit_deny_recorded(void **state)
{
    (void)state;
    cpex_manager *m = tp_manager();
    tp_plugin *au = tp_new_in("auditor", &trace, CPEX_MODE_AUDIT, TP_DEFAULT_PRIORITY);
    tp_denying(au, "audit_no", "audit reason");
    tp_plugin *co = tp_new_in("co", &trace, CPEX_MODE_CONCURRENT, TP_DEFAULT_PRIORITY);
    tp_start(m, au, co);
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    tp_run(m, HOOK, &res);
    assert_allowed(&res);
    assert_record(&res, "auditor", "dropped_deny");
    assert_int_equal(tp_calls(co), 1);
    tp_finish(m, &res);
}

/* *state: the on_error value of the failing auditor. */
static void test_audit_error_recorded(void **state)
{
    const int on_error = *(const int *)*state;
    cpex_manager *m = tp_manager();
    tp_plugin *au = tp_new_in("auditor", &trace, CPEX_MODE_AUDIT, TP_DEFAULT_PRIORITY);
    tp_failing(au, on_error, "audit sink unreachable");
    tp_plugin *au2 = tp_new_in("auditor2", &trace, CPEX_MODE_AUDIT, 200);
    tp_plugin *co = tp_new_in("co", &trace, CPEX_MODE_CONCURRENT, TP_DEFAULT_PRIORITY);
    tp_start(m, au, au2, co);
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    tp_run(m, HOOK, &res);
    assert_allowed(&res); /* audit can never halt, even with on_error: fail */
    assert_record(&res, "auditor", "error");
    assert_contains(tp_find_record(&res, "auditor", "error")->message, "audit sink unreachable");
    assert_int_equal(tp_calls(au2), 1);
    assert_int_equal(tp_calls(co), 1);
    cpex_pipeline_result_cleanup(&res);

    /* Second invoke: disable stops it; fail and ignore keep calling it. */
    tp_run(m, HOOK, &res);
    assert_allowed(&res);
    if (on_error == CPEX_ON_ERROR_DISABLE) {
        assert_int_equal(tp_calls(au), 1);
        assert_no_record(&res, "auditor", NULL);
        char reason[256];
        assert_true(tp_is_disabled(m, "auditor", reason, sizeof reason));
        assert_contains(reason, "audit sink unreachable");
    } else {
        assert_int_equal(tp_calls(au), 2);
        assert_record(&res, "auditor", "error");
        assert_false(tp_is_disabled(m, "auditor", NULL, 0));
    }
    tp_finish(m, &res);
}

/* ------------------------------------------------------------------ */
/* Concurrent                                                          */
/* ------------------------------------------------------------------ */

static void test_concurrent_runs_on_worker_threads(void **state)
{
    (void)state;
    cpex_manager *m = tp_manager();
    tp_plugin *c1 = tp_new_in("c1", &trace, CPEX_MODE_CONCURRENT, TP_DEFAULT_PRIORITY);
    c1->sleep_ms = 150;
    tp_plugin *c2 = tp_new_in("c2", &trace, CPEX_MODE_CONCURRENT, TP_DEFAULT_PRIORITY);
    c2->sleep_ms = 150;
    tp_plugin *s = tp_new("seq", &trace);
    s->append_text = "+s";
    tp_start(m, c1, c2, s);
    int64_t t0 = tp_now_ns();
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    tp_run(m, HOOK, &res);
    int64_t elapsed = tp_now_ns() - t0;
    assert_allowed(&res);
    assert_int_equal(tp_calls(c1), 1);
    assert_int_equal(tp_calls(c2), 1);
    /* Waited for both (the invoke returns after they finish) ... */
    assert_true(elapsed >= 145 * 1000000LL);
    /* ... and they ran in parallel on the two default workers. */
    assert_true(elapsed < 290 * 1000000LL);
    assert_false(pthread_equal(c1->thread, pthread_self()));
    assert_false(pthread_equal(c2->thread, pthread_self()));
    assert_true(pthread_equal(s->thread, pthread_self())); /* serial: caller's thread */
    /* They saw the payload as the serial phases left it. */
    assert_string_equal(c1->seen_text, "hello+s");
    assert_string_equal(tp_final_text(&res, NULL), "hello+s");
    tp_finish(m, &res);
}

/* Two concurrent deniers: "slow" (priority 10) denies after 150 ms, "fast"
 * (priority 20) at once. */
static void new_slow_and_fast_deniers(tp_plugin **slow, tp_plugin **fast)
{
    *slow = tp_denying(tp_new_in("slow", &trace, CPEX_MODE_CONCURRENT, 10), "slow_deny", NULL);
    (*slow)->sleep_ms = 150;
    *fast = tp_denying(tp_new_in("fast", &trace, CPEX_MODE_CONCURRENT, 20), "fast_deny", NULL);
}

static void test_concurrent_deny_first_by_priority(void **state)
{
    (void)state;
    cpex_manager_options o;
    cpex_manager_options_init(&o);
    o.worker_threads = 4;
    o.short_circuit_on_deny = false; /* wait for all, then priority order decides */
    cpex_manager *m = tp_manager_with(&o);
    tp_plugin *slow, *fast;
    new_slow_and_fast_deniers(&slow, &fast);
    tp_plugin *ok = tp_new_in("ok", &trace, CPEX_MODE_CONCURRENT, 5);
    tp_plugin *ff = tp_new_in("ff", &trace, CPEX_MODE_FIRE_AND_FORGET, TP_DEFAULT_PRIORITY);
    tp_start(m, fast, slow, ok, ff);
    for (int round = 0; round < 3; round++) {
        cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
        tp_run(m, HOOK, &res);
        assert_denied(&res, "slow_deny", "slow");
        cpex_pipeline_result_cleanup(&res);
    }
    assert_int_equal(cpex_manager_wait_background(m, 5), CPEX_OK);
    assert_int_equal(tp_calls(ff), 0); /* not started after a deny */
    tp_manager_free(m);
}

static void test_concurrent_deny_first_by_priority_default_settings(void **state)
{
    (void)state;
    /* The issue: "the pipeline is denied if any denies; report the first
     * by priority". With the default settings (short_circuit_on_deny true)
     * the reported deny must still be the higher-priority one, even when
     * a lower-priority one denies first. */
    cpex_manager *m = tp_manager_workers(4);
    tp_plugin *slow, *fast;
    new_slow_and_fast_deniers(&slow, &fast);
    tp_start(m, fast, slow);
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    tp_run(m, HOOK, &res);
    assert_denied(&res, "slow_deny", "slow");
    tp_finish(m, &res);
}

static void test_concurrent_deny_short_circuit(void **state)
{
    (void)state;
    /* Default settings: an explicit deny stops the wait for plugins of
     * lower priority that are still running. */
    cpex_manager *m = tp_manager_workers(4);
    tp_plugin *slow = tp_new_in("slow_ok", &trace, CPEX_MODE_CONCURRENT, 20);
    slow->sleep_ms = 600;
    tp_plugin *fast = tp_new_in("fast", &trace, CPEX_MODE_CONCURRENT, 10);
    tp_denying(fast, "fast_deny", NULL);
    tp_start(m, slow, fast);
    int64_t t0 = tp_now_ns();
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    tp_run(m, HOOK, &res);
    int64_t elapsed = tp_now_ns() - t0;
    assert_denied(&res, "fast_deny", "fast");
    assert_true(elapsed < 400 * 1000000LL);
    assert_no_record(&res, "slow_ok", NULL); /* cut short: records nothing */
    /* The slow one still finishes in the background; freeing waits for it. */
    tp_finish(m, &res);
    assert_int_equal(tp_calls(slow), 1);
}

static void test_concurrent_short_circuit_from_yaml(void **state)
{
    (void)state;
    /* plugin_settings.short_circuit_on_deny: false in a loaded file turns
     * the cut off for the manager: the invoke waits for the slow one. */
    cpex_manager *m = tp_manager_workers(4);
    static const char yaml[] = "plugin_settings:\n  short_circuit_on_deny: false\nplugins: []\n";
    cpex_error err = CPEX_ERROR_INIT;
    assert_int_equal(cpex_manager_load_string(m, yaml, sizeof yaml - 1, "sc.yaml", NULL, &err),
                     CPEX_OK);
    tp_plugin *slow = tp_new_in("slow_ok", &trace, CPEX_MODE_CONCURRENT, 20);
    slow->sleep_ms = 600;
    tp_plugin *fast = tp_new_in("fast", &trace, CPEX_MODE_CONCURRENT, 10);
    tp_denying(fast, "fast_deny", NULL);
    tp_start(m, slow, fast);
    int64_t t0 = tp_now_ns();
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    tp_run(m, HOOK, &res);
    int64_t elapsed = tp_now_ns() - t0;
    assert_denied(&res, "fast_deny", "fast");
    assert_true(elapsed >= 550 * 1000000LL); /* waited for slow_ok's 600 ms */
    tp_finish(m, &res);
}

static void test_concurrent_cannot_modify(void **state)
{
    (void)state;
    cpex_manager *m = tp_manager();
    tp_plugin *c = tp_new_in("conc_mod", &trace, CPEX_MODE_CONCURRENT, TP_DEFAULT_PRIORITY);
    c->append_text = "+conc";
    tp_start(m, c);
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    tp_run(m, HOOK, &res);
    assert_allowed(&res);
    assert_int_equal(c->rc_payload, CPEX_HOST_EDENIED);
    assert_record(&res, "conc_mod", "dropped_modification");
    assert_false(res.payload_modified);
    assert_null(res.modified_payload);
    tp_finish(m, &res);
}

static void test_concurrent_deny_without_violation(void **state)
{
    (void)state;
    cpex_manager *m = tp_manager();
    tp_plugin *c = tp_new_in("conc_silent", &trace, CPEX_MODE_CONCURRENT, TP_DEFAULT_PRIORITY);
    tp_start(m, tp_denying(c, NULL, NULL));
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    tp_run(m, HOOK, &res);
    assert_denied(&res, "concurrent_deny", "conc_silent");
    tp_finish(m, &res);
}

static void test_concurrent_violation_plugin_name(void **state)
{
    (void)state;
    cpex_manager *m = tp_manager();
    tp_plugin *c = tp_new_in("conc_named", &trace, CPEX_MODE_CONCURRENT, TP_DEFAULT_PRIORITY);
    c->reported_name = "i-am-someone-else";
    tp_start(m, tp_denying(c, "policy", "policy says no"));
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    tp_run(m, HOOK, &res);
    assert_denied(&res, "policy", "conc_named");
    assert_string_equal(res.violation->reason, "policy says no");
    tp_finish(m, &res);
}

/* ------------------------------------------------------------------ */
/* Fire and forget                                                     */
/* ------------------------------------------------------------------ */

static void test_faf_runs_after_with_final_payload(void **state)
{
    (void)state;
    cpex_manager *m = tp_manager();
    tp_plugin *ff = tp_new_in("ff", &trace, CPEX_MODE_FIRE_AND_FORGET, -1000);
    ff->sleep_ms = 500;
    ff->append_text = "+ff";
    tp_denying(ff, "ff_no", NULL);
    ff->meta_key = "ff";
    ff->meta_value = "1";
    tp_plugin *t = tp_new_in("t", &trace, CPEX_MODE_TRANSFORM, TP_DEFAULT_PRIORITY);
    t->append_text = "+t";
    tp_start(m, ff, t);

    int64_t t0 = tp_now_ns();
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    tp_run(m, HOOK, &res);
    int64_t elapsed = tp_now_ns() - t0;
    /* The invoke did not wait for the background handler. */
    assert_true(elapsed < 400 * 1000000LL);
    assert_allowed(&res);
    assert_string_equal(tp_final_text(&res, NULL), "hello+t");
    assert_null(res.metadata);
    assert_int_equal(cpex_manager_wait_background(m, 0.01), CPEX_E_STATE);
    assert_int_equal(cpex_manager_wait_background(m, 5), CPEX_OK);
    assert_int_equal(tp_calls(ff), 1);
    assert_string_equal(tp_trace_get(&trace), "t,ff");
    assert_string_equal(ff->seen_text, "hello+t");
    assert_false(pthread_equal(ff->thread, pthread_self()));
    assert_int_equal(ff->rc_payload, CPEX_HOST_EDENIED);
    /* The result is what it was: the background handler changed nothing. */
    assert_allowed(&res);
    assert_string_equal(tp_final_text(&res, NULL), "hello+t");
    cpex_pipeline_result_cleanup(&res);

    /* Its refused modification and deny went to the background log. */
    cpex_error_record *recs = NULL;
    size_t n = cpex_manager_take_background_errors(m, &recs);
    assert_non_null(tp_find_record_in(recs, n, "ff", "dropped_deny"));
    assert_non_null(tp_find_record_in(recs, n, "ff", "dropped_modification"));
    cpex_error_records_free(recs, n);
    tp_manager_free(m);
}

static void test_faf_errors_to_background_log(void **state)
{
    (void)state;
    cpex_manager *m = tp_manager();
    tp_plugin *ff = tp_new_in("ff_err", &trace, CPEX_MODE_FIRE_AND_FORGET, TP_DEFAULT_PRIORITY);
    tp_start(m, tp_failing(ff, CPEX_ON_ERROR_FAIL, "webhook returned 500"));
    cpex_error_record *recs = NULL;
    assert_int_equal(cpex_manager_take_background_errors(m, &recs), 0);
    assert_null(recs);
    for (int i = 0; i < 3; i++) {
        cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
        tp_run(m, HOOK, &res);
        assert_allowed(&res); /* fail cannot halt from the background */
        assert_int_equal(res.error_count, 0);
        cpex_pipeline_result_cleanup(&res);
    }
    assert_int_equal(cpex_manager_wait_background(m, 5), CPEX_OK);
    size_t n = cpex_manager_take_background_errors(m, &recs);
    assert_int_equal(n, 3);
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(recs[i].plugin_name, "ff_err");
        assert_string_equal(recs[i].code, "error");
        assert_contains(recs[i].message, "webhook returned 500");
    }
    cpex_error_records_free(recs, n);
    /* Taken: the log is empty now. */
    tp_expect_background_errors(m, 0);
    assert_false(tp_is_disabled(m, "ff_err", NULL, 0));
    tp_manager_free(m);
}

/* Invoke HOOK, then wait until the background work of that invoke is done. */
static void run_and_wait(cpex_manager *m)
{
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    tp_run(m, HOOK, &res);
    cpex_pipeline_result_cleanup(&res);
    assert_int_equal(cpex_manager_wait_background(m, 5), CPEX_OK);
}

static void test_faf_disable(void **state)
{
    (void)state;
    cpex_manager *m = tp_manager();
    tp_plugin *ff = tp_new_in("ff_dis", &trace, CPEX_MODE_FIRE_AND_FORGET, TP_DEFAULT_PRIORITY);
    tp_start(m, tp_failing(ff, CPEX_ON_ERROR_DISABLE, "boom"));
    run_and_wait(m);
    char reason[256];
    assert_true(tp_is_disabled(m, "ff_dis", reason, sizeof reason));
    assert_contains(reason, "boom");
    run_and_wait(m);
    assert_int_equal(tp_calls(ff), 1);
    tp_expect_background_errors(m, 1);
    tp_manager_free(m);
}

/* Neither phase that denies here ("gate" in `gate_mode`) lets the
 * fire-and-forget plugin `ff_name` start. */
static void faf_not_started_case(const char *ff_name, uint32_t gate_mode, const char *gate_name,
                                 const char *deny_code, const char *expected_code)
{
    cpex_manager *m = tp_manager();
    tp_plugin *ff = tp_new_in(ff_name, &trace, CPEX_MODE_FIRE_AND_FORGET, TP_DEFAULT_PRIORITY);
    tp_plugin *gate = tp_new_in(gate_name, &trace, gate_mode, TP_DEFAULT_PRIORITY);
    tp_start(m, ff, tp_denying(gate, deny_code, NULL));
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    tp_run(m, HOOK, &res);
    assert_denied(&res, expected_code, gate_name);
    cpex_pipeline_result_cleanup(&res);
    assert_int_equal(cpex_manager_wait_background(m, 5), CPEX_OK);
    assert_int_equal(tp_calls(ff), 0);
    tp_manager_free(m);
}

static void test_faf_not_started_when_denied(void **state)
{
    (void)state;
    faf_not_started_case("ff", CPEX_MODE_SEQUENTIAL, "gate", "no", "no");
    /* Also not when the concurrent phase denied. */
    faf_not_started_case("ff2", CPEX_MODE_CONCURRENT, "cgate", NULL, "concurrent_deny");
}

static void test_shutdown_waits_for_background(void **state)
{
    (void)state;
    /* One worker: the second background handler is still queued (not
     * started) when shutdown begins. Shutdown must let both run, then
     * call each plugin's shutdown once. */
    cpex_manager *m = tp_manager_workers(1);
    tp_plugin *ff1 = tp_new_in("ff_first", &trace, CPEX_MODE_FIRE_AND_FORGET, 1);
    ff1->sleep_ms = 200;
    tp_plugin *ff2 = tp_new_in("ff_queued", &trace, CPEX_MODE_FIRE_AND_FORGET, 2);
    tp_start(m, ff1, ff2);
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    tp_run(m, HOOK, &res);
    assert_allowed(&res);
    cpex_pipeline_result_cleanup(&res);
    cpex_manager_shutdown(m);
    /* shutdown waited for both handlers, then called shutdown once */
    assert_int_equal(tp_calls(ff1), 1);
    assert_int_equal(tp_calls(ff2), 1);
    assert_string_equal(ff2->seen_text, "hello");
    assert_int_equal(atomic_load(&ff1->shutdown_calls), 1);
    assert_int_equal(atomic_load(&ff2->shutdown_calls), 1);
    tp_expect_background_errors(m, 0);
    tp_manager_free(m);
    assert_int_equal(atomic_load(&ff1->shutdown_calls), 1);
    assert_int_equal(atomic_load(&ff2->shutdown_calls), 1);
    assert_int_equal(atomic_load(&ff1->destroy_calls), 1);
    assert_int_equal(atomic_load(&ff2->destroy_calls), 1);
}

/* ------------------------------------------------------------------ */
/* Disabled mode                                                       */
/* ------------------------------------------------------------------ */

/* Assert the mode and state `name` reports. */
static void assert_info_mode_state(cpex_manager *m, const char *name, uint32_t mode, uint32_t state)
{
    cpex_plugin_info info = CPEX_PLUGIN_INFO_INIT;
    assert_int_equal(cpex_manager_plugin_info(m, name, &info), CPEX_OK);
    assert_int_equal(info.mode, mode);
    assert_int_equal(info.state, state);
    cpex_plugin_info_cleanup(&info);
}

static void test_disabled_mode_never_runs(void **state)
{
    (void)state;
    cpex_manager *m = tp_manager();
    tp_plugin *d = tp_new_in("off", &trace, CPEX_MODE_DISABLED, TP_DEFAULT_PRIORITY);
    tp_denying(tp_on_hooks(d, HOOK, POST), NULL, NULL);
    d->append_text = "+off";
    tp_plugin *on = tp_on_hooks(tp_new("on", &trace), HOOK, POST);
    tp_start(m, d, on);
    for (int i = 0; i < 3; i++) {
        cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
        tp_run(m, i == 1 ? POST : HOOK, &res);
        assert_allowed(&res);
        assert_false(res.payload_modified);
        cpex_pipeline_result_cleanup(&res);
    }
    assert_int_equal(tp_calls(d), 0);
    assert_int_equal(tp_calls(on), 3);
    assert_info_mode_state(m, "off", CPEX_MODE_DISABLED, CPEX_STATE_INITIALIZED);
    tp_manager_free(m);
}

/* ------------------------------------------------------------------ */
/* on_error matrix                                                     */
/* ------------------------------------------------------------------ */

/* A sequential plugin `name` failing with `message` under `on_error`,
 * followed by "after" (sequential, priority 200). */
static tp_plugin *new_failing_then_after(const char *name, int on_error, const char *message,
                                         tp_plugin **after)
{
    tp_plugin *e = tp_failing(tp_new(name, &trace), on_error, message);
    *after = tp_new_in("after", &trace, CPEX_MODE_SEQUENTIAL, 200);
    return e;
}

static void test_sequential_on_error_fail(void **state)
{
    (void)state;
    cpex_manager *m = tp_manager();
    tp_plugin *after;
    tp_plugin *e =
        new_failing_then_after("broken", CPEX_ON_ERROR_FAIL, "database unavailable", &after);
    tp_plugin *co = tp_new_in("co", &trace, CPEX_MODE_CONCURRENT, TP_DEFAULT_PRIORITY);
    tp_start(m, e, after, co);
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    tp_run(m, HOOK, &res);
    assert_denied(&res, "plugin_error", "broken");
    assert_contains(res.violation->reason, "broken");
    assert_contains(res.violation->reason, "database unavailable");
    assert_int_equal(tp_calls(after), 0);
    assert_int_equal(tp_calls(co), 0);
    cpex_pipeline_result_cleanup(&res);
    /* fail does not disable: it is called again */
    tp_run(m, HOOK, &res);
    assert_denied(&res, "plugin_error", "broken");
    assert_int_equal(tp_calls(e), 2);
    assert_false(tp_is_disabled(m, "broken", NULL, 0));
    tp_finish(m, &res);
}

static void test_default_on_error_is_fail(void **state)
{
    (void)state;
    cpex_manager *m = tp_manager();
    tp_plugin *e = tp_new("broken", &trace);
    e->decision = CPEX_ERROR; /* no message either */
    tp_start(m, e);
    cpex_plugin_info info = CPEX_PLUGIN_INFO_INIT;
    assert_int_equal(cpex_manager_plugin_info(m, "broken", &info), CPEX_OK);
    assert_int_equal(info.on_error, CPEX_ON_ERROR_FAIL);
    cpex_plugin_info_cleanup(&info);
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    tp_run(m, HOOK, &res);
    assert_denied(&res, "plugin_error", "broken");
    tp_finish(m, &res);

    /* The manager's default applies to plugins registered without one. */
    cpex_manager_options o;
    cpex_manager_options_init(&o);
    o.default_on_error = CPEX_ON_ERROR_IGNORE;
    m = tp_manager_with(&o);
    tp_plugin *e2 = tp_new("broken2", &trace);
    e2->decision = CPEX_ERROR;
    tp_start(m, e2);
    tp_run(m, HOOK, &res);
    assert_allowed(&res);
    assert_record(&res, "broken2", "error");
    tp_finish(m, &res);
}

static void test_sequential_on_error_ignore(void **state)
{
    (void)state;
    cpex_manager *m = tp_manager();
    tp_plugin *after;
    tp_plugin *e =
        new_failing_then_after("flaky", CPEX_ON_ERROR_IGNORE, "timeout talking to redis", &after);
    e->append_text = "+flaky"; /* discarded with the error */
    tp_start(m, e, after);
    for (int i = 1; i <= 2; i++) {
        cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
        tp_run(m, HOOK, &res);
        assert_allowed(&res);
        assert_record(&res, "flaky", "error");
        assert_contains(tp_find_record(&res, "flaky", "error")->message,
                        "timeout talking to redis");
        assert_int_equal(tp_calls(after), i);
        assert_string_equal(after->seen_text, "hello");
        assert_false(res.payload_modified);
        cpex_pipeline_result_cleanup(&res);
    }
    assert_int_equal(tp_calls(e), 2);
    assert_false(tp_is_disabled(m, "flaky", NULL, 0));
    tp_manager_free(m);
}

static void test_sequential_on_error_disable_persists_across_hooks(void **state)
{
    (void)state;
    cpex_manager *m = tp_manager();
    tp_plugin *after;
    tp_plugin *e =
        new_failing_then_after("fragile", CPEX_ON_ERROR_DISABLE, "corrupt state", &after);
    tp_start(m, tp_on_hooks(e, HOOK, POST), tp_on_hooks(after, HOOK, POST));
    assert_false(tp_is_disabled(m, "fragile", NULL, 0));
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    tp_run(m, HOOK, &res);
    assert_allowed(&res);
    assert_record(&res, "fragile", "error");
    assert_int_equal(tp_calls(after), 1);
    cpex_pipeline_result_cleanup(&res);

    char reason[256];
    assert_true(tp_is_disabled(m, "fragile", reason, sizeof reason));
    assert_contains(reason, "corrupt state");
    /* configured mode kept */
    assert_info_mode_state(m, "fragile", CPEX_MODE_SEQUENTIAL, CPEX_STATE_INITIALIZED);

    /* Never again: not on this hook, not on its other hook. */
    for (int i = 0; i < 3; i++) {
        tp_run(m, i % 2 ? HOOK : POST, &res);
        assert_allowed(&res);
        assert_int_equal(res.error_count, 0);
        cpex_pipeline_result_cleanup(&res);
    }
    assert_int_equal(tp_calls(e), 1);
    assert_int_equal(tp_calls(after), 4);
    tp_manager_free(m);
}

static void phase_error_case(uint32_t mode, int on_error)
{
    cpex_manager *m = tp_manager();
    tp_plugin *e = tp_new_in("err", &trace, mode, TP_DEFAULT_PRIORITY);
    tp_failing(e, on_error, "phase failure");
    tp_plugin *after =
        tp_new_in("after_faf", &trace, CPEX_MODE_FIRE_AND_FORGET, TP_DEFAULT_PRIORITY);
    tp_start(m, e, after);
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    tp_run(m, HOOK, &res);
    bool halts = on_error == CPEX_ON_ERROR_FAIL &&
                 (mode == CPEX_MODE_SEQUENTIAL || mode == CPEX_MODE_CONCURRENT);
    if (halts) {
        assert_denied(&res, "plugin_error", "err");
        assert_contains(res.violation->reason, "phase failure");
    } else {
        assert_allowed(&res);
        assert_record(&res, "err", "error");
        assert_contains(tp_find_record(&res, "err", "error")->message, "phase failure");
    }
    cpex_pipeline_result_cleanup(&res);
    assert_int_equal(cpex_manager_wait_background(m, 5), CPEX_OK);
    assert_int_equal(tp_calls(after), halts ? 0 : 1);
    assert_int_equal(tp_is_disabled(m, "err", NULL, 0), on_error == CPEX_ON_ERROR_DISABLE);
    tp_run(m, HOOK, &res);
    cpex_pipeline_result_cleanup(&res);
    assert_int_equal(tp_calls(e), on_error == CPEX_ON_ERROR_DISABLE ? 1 : 2);
    tp_manager_free(m);
}

/* *state: the phase_case (mode and on_error) of the failing plugin. */
static void test_phase_on_error(void **state)
{
    const phase_case *c = *state;
    phase_error_case(c->mode, c->on_error);
}

static void test_sequential_on_error_matrix_via_helper(void **state)
{
    (void)state;
    phase_error_case(CPEX_MODE_SEQUENTIAL, CPEX_ON_ERROR_FAIL);
    tp_free_all();
    phase_error_case(CPEX_MODE_SEQUENTIAL, CPEX_ON_ERROR_IGNORE);
    tp_free_all();
    phase_error_case(CPEX_MODE_SEQUENTIAL, CPEX_ON_ERROR_DISABLE);
    tp_free_all();
    phase_error_case(CPEX_MODE_AUDIT, CPEX_ON_ERROR_FAIL);
}

static void test_error_without_message_has_text(void **state)
{
    (void)state;
    cpex_manager *m = tp_manager();
    tp_start(m, tp_failing(tp_new("mute", &trace), CPEX_ON_ERROR_IGNORE, NULL));
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    tp_run(m, HOOK, &res);
    assert_record(&res, "mute", "error");
    assert_true(strlen(tp_find_record(&res, "mute", "error")->message) > 0);
    tp_finish(m, &res);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TP_TEST(test_transform_chain),
        TP_TEST(test_transform_deny_dropped_and_recorded),
        TP_TEST(test_transform_json_payload_chain),
        TP_TEST(test_audit_is_read_only),
        TP_TEST(test_audit_deny_recorded),
        TP_CASE("test_audit_error_fail_recorded", test_audit_error_recorded,
                &(const int){CPEX_ON_ERROR_FAIL}),
        TP_CASE("test_audit_error_ignore_recorded", test_audit_error_recorded,
                &(const int){CPEX_ON_ERROR_IGNORE}),
        TP_CASE("test_audit_error_disable_recorded", test_audit_error_recorded,
                &(const int){CPEX_ON_ERROR_DISABLE}),
        TP_TEST(test_concurrent_runs_on_worker_threads),
        TP_TEST(test_concurrent_deny_first_by_priority),
        TP_TEST(test_concurrent_deny_first_by_priority_default_settings),
        TP_TEST(test_concurrent_deny_short_circuit),
        TP_TEST(test_concurrent_short_circuit_from_yaml),
        TP_TEST(test_concurrent_cannot_modify),
        TP_TEST(test_concurrent_deny_without_violation),
        TP_TEST(test_concurrent_violation_plugin_name),
        TP_TEST(test_faf_runs_after_with_final_payload),
        TP_TEST(test_faf_errors_to_background_log),
        TP_TEST(test_faf_disable),
        TP_TEST(test_faf_not_started_when_denied),
        TP_TEST(test_shutdown_waits_for_background),
        TP_TEST(test_disabled_mode_never_runs),
        TP_TEST(test_sequential_on_error_fail),
        TP_TEST(test_default_on_error_is_fail),
        TP_TEST(test_sequential_on_error_ignore),
        TP_TEST(test_sequential_on_error_disable_persists_across_hooks),
        TP_CASE("test_transform_on_error_fail_cannot_halt", test_phase_on_error,
                &(const phase_case){CPEX_MODE_TRANSFORM, CPEX_ON_ERROR_FAIL}),
        TP_CASE("test_transform_on_error_ignore", test_phase_on_error,
                &(const phase_case){CPEX_MODE_TRANSFORM, CPEX_ON_ERROR_IGNORE}),
        TP_CASE("test_transform_on_error_disable", test_phase_on_error,
                &(const phase_case){CPEX_MODE_TRANSFORM, CPEX_ON_ERROR_DISABLE}),
        TP_CASE("test_concurrent_on_error_fail", test_phase_on_error,
                &(const phase_case){CPEX_MODE_CONCURRENT, CPEX_ON_ERROR_FAIL}),
        TP_CASE("test_concurrent_on_error_ignore", test_phase_on_error,
                &(const phase_case){CPEX_MODE_CONCURRENT, CPEX_ON_ERROR_IGNORE}),
        TP_CASE("test_concurrent_on_error_disable", test_phase_on_error,
                &(const phase_case){CPEX_MODE_CONCURRENT, CPEX_ON_ERROR_DISABLE}),
        TP_TEST(test_sequential_on_error_matrix_via_helper),
        TP_TEST(test_error_without_message_has_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
