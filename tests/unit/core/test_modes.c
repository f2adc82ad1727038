/*
 * test_modes.c — what each mode may do (transform, audit, concurrent,
 * fire_and_forget, disabled) and the on_error matrix in every phase,
 * including disable persisting across invokes and hooks.
 */
#include "test_support.h"
#include "plugins.h"

#define HOOK "cmf.tool_pre_invoke"
#define POST "cmf.tool_post_invoke"

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

static void invoke_text(cpex_manager *m, const char *hook, const char *text,
                        cpex_pipeline_result *res)
{
    cpex_cmf_message *msg = tp_msg(text);
    tp_invoke(m, hook, msg, NULL, NULL, res);
    /* Keep the caller's message alive only during the invoke: the result
     * and background work must not refer to it afterwards. */
    assert_string_equal(tp_msg_text(msg), text); /* never modified in place */
    cpex_cmf_free(msg);
}

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
    tp_plugin *t1 = tp_new("t1", &trace);
    t1->mode = CPEX_MODE_TRANSFORM;
    t1->priority = 1;
    t1->append_text = "+t1";
    tp_plugin *t2 = tp_new("t2", &trace);
    t2->mode = CPEX_MODE_TRANSFORM;
    t2->priority = 2;
    t2->append_text = "+t2";
    tp_plugin *t3 = tp_new("t3", &trace); /* reads only */
    t3->mode = CPEX_MODE_TRANSFORM;
    t3->priority = 3;
    tp_plugin *au = tp_new("au", &trace);
    au->mode = CPEX_MODE_AUDIT;
    tp_reg(m, t2);
    tp_reg(m, au);
    tp_reg(m, t3);
    tp_reg(m, t1);
    tp_reg(m, s1);
    tp_init(m);

    cpex_cmf_message *msg = tp_msg("hello");
    cpex_pipeline_result res;
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
    cpex_pipeline_result_cleanup(&res);
    cpex_cmf_free(msg);
    tp_manager_free(m);
}

static void test_transform_deny_dropped_and_recorded(void **state)
{
    (void)state;
    cpex_manager *m = tp_manager();
    tp_plugin *t1 = tp_new("t_denier", &trace);
    t1->mode = CPEX_MODE_TRANSFORM;
    t1->priority = 1;
    t1->decision = CPEX_DENY;
    t1->deny_code = "nope";
    t1->deny_reason = "transform says no";
    tp_plugin *t_silent = tp_new("t_silent", &trace);
    t_silent->mode = CPEX_MODE_TRANSFORM;
    t_silent->priority = 2;
    t_silent->decision = CPEX_DENY; /* without a violation */
    tp_plugin *t2 = tp_new("t2", &trace);
    t2->mode = CPEX_MODE_TRANSFORM;
    t2->priority = 3;
    t2->append_text = "+t2";
    tp_plugin *co = tp_new("co", &trace);
    co->mode = CPEX_MODE_CONCURRENT;
    tp_reg(m, t1);
    tp_reg(m, t_silent);
    tp_reg(m, t2);
    tp_reg(m, co);
    tp_init(m);

    cpex_pipeline_result res;
    invoke_text(m, HOOK, "hello", &res);
    assert_allowed(&res);
    assert_record(&res, "t_denier", "dropped_deny");
    assert_record(&res, "t_silent", "dropped_deny");
    assert_contains(tp_find_record(&res, "t_denier", "dropped_deny")->message, "transform says no");
    assert_int_equal(tp_calls(t2), 1);
    assert_int_equal(tp_calls(co), 1);
    assert_string_equal(tp_final_text(&res, NULL), "hello+t2");
    cpex_pipeline_result_cleanup(&res);
    tp_manager_free(m);
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
    tp_plugin *t1 = tp_new("json_t1", &trace);
    t1->mode = CPEX_MODE_TRANSFORM;
    t1->hooks[0] = "doc.check";
    t1->payload_type = "json";
    t1->custom = json_add_key;
    tp_plugin *t2 = tp_new("json_t2", &trace);
    t2->mode = CPEX_MODE_TRANSFORM;
    t2->priority = 200;
    t2->hooks[0] = "doc.check";
    t2->custom = json_add_key;
    tp_reg(m, t1);
    tp_reg(m, t2);
    tp_init(m);
    json_t *doc = json_pack("{s:s}", "input", "x");
    cpex_payload pl = cpex_payload_json(doc);
    cpex_pipeline_result res;
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
    cpex_pipeline_result_cleanup(&res);
    json_decref(doc);
    cpex_error_cleanup(&err);
    tp_manager_free(m);
}

/* ------------------------------------------------------------------ */
/* Audit                                                               */
/* ------------------------------------------------------------------ */

static void test_audit_is_read_only(void **state)
{
    (void)state;
    cpex_manager *m = tp_manager();
    tp_plugin *au = tp_new("auditor", &trace);
    au->mode = CPEX_MODE_AUDIT;
    au->append_text = "+audit";
    au->decision = CPEX_ALLOW;
    tp_plugin *au2 = tp_new("auditor2", &trace);
    au2->mode = CPEX_MODE_AUDIT;
    au2->priority = 200;
    tp_reg(m, au);
    tp_reg(m, au2);
    tp_init(m);
    cpex_cmf_message *msg = tp_msg("hello");
    cpex_pipeline_result res;
    tp_invoke(m, HOOK, msg, NULL, NULL, &res);
    assert_allowed(&res);
    assert_int_equal(au->rc_payload, CPEX_HOST_EDENIED);
    assert_record(&res, "auditor", "dropped_modification");
    assert_false(res.payload_modified);
    assert_null(res.modified_payload);
    assert_string_equal(au2->seen_text, "hello"); /* the next one saw the original */
    assert_string_equal(tp_final_text(&res, msg), "hello");
    cpex_pipeline_result_cleanup(&res);
    cpex_cmf_free(msg);
    tp_manager_free(m);
}

static void test_audit_deny_recorded(void **state)
{
    (void)state;
    cpex_manager *m = tp_manager();
    tp_plugin *au = tp_new("auditor", &trace);
    au->mode = CPEX_MODE_AUDIT;
    au->decision = CPEX_DENY;
    au->deny_code = "audit_no";
    au->deny_reason = "audit reason";
    tp_plugin *co = tp_new("co", &trace);
    co->mode = CPEX_MODE_CONCURRENT;
    tp_reg(m, au);
    tp_reg(m, co);
    tp_init(m);
    cpex_pipeline_result res;
    invoke_text(m, HOOK, "hello", &res);
    assert_allowed(&res);
    assert_record(&res, "auditor", "dropped_deny");
    assert_int_equal(tp_calls(co), 1);
    cpex_pipeline_result_cleanup(&res);
    tp_manager_free(m);
}

static void audit_error_case(int on_error)
{
    cpex_manager *m = tp_manager();
    tp_plugin *au = tp_new("auditor", &trace);
    au->mode = CPEX_MODE_AUDIT;
    au->on_error = on_error;
    au->decision = CPEX_ERROR;
    au->error_message = "audit sink unreachable";
    tp_plugin *au2 = tp_new("auditor2", &trace);
    au2->mode = CPEX_MODE_AUDIT;
    au2->priority = 200;
    tp_plugin *co = tp_new("co", &trace);
    co->mode = CPEX_MODE_CONCURRENT;
    tp_reg(m, au);
    tp_reg(m, au2);
    tp_reg(m, co);
    tp_init(m);
    cpex_pipeline_result res;
    invoke_text(m, HOOK, "hello", &res);
    assert_allowed(&res); /* audit can never halt, even with on_error: fail */
    assert_record(&res, "auditor", "error");
    assert_contains(tp_find_record(&res, "auditor", "error")->message, "audit sink unreachable");
    assert_int_equal(tp_calls(au2), 1);
    assert_int_equal(tp_calls(co), 1);
    cpex_pipeline_result_cleanup(&res);

    /* Second invoke: disable stops it; fail and ignore keep calling it. */
    invoke_text(m, HOOK, "hello", &res);
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
    cpex_pipeline_result_cleanup(&res);
    tp_manager_free(m);
}

static void test_audit_error_fail_recorded(void **state)
{
    (void)state;
    audit_error_case(CPEX_ON_ERROR_FAIL);
}

static void test_audit_error_ignore_recorded(void **state)
{
    (void)state;
    audit_error_case(CPEX_ON_ERROR_IGNORE);
}

static void test_audit_error_disable_recorded(void **state)
{
    (void)state;
    audit_error_case(CPEX_ON_ERROR_DISABLE);
}

/* ------------------------------------------------------------------ */
/* Concurrent                                                          */
/* ------------------------------------------------------------------ */

static void test_concurrent_runs_on_worker_threads(void **state)
{
    (void)state;
    cpex_manager *m = tp_manager();
    tp_plugin *c1 = tp_new("c1", &trace);
    c1->mode = CPEX_MODE_CONCURRENT;
    c1->sleep_ms = 150;
    tp_plugin *c2 = tp_new("c2", &trace);
    c2->mode = CPEX_MODE_CONCURRENT;
    c2->sleep_ms = 150;
    tp_plugin *s = tp_new("seq", &trace);
    s->append_text = "+s";
    tp_reg(m, c1);
    tp_reg(m, c2);
    tp_reg(m, s);
    tp_init(m);
    int64_t t0 = tp_now_ns();
    cpex_pipeline_result res;
    invoke_text(m, HOOK, "hello", &res);
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
    cpex_pipeline_result_cleanup(&res);
    tp_manager_free(m);
}

static void test_concurrent_deny_first_by_priority(void **state)
{
    (void)state;
    cpex_manager_options o;
    cpex_manager_options_init(&o);
    o.worker_threads = 4;
    o.short_circuit_on_deny = false; /* wait for all, then priority order decides */
    cpex_manager *m = tp_manager_with(&o);
    tp_plugin *slow = tp_new("slow", &trace);
    slow->mode = CPEX_MODE_CONCURRENT;
    slow->priority = 10;
    slow->sleep_ms = 150;
    slow->decision = CPEX_DENY;
    slow->deny_code = "slow_deny";
    tp_plugin *fast = tp_new("fast", &trace);
    fast->mode = CPEX_MODE_CONCURRENT;
    fast->priority = 20;
    fast->decision = CPEX_DENY;
    fast->deny_code = "fast_deny";
    tp_plugin *ok = tp_new("ok", &trace);
    ok->mode = CPEX_MODE_CONCURRENT;
    ok->priority = 5;
    tp_plugin *ff = tp_new("ff", &trace);
    ff->mode = CPEX_MODE_FIRE_AND_FORGET;
    tp_reg(m, fast);
    tp_reg(m, slow);
    tp_reg(m, ok);
    tp_reg(m, ff);
    tp_init(m);
    for (int round = 0; round < 3; round++) {
        cpex_pipeline_result res;
        invoke_text(m, HOOK, "hello", &res);
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
    cpex_manager_options o;
    cpex_manager_options_init(&o);
    o.worker_threads = 4;
    cpex_manager *m = tp_manager_with(&o);
    tp_plugin *slow = tp_new("slow", &trace);
    slow->mode = CPEX_MODE_CONCURRENT;
    slow->priority = 10;
    slow->sleep_ms = 150;
    slow->decision = CPEX_DENY;
    slow->deny_code = "slow_deny";
    tp_plugin *fast = tp_new("fast", &trace);
    fast->mode = CPEX_MODE_CONCURRENT;
    fast->priority = 20;
    fast->decision = CPEX_DENY;
    fast->deny_code = "fast_deny";
    tp_reg(m, fast);
    tp_reg(m, slow);
    tp_init(m);
    cpex_pipeline_result res;
    invoke_text(m, HOOK, "hello", &res);
    assert_denied(&res, "slow_deny", "slow");
    cpex_pipeline_result_cleanup(&res);
    tp_manager_free(m);
}

static void test_concurrent_deny_short_circuit(void **state)
{
    (void)state;
    /* Default settings: an explicit deny stops the wait for plugins of
     * lower priority that are still running. */
    cpex_manager_options o;
    cpex_manager_options_init(&o);
    o.worker_threads = 4;
    cpex_manager *m = tp_manager_with(&o);
    tp_plugin *slow = tp_new("slow_ok", &trace);
    slow->mode = CPEX_MODE_CONCURRENT;
    slow->priority = 20;
    slow->sleep_ms = 600;
    tp_plugin *fast = tp_new("fast", &trace);
    fast->mode = CPEX_MODE_CONCURRENT;
    fast->priority = 10;
    fast->decision = CPEX_DENY;
    fast->deny_code = "fast_deny";
    tp_reg(m, slow);
    tp_reg(m, fast);
    tp_init(m);
    int64_t t0 = tp_now_ns();
    cpex_pipeline_result res;
    invoke_text(m, HOOK, "hello", &res);
    int64_t elapsed = tp_now_ns() - t0;
    assert_denied(&res, "fast_deny", "fast");
    assert_true(elapsed < 400 * 1000000LL);
    assert_no_record(&res, "slow_ok", NULL); /* cut short: records nothing */
    cpex_pipeline_result_cleanup(&res);
    /* The slow one still finishes in the background; freeing waits for it. */
    tp_manager_free(m);
    assert_int_equal(tp_calls(slow), 1);
}

static void test_concurrent_cannot_modify(void **state)
{
    (void)state;
    cpex_manager *m = tp_manager();
    tp_plugin *c = tp_new("conc_mod", &trace);
    c->mode = CPEX_MODE_CONCURRENT;
    c->append_text = "+conc";
    tp_reg(m, c);
    tp_init(m);
    cpex_pipeline_result res;
    invoke_text(m, HOOK, "hello", &res);
    assert_allowed(&res);
    assert_int_equal(c->rc_payload, CPEX_HOST_EDENIED);
    assert_record(&res, "conc_mod", "dropped_modification");
    assert_false(res.payload_modified);
    assert_null(res.modified_payload);
    cpex_pipeline_result_cleanup(&res);
    tp_manager_free(m);
}

static void test_concurrent_deny_without_violation(void **state)
{
    (void)state;
    cpex_manager *m = tp_manager();
    tp_plugin *c = tp_new("conc_silent", &trace);
    c->mode = CPEX_MODE_CONCURRENT;
    c->decision = CPEX_DENY;
    tp_reg(m, c);
    tp_init(m);
    cpex_pipeline_result res;
    invoke_text(m, HOOK, "hello", &res);
    assert_denied(&res, "concurrent_deny", "conc_silent");
    cpex_pipeline_result_cleanup(&res);
    tp_manager_free(m);
}

static void test_concurrent_violation_plugin_name(void **state)
{
    (void)state;
    cpex_manager *m = tp_manager();
    tp_plugin *c = tp_new("conc_named", &trace);
    c->mode = CPEX_MODE_CONCURRENT;
    c->reported_name = "i-am-someone-else";
    c->decision = CPEX_DENY;
    c->deny_code = "policy";
    c->deny_reason = "policy says no";
    tp_reg(m, c);
    tp_init(m);
    cpex_pipeline_result res;
    invoke_text(m, HOOK, "hello", &res);
    assert_denied(&res, "policy", "conc_named");
    assert_string_equal(res.violation->reason, "policy says no");
    cpex_pipeline_result_cleanup(&res);
    tp_manager_free(m);
}

/* ------------------------------------------------------------------ */
/* Fire and forget                                                     */
/* ------------------------------------------------------------------ */

static void test_faf_runs_after_with_final_payload(void **state)
{
    (void)state;
    cpex_manager *m = tp_manager();
    tp_plugin *ff = tp_new("ff", &trace);
    ff->mode = CPEX_MODE_FIRE_AND_FORGET;
    ff->priority = -1000;
    ff->sleep_ms = 500;
    ff->append_text = "+ff";
    ff->decision = CPEX_DENY;
    ff->deny_code = "ff_no";
    ff->meta_key = "ff";
    ff->meta_value = "1";
    tp_plugin *t = tp_new("t", &trace);
    t->mode = CPEX_MODE_TRANSFORM;
    t->append_text = "+t";
    tp_reg(m, ff);
    tp_reg(m, t);
    tp_init(m);

    int64_t t0 = tp_now_ns();
    cpex_pipeline_result res;
    invoke_text(m, HOOK, "hello", &res);
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
    tp_plugin *ff = tp_new("ff_err", &trace);
    ff->mode = CPEX_MODE_FIRE_AND_FORGET;
    ff->on_error = CPEX_ON_ERROR_FAIL;
    ff->decision = CPEX_ERROR;
    ff->error_message = "webhook returned 500";
    tp_reg(m, ff);
    tp_init(m);
    cpex_error_record *recs = NULL;
    assert_int_equal(cpex_manager_take_background_errors(m, &recs), 0);
    assert_null(recs);
    for (int i = 0; i < 3; i++) {
        cpex_pipeline_result res;
        invoke_text(m, HOOK, "hello", &res);
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
    assert_int_equal(cpex_manager_take_background_errors(m, &recs), 0);
    assert_false(tp_is_disabled(m, "ff_err", NULL, 0));
    tp_manager_free(m);
}

static void test_faf_disable(void **state)
{
    (void)state;
    cpex_manager *m = tp_manager();
    tp_plugin *ff = tp_new("ff_dis", &trace);
    ff->mode = CPEX_MODE_FIRE_AND_FORGET;
    ff->on_error = CPEX_ON_ERROR_DISABLE;
    ff->decision = CPEX_ERROR;
    ff->error_message = "boom";
    tp_reg(m, ff);
    tp_init(m);
    cpex_pipeline_result res;
    invoke_text(m, HOOK, "hello", &res);
    cpex_pipeline_result_cleanup(&res);
    assert_int_equal(cpex_manager_wait_background(m, 5), CPEX_OK);
    char reason[256];
    assert_true(tp_is_disabled(m, "ff_dis", reason, sizeof reason));
    assert_contains(reason, "boom");
    invoke_text(m, HOOK, "hello", &res);
    cpex_pipeline_result_cleanup(&res);
    assert_int_equal(cpex_manager_wait_background(m, 5), CPEX_OK);
    assert_int_equal(tp_calls(ff), 1);
    cpex_error_record *recs = NULL;
    size_t n = cpex_manager_take_background_errors(m, &recs);
    assert_int_equal(n, 1);
    cpex_error_records_free(recs, n);
    tp_manager_free(m);
}

static void test_faf_not_started_when_denied(void **state)
{
    (void)state;
    cpex_manager *m = tp_manager();
    tp_plugin *ff = tp_new("ff", &trace);
    ff->mode = CPEX_MODE_FIRE_AND_FORGET;
    tp_plugin *gate = tp_new("gate", &trace);
    gate->decision = CPEX_DENY;
    gate->deny_code = "no";
    tp_reg(m, ff);
    tp_reg(m, gate);
    tp_init(m);
    cpex_pipeline_result res;
    invoke_text(m, HOOK, "hello", &res);
    assert_denied(&res, "no", "gate");
    cpex_pipeline_result_cleanup(&res);
    assert_int_equal(cpex_manager_wait_background(m, 5), CPEX_OK);
    assert_int_equal(tp_calls(ff), 0);

    /* Also not when the concurrent phase denied. */
    cpex_manager *m2 = tp_manager();
    tp_plugin *ff2 = tp_new("ff2", &trace);
    ff2->mode = CPEX_MODE_FIRE_AND_FORGET;
    tp_plugin *cgate = tp_new("cgate", &trace);
    cgate->mode = CPEX_MODE_CONCURRENT;
    cgate->decision = CPEX_DENY;
    tp_reg(m2, ff2);
    tp_reg(m2, cgate);
    tp_init(m2);
    invoke_text(m2, HOOK, "hello", &res);
    assert_denied(&res, "concurrent_deny", "cgate");
    cpex_pipeline_result_cleanup(&res);
    assert_int_equal(cpex_manager_wait_background(m2, 5), CPEX_OK);
    assert_int_equal(tp_calls(ff2), 0);
    tp_manager_free(m2);
    tp_manager_free(m);
}

static void test_shutdown_waits_for_background(void **state)
{
    (void)state;
    /* One worker: the second background handler is still queued (not
     * started) when shutdown begins. Shutdown must let both run, then
     * call each plugin's shutdown once. */
    cpex_manager_options o;
    cpex_manager_options_init(&o);
    o.worker_threads = 1;
    cpex_manager *m = tp_manager_with(&o);
    tp_plugin *ff1 = tp_new("ff_first", &trace);
    ff1->mode = CPEX_MODE_FIRE_AND_FORGET;
    ff1->priority = 1;
    ff1->sleep_ms = 200;
    tp_plugin *ff2 = tp_new("ff_queued", &trace);
    ff2->mode = CPEX_MODE_FIRE_AND_FORGET;
    ff2->priority = 2;
    tp_reg(m, ff1);
    tp_reg(m, ff2);
    tp_init(m);
    cpex_pipeline_result res;
    invoke_text(m, HOOK, "hello", &res);
    assert_allowed(&res);
    cpex_pipeline_result_cleanup(&res);
    cpex_manager_shutdown(m);
    /* shutdown waited for both handlers, then called shutdown once */
    assert_int_equal(tp_calls(ff1), 1);
    assert_int_equal(tp_calls(ff2), 1);
    assert_string_equal(ff2->seen_text, "hello");
    assert_int_equal(atomic_load(&ff1->shutdown_calls), 1);
    assert_int_equal(atomic_load(&ff2->shutdown_calls), 1);
    cpex_error_record *recs = NULL;
    size_t n = cpex_manager_take_background_errors(m, &recs);
    if (n)
        print_error("background error: [%s] %s: %s\n", recs[0].code, recs[0].plugin_name,
                    recs[0].message);
    cpex_error_records_free(recs, n);
    assert_int_equal(n, 0);
    tp_manager_free(m);
    assert_int_equal(atomic_load(&ff1->shutdown_calls), 1);
    assert_int_equal(atomic_load(&ff2->shutdown_calls), 1);
    assert_int_equal(atomic_load(&ff1->destroy_calls), 1);
    assert_int_equal(atomic_load(&ff2->destroy_calls), 1);
}

/* ------------------------------------------------------------------ */
/* Disabled mode                                                       */
/* ------------------------------------------------------------------ */

static void test_disabled_mode_never_runs(void **state)
{
    (void)state;
    cpex_manager *m = tp_manager();
    tp_plugin *d = tp_new("off", &trace);
    d->mode = CPEX_MODE_DISABLED;
    d->decision = CPEX_DENY;
    d->append_text = "+off";
    d->hooks[0] = HOOK;
    d->hooks[1] = POST;
    tp_plugin *on = tp_new("on", &trace);
    on->hooks[0] = HOOK;
    on->hooks[1] = POST;
    tp_reg(m, d);
    tp_reg(m, on);
    tp_init(m);
    for (int i = 0; i < 3; i++) {
        cpex_pipeline_result res;
        invoke_text(m, i == 1 ? POST : HOOK, "hello", &res);
        assert_allowed(&res);
        assert_false(res.payload_modified);
        cpex_pipeline_result_cleanup(&res);
    }
    assert_int_equal(tp_calls(d), 0);
    assert_int_equal(tp_calls(on), 3);
    cpex_plugin_info info;
    assert_int_equal(cpex_manager_plugin_info(m, "off", &info), CPEX_OK);
    assert_int_equal(info.mode, CPEX_MODE_DISABLED);
    assert_int_equal(info.state, CPEX_PLUGIN_INITIALIZED);
    cpex_plugin_info_cleanup(&info);
    tp_manager_free(m);
}

/* ------------------------------------------------------------------ */
/* on_error matrix                                                     */
/* ------------------------------------------------------------------ */

static void test_sequential_on_error_fail(void **state)
{
    (void)state;
    cpex_manager *m = tp_manager();
    tp_plugin *e = tp_new("broken", &trace);
    e->on_error = CPEX_ON_ERROR_FAIL;
    e->decision = CPEX_ERROR;
    e->error_message = "database unavailable";
    tp_plugin *after = tp_new("after", &trace);
    after->priority = 200;
    tp_plugin *co = tp_new("co", &trace);
    co->mode = CPEX_MODE_CONCURRENT;
    tp_reg(m, e);
    tp_reg(m, after);
    tp_reg(m, co);
    tp_init(m);
    cpex_pipeline_result res;
    invoke_text(m, HOOK, "hello", &res);
    assert_denied(&res, "plugin_error", "broken");
    assert_contains(res.violation->reason, "broken");
    assert_contains(res.violation->reason, "database unavailable");
    assert_int_equal(tp_calls(after), 0);
    assert_int_equal(tp_calls(co), 0);
    cpex_pipeline_result_cleanup(&res);
    /* fail does not disable: it is called again */
    invoke_text(m, HOOK, "hello", &res);
    assert_denied(&res, "plugin_error", "broken");
    assert_int_equal(tp_calls(e), 2);
    assert_false(tp_is_disabled(m, "broken", NULL, 0));
    cpex_pipeline_result_cleanup(&res);
    tp_manager_free(m);
}

static void test_default_on_error_is_fail(void **state)
{
    (void)state;
    cpex_manager *m = tp_manager();
    tp_plugin *e = tp_new("broken", &trace);
    e->decision = CPEX_ERROR; /* no message either */
    tp_reg(m, e);
    tp_init(m);
    cpex_plugin_info info;
    assert_int_equal(cpex_manager_plugin_info(m, "broken", &info), CPEX_OK);
    assert_int_equal(info.on_error, CPEX_ON_ERROR_FAIL);
    cpex_plugin_info_cleanup(&info);
    cpex_pipeline_result res;
    invoke_text(m, HOOK, "hello", &res);
    assert_denied(&res, "plugin_error", "broken");
    cpex_pipeline_result_cleanup(&res);
    tp_manager_free(m);

    /* The manager's default applies to plugins registered without one. */
    cpex_manager_options o;
    cpex_manager_options_init(&o);
    o.default_on_error = CPEX_ON_ERROR_IGNORE;
    m = tp_manager_with(&o);
    tp_plugin *e2 = tp_new("broken2", &trace);
    e2->decision = CPEX_ERROR;
    tp_reg(m, e2);
    tp_init(m);
    invoke_text(m, HOOK, "hello", &res);
    assert_allowed(&res);
    assert_record(&res, "broken2", "error");
    cpex_pipeline_result_cleanup(&res);
    tp_manager_free(m);
}

static void test_sequential_on_error_ignore(void **state)
{
    (void)state;
    cpex_manager *m = tp_manager();
    tp_plugin *e = tp_new("flaky", &trace);
    e->on_error = CPEX_ON_ERROR_IGNORE;
    e->decision = CPEX_ERROR;
    e->error_message = "timeout talking to redis";
    e->append_text = "+flaky"; /* discarded with the error */
    tp_plugin *after = tp_new("after", &trace);
    after->priority = 200;
    tp_reg(m, e);
    tp_reg(m, after);
    tp_init(m);
    for (int i = 1; i <= 2; i++) {
        cpex_pipeline_result res;
        invoke_text(m, HOOK, "hello", &res);
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
    tp_plugin *e = tp_new("fragile", &trace);
    e->on_error = CPEX_ON_ERROR_DISABLE;
    e->decision = CPEX_ERROR;
    e->error_message = "corrupt state";
    e->hooks[0] = HOOK;
    e->hooks[1] = POST;
    tp_plugin *after = tp_new("after", &trace);
    after->priority = 200;
    after->hooks[0] = HOOK;
    after->hooks[1] = POST;
    tp_reg(m, e);
    tp_reg(m, after);
    tp_init(m);
    assert_false(tp_is_disabled(m, "fragile", NULL, 0));
    cpex_pipeline_result res;
    invoke_text(m, HOOK, "hello", &res);
    assert_allowed(&res);
    assert_record(&res, "fragile", "error");
    assert_int_equal(tp_calls(after), 1);
    cpex_pipeline_result_cleanup(&res);

    char reason[256];
    assert_true(tp_is_disabled(m, "fragile", reason, sizeof reason));
    assert_contains(reason, "corrupt state");
    cpex_plugin_info info;
    assert_int_equal(cpex_manager_plugin_info(m, "fragile", &info), CPEX_OK);
    assert_int_equal(info.mode, CPEX_MODE_SEQUENTIAL); /* configured mode kept */
    assert_int_equal(info.state, CPEX_PLUGIN_INITIALIZED);
    cpex_plugin_info_cleanup(&info);

    /* Never again: not on this hook, not on its other hook. */
    for (int i = 0; i < 3; i++) {
        invoke_text(m, i % 2 ? HOOK : POST, "hello", &res);
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
    tp_plugin *e = tp_new("err", &trace);
    e->mode = mode;
    e->on_error = on_error;
    e->decision = CPEX_ERROR;
    e->error_message = "phase failure";
    tp_plugin *after = tp_new("after_faf", &trace);
    after->mode = CPEX_MODE_FIRE_AND_FORGET;
    tp_reg(m, e);
    tp_reg(m, after);
    tp_init(m);
    cpex_pipeline_result res;
    invoke_text(m, HOOK, "hello", &res);
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
    invoke_text(m, HOOK, "hello", &res);
    cpex_pipeline_result_cleanup(&res);
    assert_int_equal(tp_calls(e), on_error == CPEX_ON_ERROR_DISABLE ? 1 : 2);
    tp_manager_free(m);
}

static void test_transform_on_error_fail_cannot_halt(void **state)
{
    (void)state;
    phase_error_case(CPEX_MODE_TRANSFORM, CPEX_ON_ERROR_FAIL);
}

static void test_transform_on_error_ignore(void **state)
{
    (void)state;
    phase_error_case(CPEX_MODE_TRANSFORM, CPEX_ON_ERROR_IGNORE);
}

static void test_transform_on_error_disable(void **state)
{
    (void)state;
    phase_error_case(CPEX_MODE_TRANSFORM, CPEX_ON_ERROR_DISABLE);
}

static void test_concurrent_on_error_fail(void **state)
{
    (void)state;
    phase_error_case(CPEX_MODE_CONCURRENT, CPEX_ON_ERROR_FAIL);
}

static void test_concurrent_on_error_ignore(void **state)
{
    (void)state;
    phase_error_case(CPEX_MODE_CONCURRENT, CPEX_ON_ERROR_IGNORE);
}

static void test_concurrent_on_error_disable(void **state)
{
    (void)state;
    phase_error_case(CPEX_MODE_CONCURRENT, CPEX_ON_ERROR_DISABLE);
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
    tp_plugin *e = tp_new("mute", &trace);
    e->on_error = CPEX_ON_ERROR_IGNORE;
    e->decision = CPEX_ERROR;
    tp_reg(m, e);
    tp_init(m);
    cpex_pipeline_result res;
    invoke_text(m, HOOK, "hello", &res);
    assert_record(&res, "mute", "error");
    assert_true(strlen(tp_find_record(&res, "mute", "error")->message) > 0);
    cpex_pipeline_result_cleanup(&res);
    tp_manager_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_transform_chain, setup, teardown),
        cmocka_unit_test_setup_teardown(test_transform_deny_dropped_and_recorded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_transform_json_payload_chain, setup, teardown),
        cmocka_unit_test_setup_teardown(test_audit_is_read_only, setup, teardown),
        cmocka_unit_test_setup_teardown(test_audit_deny_recorded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_audit_error_fail_recorded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_audit_error_ignore_recorded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_audit_error_disable_recorded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_runs_on_worker_threads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_deny_first_by_priority, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_deny_first_by_priority_default_settings,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_deny_short_circuit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_cannot_modify, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_deny_without_violation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_violation_plugin_name, setup, teardown),
        cmocka_unit_test_setup_teardown(test_faf_runs_after_with_final_payload, setup, teardown),
        cmocka_unit_test_setup_teardown(test_faf_errors_to_background_log, setup, teardown),
        cmocka_unit_test_setup_teardown(test_faf_disable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_faf_not_started_when_denied, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shutdown_waits_for_background, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disabled_mode_never_runs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sequential_on_error_fail, setup, teardown),
        cmocka_unit_test_setup_teardown(test_default_on_error_is_fail, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sequential_on_error_ignore, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sequential_on_error_disable_persists_across_hooks,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_transform_on_error_fail_cannot_halt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_transform_on_error_ignore, setup, teardown),
        cmocka_unit_test_setup_teardown(test_transform_on_error_disable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_on_error_fail, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_on_error_ignore, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_on_error_disable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sequential_on_error_matrix_via_helper, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_error_without_message_has_text, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
