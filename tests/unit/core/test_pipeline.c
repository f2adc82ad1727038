/*
 * test_pipeline.c — end-to-end through the public manager API: phase
 * order, priorities, sequential deny, unknown decisions, the no-handler
 * fast path and merged metadata.
 */
#include "test_support.h"
#include "plugins.h"

#define HOOK "cmf.tool_pre_invoke"

TP_FIXTURE;

/* Run one invoke of HOOK on "hello" and wait for background work. */
static void run_once(cpex_manager *m, cpex_pipeline_result *res)
{
    tp_run(m, HOOK, res);
    assert_int_equal(cpex_manager_wait_background(m, 5.0), CPEX_OK);
}

/* Initialize, run once and check that the plugins ran in `order`. */
static void start_and_expect_order(cpex_manager *m, cpex_pipeline_result *res, const char *order)
{
    tp_init(m);
    run_once(m, res);
    assert_string_equal(tp_trace_get(&trace), order);
}

/* Register sequential plugins `names` at `prios` (NULL: all at `prio`). */
static void reg_sequential(cpex_manager *m, const char *const *names, const int *prios, int prio,
                           int n)
{
    for (int i = 0; i < n; i++)
        tp_reg(m, tp_new_in(names[i], &trace, CPEX_MODE_SEQUENTIAL, prios ? prios[i] : prio));
}

/* A sequential plugin `name` followed by "after" (priority 200); returns `name`. */
static tp_plugin *new_then_after(const char *name, tp_plugin **after)
{
    tp_plugin *p = tp_new(name, &trace);
    *after = tp_new_in("after", &trace, CPEX_MODE_SEQUENTIAL, 200);
    return p;
}

/* ------------------------------------------------------------------ */
/* Ordering                                                            */
/* ------------------------------------------------------------------ */

static void test_phase_order_ignores_priority(void **state)
{
    (void)state;
    cpex_manager *m = tp_manager();
    /* Registered in reverse phase order, with priorities that would put
     * them in reverse if priority crossed phases. */
    tp_plugin *faf = tp_new_in("faf", &trace, CPEX_MODE_FIRE_AND_FORGET, 1);
    tp_plugin *conc = tp_new_in("conc", &trace, CPEX_MODE_CONCURRENT, 2);
    tp_plugin *aud = tp_new_in("audit", &trace, CPEX_MODE_AUDIT, 3);
    tp_plugin *xf = tp_new_in("xform", &trace, CPEX_MODE_TRANSFORM, 4);
    tp_plugin *seq = tp_new_in("seq", &trace, CPEX_MODE_SEQUENTIAL, 999);
    tp_start(m, faf, conc, aud, xf, seq);

    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    run_once(m, &res);
    assert_allowed(&res);
    assert_string_equal(tp_trace_get(&trace), "seq,xform,audit,conc,faf");
    assert_int_equal(seq->seen_mode, CPEX_MODE_SEQUENTIAL);
    assert_int_equal(xf->seen_mode, CPEX_MODE_TRANSFORM);
    assert_int_equal(aud->seen_mode, CPEX_MODE_AUDIT);
    assert_int_equal(conc->seen_mode, CPEX_MODE_CONCURRENT);
    assert_int_equal(faf->seen_mode, CPEX_MODE_FIRE_AND_FORGET);
    assert_string_equal(seq->seen_hook, HOOK);
    tp_finish(m, &res);
}

static void test_priority_within_phase(void **state)
{
    (void)state;
    cpex_manager *m = tp_manager();
    const int prios[] = {50, 10, 30, 20, 40};
    const char *names[] = {"p50", "p10", "p30", "p20", "p40"};
    reg_sequential(m, names, prios, 0, 5);
    /* Same in transform and audit. */
    for (int i = 0; i < 5; i++) {
        char n[16];
        snprintf(n, sizeof n, "t%d", prios[i]);
        tp_reg(m, tp_new_in(n, &trace, CPEX_MODE_TRANSFORM, prios[i]));
        snprintf(n, sizeof n, "a%d", prios[i]);
        tp_reg(m, tp_new_in(n, &trace, CPEX_MODE_AUDIT, prios[i]));
    }
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    start_and_expect_order(m, &res,
                           "p10,p20,p30,p40,p50,"
                           "t10,t20,t30,t40,t50,"
                           "a10,a20,a30,a40,a50");
    assert_allowed(&res);
    tp_finish(m, &res);
}

static void test_equal_priorities_keep_registration_order(void **state)
{
    (void)state;
    cpex_manager *m = tp_manager();
    /* Not alphabetical, not reversed: exactly registration order. */
    const char *names[] = {"zeta", "alpha", "mu", "beta", "omega", "gamma"};
    reg_sequential(m, names, NULL, 7, 6);
    /* One with a lower priority registered last still runs first. */
    tp_reg(m, tp_new_in("first", &trace, CPEX_MODE_SEQUENTIAL, 6));
    /* One at the same priority registered last runs last. */
    tp_reg(m, tp_new_in("late", &trace, CPEX_MODE_SEQUENTIAL, 7));
    tp_init(m);
    for (int round = 0; round < 3; round++) { /* stable across invokes */
        tp_trace_reset(&trace);
        cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
        run_once(m, &res);
        assert_allowed(&res);
        assert_string_equal(tp_trace_get(&trace), "first,zeta,alpha,mu,beta,omega,gamma,late");
        cpex_pipeline_result_cleanup(&res);
    }
    tp_manager_free(m);
}

static void test_equal_priorities_after_unregister(void **state)
{
    (void)state;
    cpex_manager *m = tp_manager();
    const char *names[] = {"c", "a", "b"};
    reg_sequential(m, names, NULL, TP_DEFAULT_PRIORITY, 3);
    tp_init(m);
    cpex_error err = CPEX_ERROR_INIT;
    assert_int_equal(cpex_manager_unregister(m, "a", &err), CPEX_OK);
    /* Re-registered: it is now the latest registration. */
    tp_reg(m, tp_new("a", &trace));
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    run_once(m, &res);
    assert_string_equal(tp_trace_get(&trace), "c,b,a");
    cpex_error_cleanup(&err);
    tp_finish(m, &res);
}

static void test_negative_priorities(void **state)
{
    (void)state;
    cpex_manager *m = tp_manager();
    const int prios[] = {0, -10, 100, -100, INT32_MIN, INT32_MAX, -1};
    const char *names[] = {"zero", "m10", "p100", "m100", "min", "max", "m1"};
    reg_sequential(m, names, prios, 0, 7);
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    start_and_expect_order(m, &res, "min,m100,m10,m1,zero,p100,max");
    cpex_plugin_info info = CPEX_PLUGIN_INFO_INIT;
    assert_int_equal(cpex_manager_plugin_info(m, "m100", &info), CPEX_OK);
    assert_int_equal(info.priority, -100);
    cpex_plugin_info_cleanup(&info);
    tp_finish(m, &res);
}

/* ------------------------------------------------------------------ */
/* Sequential deny                                                     */
/* ------------------------------------------------------------------ */

static void test_sequential_deny_stops_at_once(void **state)
{
    (void)state;
    cpex_manager *m = tp_manager();
    tp_plugin *a = tp_new_in("a", &trace, CPEX_MODE_SEQUENTIAL, 1);
    a->append_text = "+a";
    tp_plugin *b = tp_new_in("gate", &trace, CPEX_MODE_SEQUENTIAL, 2);
    b->reported_name = "some-other-name";
    tp_denying(b, "blocked_tool", "tool is blocked");
    b->deny_description = "the tool 'rm' is on the deny list";
    b->deny_details = "{\"tool\":\"rm\",\"n\":3}";
    tp_plugin *c = tp_new_in("c", &trace, CPEX_MODE_SEQUENTIAL, 3);
    tp_plugin *xf = tp_new_in("xf", &trace, CPEX_MODE_TRANSFORM, TP_DEFAULT_PRIORITY);
    tp_plugin *au = tp_new_in("au", &trace, CPEX_MODE_AUDIT, TP_DEFAULT_PRIORITY);
    tp_plugin *co = tp_new_in("co", &trace, CPEX_MODE_CONCURRENT, TP_DEFAULT_PRIORITY);
    tp_plugin *ff = tp_new_in("ff", &trace, CPEX_MODE_FIRE_AND_FORGET, TP_DEFAULT_PRIORITY);
    tp_start(m, ff, co, au, xf, c, b, a);

    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    run_once(m, &res);
    assert_denied(&res, "blocked_tool", "gate");
    assert_string_equal(res.violation->reason, "tool is blocked");
    assert_non_null(res.violation->description);
    assert_string_equal(res.violation->description, "the tool 'rm' is on the deny list");
    assert_true(json_is_object(res.violation->details));
    assert_string_equal(json_string_value(json_object_get(res.violation->details, "tool")), "rm");
    assert_int_equal(json_integer_value(json_object_get(res.violation->details, "n")), 3);
    /* Nothing after the deny ran, in this phase or any later one. */
    assert_string_equal(tp_trace_get(&trace), "a,gate");
    assert_int_equal(tp_calls(c), 0);
    assert_int_equal(tp_calls(xf), 0);
    assert_int_equal(tp_calls(au), 0);
    assert_int_equal(tp_calls(co), 0);
    assert_int_equal(tp_calls(ff), 0);
    /* gate saw a's modification. */
    assert_string_equal(b->seen_text, "hello+a");
    tp_finish(m, &res);
}

static void test_deny_without_violation_is_plugin_deny(void **state)
{
    (void)state;
    cpex_manager *m = tp_manager();
    tp_plugin *c;
    tp_plugin *b = new_then_after("silent", &c);
    tp_denying(b, NULL, NULL); /* no host->deny call */
    tp_start(m, b, c);
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    run_once(m, &res);
    assert_denied(&res, "plugin_deny", "silent");
    assert_non_null(res.violation->reason);
    assert_true(strlen(res.violation->reason) > 0);
    assert_non_null(res.violation->details);
    assert_int_equal(tp_calls(c), 0);
    tp_finish(m, &res);
}

static int32_t deny_twice(tp_plugin *p, const cpex_call *call)
{
    (void)p;
    /* A second deny call replaces the first. */
    tp_host()->deny(call, "first", "first reason", NULL, NULL);
    tp_host()->deny(call, "second", "second reason", NULL, NULL);
    return CPEX_DENY;
}

static void test_deny_second_call_replaces_first(void **state)
{
    (void)state;
    cpex_manager *m = tp_manager();
    tp_plugin *b = tp_new("twice", &trace);
    b->custom = deny_twice;
    tp_start(m, b);
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    run_once(m, &res);
    assert_denied(&res, "second", "twice");
    assert_string_equal(res.violation->reason, "second reason");
    tp_finish(m, &res);
}

static void test_violation_set_but_allowed_is_allow(void **state)
{
    (void)state;
    /* Calling deny() and then returning ALLOW is an allow. */
    cpex_manager *m = tp_manager();
    tp_plugin *c;
    tp_plugin *b = new_then_after("changed_mind", &c);
    b->deny_code = "nope";
    b->decision = CPEX_ALLOW;
    tp_start(m, b, c);
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    run_once(m, &res);
    assert_allowed(&res);
    assert_int_equal(tp_calls(c), 1);
    tp_finish(m, &res);
}

/* ------------------------------------------------------------------ */
/* Unknown decisions                                                   */
/* ------------------------------------------------------------------ */

static void test_unknown_decision_is_error_ignore(void **state)
{
    (void)state;
    cpex_manager *m = tp_manager();
    tp_plugin *c;
    tp_plugin *b = new_then_after("weird", &c);
    b->decision = 7;
    b->on_error = CPEX_ON_ERROR_IGNORE;
    b->append_text = "+weird"; /* an error's modification is not applied */
    tp_start(m, b, c);
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    tp_run(m, HOOK, &res);
    assert_allowed(&res);
    assert_record(&res, "weird", "bad_decision");
    assert_contains(tp_find_record(&res, "weird", "bad_decision")->message, "7");
    assert_int_equal(tp_calls(c), 1);
    assert_string_equal(c->seen_text, "hello");
    assert_false(res.payload_modified);
    assert_null(res.modified_payload);
    tp_finish(m, &res);
}

static void test_unknown_decision_is_error_fail(void **state)
{
    (void)state;
    cpex_manager *m = tp_manager();
    tp_plugin *c;
    tp_plugin *b = new_then_after("weird", &c);
    b->decision = -3;
    b->on_error = CPEX_ON_ERROR_FAIL;
    tp_start(m, b, c);
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    run_once(m, &res);
    assert_denied(&res, "plugin_error", "weird");
    assert_int_equal(tp_calls(c), 0);
    tp_finish(m, &res);
}

static void test_unknown_decision_in_audit_recorded(void **state)
{
    (void)state;
    cpex_manager *m = tp_manager();
    tp_plugin *b = tp_new_in("weird_audit", &trace, CPEX_MODE_AUDIT, TP_DEFAULT_PRIORITY);
    b->decision = 99;
    tp_start(m, b);
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    run_once(m, &res);
    assert_allowed(&res);
    assert_record(&res, "weird_audit", "bad_decision");
    tp_finish(m, &res);
}

/* ------------------------------------------------------------------ */
/* No handlers                                                         */
/* ------------------------------------------------------------------ */

static void test_no_handler_fast_path(void **state)
{
    (void)state;
    cpex_manager *m = tp_manager();
    tp_plugin *other = tp_new("other_hook", &trace);
    other->hooks[0] = "cmf.llm_input";
    other->append_text = "+x";
    tp_start(m, other);

    cpex_cmf_message *msg = test_text_message("hello");
    cpex_extensions *ext = cpex_extensions_new();
    assert_non_null(ext);
    assert_int_equal(cpex_extensions_set(ext, CPEX_EXT_SUBJECT_ID, "alice"), CPEX_OK);
    cpex_context_table *ctx = cpex_context_table_new();
    assert_non_null(ctx);

    assert_false(cpex_manager_has_hooks_for(m, HOOK));
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    tp_invoke(m, HOOK, msg, ext, ctx, &res);
    assert_true(res.continue_processing);
    assert_null(res.violation);
    assert_false(res.payload_modified);
    assert_null(res.modified_payload);
    assert_false(res.extensions_modified);
    assert_null(res.extensions);
    assert_null(res.metadata);
    assert_int_equal(res.error_count, 0);
    assert_null(res.errors);
    assert_ptr_equal(res.context, ctx); /* the table passed in comes back */
    assert_string_equal(tp_final_text(&res, msg), "hello");
    assert_int_equal(tp_calls(other), 0);
    cpex_pipeline_result_cleanup(&res); /* frees ctx */

    /* Also with no payload, no extensions and no table at all. */
    cpex_manager_invoke(m, "no.such.hook", NULL, NULL, NULL, &res);
    assert_true(res.continue_processing);
    assert_null(res.violation);
    assert_null(res.context);
    assert_int_equal(res.error_count, 0);
    cpex_pipeline_result_cleanup(&res);

    /* A manager with no plugins at all. */
    cpex_manager *empty = tp_manager();
    tp_invoke(empty, HOOK, msg, ext, NULL, &res);
    assert_true(res.continue_processing);
    assert_false(res.payload_modified);
    assert_null(res.modified_payload);
    assert_null(res.extensions);
    assert_int_equal(res.error_count, 0);
    cpex_pipeline_result_cleanup(&res);
    tp_manager_free(empty);

    /* The caller's data is untouched. */
    assert_string_equal(tp_msg_text(msg), "hello");
    assert_string_equal(cpex_extensions_get(ext, CPEX_EXT_SUBJECT_ID), "alice");
    cpex_extensions_unref(ext);
    cpex_cmf_free(msg);
    tp_manager_free(m);
}

static void test_only_disabled_plugins_is_allow(void **state)
{
    (void)state;
    cpex_manager *m = tp_manager();
    tp_plugin *d = tp_new_in("off", &trace, CPEX_MODE_DISABLED, TP_DEFAULT_PRIORITY);
    tp_start(m, tp_denying(d, NULL, NULL));
    assert_true(cpex_manager_has_hooks_for(m, HOOK));
    cpex_context_table *ctx = cpex_context_table_new();
    cpex_cmf_message *msg = test_text_message("hello");
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    tp_invoke(m, HOOK, msg, NULL, ctx, &res);
    assert_allowed(&res);
    assert_false(res.payload_modified);
    assert_int_equal(res.error_count, 0);
    assert_ptr_equal(res.context, ctx);
    assert_int_equal(tp_calls(d), 0);
    cpex_pipeline_result_cleanup(&res);
    cpex_cmf_free(msg);
    tp_manager_free(m);
    /* A disabled plugin is still initialized and shut down. */
    assert_int_equal(atomic_load(&d->init_calls), 1);
    assert_int_equal(atomic_load(&d->shutdown_calls), 1);
    assert_int_equal(atomic_load(&d->destroy_calls), 1);
}

static void test_all_allow_result_is_clean(void **state)
{
    (void)state;
    /* Handlers ran but changed nothing: same shape as the fast path. */
    cpex_manager *m = tp_manager();
    tp_start(m, tp_new("a", &trace),
             tp_new_in("t", &trace, CPEX_MODE_TRANSFORM, TP_DEFAULT_PRIORITY));
    cpex_cmf_message *msg = test_text_message("hello");
    cpex_extensions *ext = cpex_extensions_new();
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    tp_invoke(m, HOOK, msg, ext, NULL, &res);
    assert_allowed(&res);
    assert_false(res.payload_modified);
    assert_null(res.modified_payload);
    assert_false(res.extensions_modified);
    assert_null(res.extensions);
    assert_int_equal(res.error_count, 0);
    assert_null(res.metadata);
    assert_null(res.context);
    cpex_pipeline_result_cleanup(&res);
    cpex_extensions_unref(ext);
    cpex_cmf_free(msg);
    tp_manager_free(m);
}

/* ------------------------------------------------------------------ */
/* Metadata                                                            */
/* ------------------------------------------------------------------ */

/* A plugin that sets metadata `key` to the JSON text `value`. */
static tp_plugin *new_with_metadata(const char *name, uint32_t mode, int32_t priority,
                                    const char *key, const char *value)
{
    tp_plugin *p = tp_new_in(name, &trace, mode, priority);
    p->meta_key = key;
    p->meta_value = value;
    return p;
}

static void test_metadata_merged(void **state)
{
    (void)state;
    cpex_manager *m = tp_manager();
    tp_plugin *a =
        new_with_metadata("a", CPEX_MODE_SEQUENTIAL, TP_DEFAULT_PRIORITY, "score", "0.5");
    tp_plugin *b = new_with_metadata("b", CPEX_MODE_SEQUENTIAL, 200, "labels", "[\"x\",\"y\"]");
    tp_plugin *t =
        new_with_metadata("t", CPEX_MODE_TRANSFORM, TP_DEFAULT_PRIORITY, "transformed", "true");
    tp_plugin *au =
        new_with_metadata("au", CPEX_MODE_AUDIT, TP_DEFAULT_PRIORITY, "audited_by", "\"au\"");
    tp_plugin *co = new_with_metadata("co", CPEX_MODE_CONCURRENT, TP_DEFAULT_PRIORITY, "concurrent",
                                      "{\"ok\":1}");
    tp_start(m, a, b, t, au, co);
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    run_once(m, &res);
    assert_allowed(&res);
    assert_non_null(res.metadata);
    assert_true(json_is_object(res.metadata));
    assert_true(json_real_value(json_object_get(res.metadata, "score")) == 0.5);
    assert_int_equal(json_array_size(json_object_get(res.metadata, "labels")), 2);
    assert_true(json_is_true(json_object_get(res.metadata, "transformed")));
    assert_string_equal(json_string_value(json_object_get(res.metadata, "audited_by")), "au");
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(res.metadata, "concurrent"), "ok")), 1);
    assert_int_equal(json_object_size(res.metadata), 5);
    cpex_pipeline_result_cleanup(&res);

    /* A second invoke starts from empty metadata (no leak across invokes). */
    b->meta_key = NULL;
    t->meta_key = NULL;
    au->meta_key = NULL;
    co->meta_key = NULL;
    run_once(m, &res);
    assert_non_null(res.metadata);
    assert_int_equal(json_object_size(res.metadata), 1);
    tp_finish(m, &res);
}

static void test_metadata_later_plugin_wins_on_same_key(void **state)
{
    (void)state;
    cpex_manager *m = tp_manager();
    tp_start(m, new_with_metadata("a", CPEX_MODE_SEQUENTIAL, TP_DEFAULT_PRIORITY, "k", "1"),
             new_with_metadata("b", CPEX_MODE_SEQUENTIAL, 200, "k", "2"));
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    run_once(m, &res);
    assert_non_null(res.metadata);
    assert_int_equal(json_integer_value(json_object_get(res.metadata, "k")), 2);
    tp_finish(m, &res);
}

/* ------------------------------------------------------------------ */
/* Result helpers                                                      */
/* ------------------------------------------------------------------ */

static void test_result_to_json_and_cleanup(void **state)
{
    (void)state;
    cpex_manager *m = tp_manager();
    tp_plugin *a = tp_new("a", &trace);
    a->append_text = "+a";
    tp_start(m, a, tp_denying(tp_new_in("b", &trace, CPEX_MODE_SEQUENTIAL, 200), "stop", NULL));
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    run_once(m, &res);
    assert_denied(&res, "stop", "b");
    json_t *j = cpex_pipeline_result_to_json(&res);
    assert_non_null(j);
    assert_true(json_is_false(json_object_get(j, "continue_processing")));
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "violation"), "code")),
                        "stop");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(j, "violation"), "plugin_name")), "b");
    json_decref(j);
    cpex_pipeline_result_cleanup(&res);
    /* cleanup leaves an empty, reusable result */
    assert_true(res.continue_processing);
    assert_null(res.violation);
    cpex_pipeline_result_cleanup(&res);
    tp_manager_free(m);
}

/* ------------------------------------------------------------------ */
/* Odd calls                                                           */
/* ------------------------------------------------------------------ */

static int32_t modify_twice(tp_plugin *p, const cpex_call *call)
{
    const cpex_host_api *h = tp_host();
    /* The second replacement wins; the first is freed by the host. */
    p->rc_payload = tp_append_to_payload(call, "+first");
    p->rc_label = tp_append_to_payload(call, "+second");
    /* Bad arguments are refused without crashing. */
    p->rc_header = h->set_payload_cmf(call, NULL);
    p->rc_remove_label = h->deny(call, NULL, "no code", NULL, NULL);
    p->rc_ctx_local = h->deny(call, "x", "details must be an object", NULL, h->json_new_integer(1));
    return CPEX_ALLOW;
}

static void test_modify_twice_and_bad_arguments(void **state)
{
    (void)state;
    cpex_manager *m = tp_manager();
    tp_plugin *p = tp_new("twice", &trace);
    p->custom = modify_twice;
    tp_plugin *next = tp_new_in("next", &trace, CPEX_MODE_SEQUENTIAL, 200);
    tp_start(m, p, next);
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    run_once(m, &res);
    assert_allowed(&res);
    assert_int_equal(p->rc_payload, CPEX_HOST_OK);
    assert_int_equal(p->rc_label, CPEX_HOST_OK);
    assert_int_equal(p->rc_header, CPEX_HOST_EINVAL);
    assert_int_equal(p->rc_remove_label, CPEX_HOST_EINVAL);
    assert_int_equal(p->rc_ctx_local, CPEX_HOST_EINVAL);
    /* Each append started from the payload the plugin was called with. */
    assert_string_equal(next->seen_text, "hello+second");
    assert_string_equal(tp_final_text(&res, NULL), "hello+second");
    tp_finish(m, &res);
}

static void test_invoke_bad_arguments(void **state)
{
    (void)state;
    cpex_manager *m = tp_manager();
    tp_start(m, tp_new("a", &trace));
    cpex_context_table *ctx = cpex_context_table_new();
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    cpex_manager_invoke(m, NULL, NULL, NULL, ctx, &res);
    assert_false(res.continue_processing);
    assert_non_null(res.violation);
    assert_ptr_equal(res.context, ctx); /* consumed: handed back in the result */
    cpex_pipeline_result_cleanup(&res);
    cpex_manager_invoke(NULL, HOOK, NULL, NULL, NULL, &res);
    assert_false(res.continue_processing);
    cpex_pipeline_result_cleanup(&res);
    cpex_manager_invoke(m, HOOK, NULL, NULL, NULL, NULL); /* no result: nothing happens */
    assert_string_equal(tp_trace_get(&trace), "");
    tp_manager_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TP_TEST(test_phase_order_ignores_priority),
        TP_TEST(test_priority_within_phase),
        TP_TEST(test_equal_priorities_keep_registration_order),
        TP_TEST(test_equal_priorities_after_unregister),
        TP_TEST(test_negative_priorities),
        TP_TEST(test_sequential_deny_stops_at_once),
        TP_TEST(test_deny_without_violation_is_plugin_deny),
        TP_TEST(test_deny_second_call_replaces_first),
        TP_TEST(test_violation_set_but_allowed_is_allow),
        TP_TEST(test_unknown_decision_is_error_ignore),
        TP_TEST(test_unknown_decision_is_error_fail),
        TP_TEST(test_unknown_decision_in_audit_recorded),
        TP_TEST(test_no_handler_fast_path),
        TP_TEST(test_only_disabled_plugins_is_allow),
        TP_TEST(test_all_allow_result_is_clean),
        TP_TEST(test_metadata_merged),
        TP_TEST(test_metadata_later_plugin_wins_on_same_key),
        TP_TEST(test_result_to_json_and_cleanup),
        TP_TEST(test_modify_twice_and_bad_arguments),
        TP_TEST(test_invoke_bad_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
