/*
 * test_pipeline.c — end-to-end through the public manager API: phase
 * order, priorities, sequential deny, unknown decisions, the no-handler
 * fast path and merged metadata.
 */
#include "test_support.h"
#include "plugins.h"

#define HOOK "cmf.tool_pre_invoke"

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

/* Run one invoke of HOOK on "hello" and wait for background work. */
static void run_once(cpex_manager *m, cpex_pipeline_result *res)
{
    cpex_cmf_message *msg = tp_msg("hello");
    tp_invoke(m, HOOK, msg, NULL, NULL, res);
    assert_int_equal(cpex_manager_wait_background(m, 5.0), CPEX_OK);
    cpex_cmf_free(msg);
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
    tp_plugin *faf = tp_new("faf", &trace);
    faf->mode = CPEX_MODE_FIRE_AND_FORGET;
    faf->priority = 1;
    tp_plugin *conc = tp_new("conc", &trace);
    conc->mode = CPEX_MODE_CONCURRENT;
    conc->priority = 2;
    tp_plugin *aud = tp_new("audit", &trace);
    aud->mode = CPEX_MODE_AUDIT;
    aud->priority = 3;
    tp_plugin *xf = tp_new("xform", &trace);
    xf->mode = CPEX_MODE_TRANSFORM;
    xf->priority = 4;
    tp_plugin *seq = tp_new("seq", &trace);
    seq->priority = 999;
    tp_reg(m, faf);
    tp_reg(m, conc);
    tp_reg(m, aud);
    tp_reg(m, xf);
    tp_reg(m, seq);
    tp_init(m);

    cpex_pipeline_result res;
    run_once(m, &res);
    assert_allowed(&res);
    assert_string_equal(tp_trace_get(&trace), "seq,xform,audit,conc,faf");
    assert_int_equal(seq->seen_mode, CPEX_MODE_SEQUENTIAL);
    assert_int_equal(xf->seen_mode, CPEX_MODE_TRANSFORM);
    assert_int_equal(aud->seen_mode, CPEX_MODE_AUDIT);
    assert_int_equal(conc->seen_mode, CPEX_MODE_CONCURRENT);
    assert_int_equal(faf->seen_mode, CPEX_MODE_FIRE_AND_FORGET);
    assert_string_equal(seq->seen_hook, HOOK);
    cpex_pipeline_result_cleanup(&res);
    tp_manager_free(m);
}

static void test_priority_within_phase(void **state)
{
    (void)state;
    cpex_manager *m = tp_manager();
    const int prios[] = {50, 10, 30, 20, 40};
    const char *names[] = {"p50", "p10", "p30", "p20", "p40"};
    for (int i = 0; i < 5; i++) {
        tp_plugin *p = tp_new(names[i], &trace);
        p->priority = prios[i];
        tp_reg(m, p);
    }
    /* Same in transform and audit. */
    for (int i = 0; i < 5; i++) {
        char n[16];
        snprintf(n, sizeof n, "t%d", prios[i]);
        tp_plugin *p = tp_new(n, &trace);
        p->mode = CPEX_MODE_TRANSFORM;
        p->priority = prios[i];
        tp_reg(m, p);
        snprintf(n, sizeof n, "a%d", prios[i]);
        p = tp_new(n, &trace);
        p->mode = CPEX_MODE_AUDIT;
        p->priority = prios[i];
        tp_reg(m, p);
    }
    tp_init(m);
    cpex_pipeline_result res;
    run_once(m, &res);
    assert_allowed(&res);
    assert_string_equal(tp_trace_get(&trace), "p10,p20,p30,p40,p50,"
                                              "t10,t20,t30,t40,t50,"
                                              "a10,a20,a30,a40,a50");
    cpex_pipeline_result_cleanup(&res);
    tp_manager_free(m);
}

static void test_equal_priorities_keep_registration_order(void **state)
{
    (void)state;
    cpex_manager *m = tp_manager();
    /* Not alphabetical, not reversed: exactly registration order. */
    const char *names[] = {"zeta", "alpha", "mu", "beta", "omega", "gamma"};
    for (int i = 0; i < 6; i++) {
        tp_plugin *p = tp_new(names[i], &trace);
        p->priority = 7;
        tp_reg(m, p);
    }
    /* One with a lower priority registered last still runs first. */
    tp_plugin *first = tp_new("first", &trace);
    first->priority = 6;
    tp_reg(m, first);
    /* One at the same priority registered last runs last. */
    tp_plugin *late = tp_new("late", &trace);
    late->priority = 7;
    tp_reg(m, late);
    tp_init(m);
    for (int round = 0; round < 3; round++) { /* stable across invokes */
        tp_trace_reset(&trace);
        cpex_pipeline_result res;
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
    for (int i = 0; i < 3; i++)
        tp_reg(m, tp_new(names[i], &trace));
    tp_init(m);
    cpex_error err = CPEX_ERROR_INIT;
    assert_int_equal(cpex_manager_unregister(m, "a", &err), CPEX_OK);
    /* Re-registered: it is now the latest registration. */
    tp_reg(m, tp_new("a", &trace));
    cpex_pipeline_result res;
    run_once(m, &res);
    assert_string_equal(tp_trace_get(&trace), "c,b,a");
    cpex_pipeline_result_cleanup(&res);
    cpex_error_cleanup(&err);
    tp_manager_free(m);
}

static void test_negative_priorities(void **state)
{
    (void)state;
    cpex_manager *m = tp_manager();
    const int prios[] = {0, -10, 100, -100, INT32_MIN, INT32_MAX, -1};
    const char *names[] = {"zero", "m10", "p100", "m100", "min", "max", "m1"};
    for (int i = 0; i < 7; i++) {
        tp_plugin *p = tp_new(names[i], &trace);
        p->priority = prios[i];
        tp_reg(m, p);
    }
    tp_init(m);
    cpex_pipeline_result res;
    run_once(m, &res);
    assert_string_equal(tp_trace_get(&trace), "min,m100,m10,m1,zero,p100,max");
    cpex_plugin_info info;
    assert_int_equal(cpex_manager_plugin_info(m, "m100", &info), CPEX_OK);
    assert_int_equal(info.priority, -100);
    cpex_plugin_info_cleanup(&info);
    cpex_pipeline_result_cleanup(&res);
    tp_manager_free(m);
}

/* ------------------------------------------------------------------ */
/* Sequential deny                                                     */
/* ------------------------------------------------------------------ */

static void test_sequential_deny_stops_at_once(void **state)
{
    (void)state;
    cpex_manager *m = tp_manager();
    tp_plugin *a = tp_new("a", &trace);
    a->priority = 1;
    a->append_text = "+a";
    tp_plugin *b = tp_new("gate", &trace);
    b->priority = 2;
    b->reported_name = "some-other-name";
    b->decision = CPEX_DENY;
    b->deny_code = "blocked_tool";
    b->deny_reason = "tool is blocked";
    b->deny_description = "the tool 'rm' is on the deny list";
    b->deny_details = "{\"tool\":\"rm\",\"n\":3}";
    tp_plugin *c = tp_new("c", &trace);
    c->priority = 3;
    tp_plugin *xf = tp_new("xf", &trace);
    xf->mode = CPEX_MODE_TRANSFORM;
    tp_plugin *au = tp_new("au", &trace);
    au->mode = CPEX_MODE_AUDIT;
    tp_plugin *co = tp_new("co", &trace);
    co->mode = CPEX_MODE_CONCURRENT;
    tp_plugin *ff = tp_new("ff", &trace);
    ff->mode = CPEX_MODE_FIRE_AND_FORGET;
    tp_plugin *all[] = {ff, co, au, xf, c, b, a};
    for (int i = 0; i < 7; i++)
        tp_reg(m, all[i]);
    tp_init(m);

    cpex_pipeline_result res;
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
    cpex_pipeline_result_cleanup(&res);
    tp_manager_free(m);
}

static void test_deny_without_violation_is_plugin_deny(void **state)
{
    (void)state;
    cpex_manager *m = tp_manager();
    tp_plugin *b = tp_new("silent", &trace);
    b->decision = CPEX_DENY; /* no host->deny call */
    tp_plugin *c = tp_new("after", &trace);
    c->priority = 200;
    tp_reg(m, b);
    tp_reg(m, c);
    tp_init(m);
    cpex_pipeline_result res;
    run_once(m, &res);
    assert_denied(&res, "plugin_deny", "silent");
    assert_non_null(res.violation->reason);
    assert_true(strlen(res.violation->reason) > 0);
    assert_non_null(res.violation->details);
    assert_int_equal(tp_calls(c), 0);
    cpex_pipeline_result_cleanup(&res);
    tp_manager_free(m);
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
    tp_reg(m, b);
    tp_init(m);
    cpex_pipeline_result res;
    run_once(m, &res);
    assert_denied(&res, "second", "twice");
    assert_string_equal(res.violation->reason, "second reason");
    cpex_pipeline_result_cleanup(&res);
    tp_manager_free(m);
}

static void test_violation_set_but_allowed_is_allow(void **state)
{
    (void)state;
    /* Calling deny() and then returning ALLOW is an allow. */
    cpex_manager *m = tp_manager();
    tp_plugin *b = tp_new("changed_mind", &trace);
    b->deny_code = "nope";
    b->decision = CPEX_ALLOW;
    tp_plugin *c = tp_new("after", &trace);
    c->priority = 200;
    tp_reg(m, b);
    tp_reg(m, c);
    tp_init(m);
    cpex_pipeline_result res;
    run_once(m, &res);
    assert_allowed(&res);
    assert_int_equal(tp_calls(c), 1);
    cpex_pipeline_result_cleanup(&res);
    tp_manager_free(m);
}

/* ------------------------------------------------------------------ */
/* Unknown decisions                                                   */
/* ------------------------------------------------------------------ */

static void test_unknown_decision_is_error_ignore(void **state)
{
    (void)state;
    cpex_manager *m = tp_manager();
    tp_plugin *b = tp_new("weird", &trace);
    b->decision = 7;
    b->on_error = CPEX_ON_ERROR_IGNORE;
    b->append_text = "+weird"; /* an error's modification is not applied */
    tp_plugin *c = tp_new("after", &trace);
    c->priority = 200;
    tp_reg(m, b);
    tp_reg(m, c);
    tp_init(m);
    cpex_cmf_message *msg = tp_msg("hello");
    cpex_pipeline_result res;
    tp_invoke(m, HOOK, msg, NULL, NULL, &res);
    assert_allowed(&res);
    assert_record(&res, "weird", "bad_decision");
    assert_contains(tp_find_record(&res, "weird", "bad_decision")->message, "7");
    assert_int_equal(tp_calls(c), 1);
    assert_string_equal(c->seen_text, "hello");
    assert_false(res.payload_modified);
    assert_null(res.modified_payload);
    cpex_pipeline_result_cleanup(&res);
    cpex_cmf_free(msg);
    tp_manager_free(m);
}

static void test_unknown_decision_is_error_fail(void **state)
{
    (void)state;
    cpex_manager *m = tp_manager();
    tp_plugin *b = tp_new("weird", &trace);
    b->decision = -3;
    b->on_error = CPEX_ON_ERROR_FAIL;
    tp_plugin *c = tp_new("after", &trace);
    c->priority = 200;
    tp_reg(m, b);
    tp_reg(m, c);
    tp_init(m);
    cpex_pipeline_result res;
    run_once(m, &res);
    assert_denied(&res, "plugin_error", "weird");
    assert_int_equal(tp_calls(c), 0);
    cpex_pipeline_result_cleanup(&res);
    tp_manager_free(m);
}

static void test_unknown_decision_in_audit_recorded(void **state)
{
    (void)state;
    cpex_manager *m = tp_manager();
    tp_plugin *b = tp_new("weird_audit", &trace);
    b->mode = CPEX_MODE_AUDIT;
    b->decision = 99;
    tp_reg(m, b);
    tp_init(m);
    cpex_pipeline_result res;
    run_once(m, &res);
    assert_allowed(&res);
    assert_record(&res, "weird_audit", "bad_decision");
    cpex_pipeline_result_cleanup(&res);
    tp_manager_free(m);
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
    tp_reg(m, other);
    tp_init(m);

    cpex_cmf_message *msg = tp_msg("hello");
    cpex_extensions *ext = cpex_extensions_new();
    assert_non_null(ext);
    assert_int_equal(cpex_extensions_set(ext, CPEX_EXT_SUBJECT_ID, "alice"), CPEX_OK);
    cpex_context_table *ctx = cpex_context_table_new();
    assert_non_null(ctx);

    assert_false(cpex_manager_has_hooks_for(m, HOOK));
    cpex_pipeline_result res;
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
    tp_plugin *d = tp_new("off", &trace);
    d->mode = CPEX_MODE_DISABLED;
    d->decision = CPEX_DENY;
    tp_reg(m, d);
    tp_init(m);
    assert_true(cpex_manager_has_hooks_for(m, HOOK));
    cpex_context_table *ctx = cpex_context_table_new();
    cpex_cmf_message *msg = tp_msg("hello");
    cpex_pipeline_result res;
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
    tp_reg(m, tp_new("a", &trace));
    tp_plugin *t = tp_new("t", &trace);
    t->mode = CPEX_MODE_TRANSFORM;
    tp_reg(m, t);
    tp_init(m);
    cpex_cmf_message *msg = tp_msg("hello");
    cpex_extensions *ext = cpex_extensions_new();
    cpex_pipeline_result res;
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

static void test_metadata_merged(void **state)
{
    (void)state;
    cpex_manager *m = tp_manager();
    tp_plugin *a = tp_new("a", &trace);
    a->meta_key = "score";
    a->meta_value = "0.5";
    tp_plugin *b = tp_new("b", &trace);
    b->priority = 200;
    b->meta_key = "labels";
    b->meta_value = "[\"x\",\"y\"]";
    tp_plugin *t = tp_new("t", &trace);
    t->mode = CPEX_MODE_TRANSFORM;
    t->meta_key = "transformed";
    t->meta_value = "true";
    tp_plugin *au = tp_new("au", &trace);
    au->mode = CPEX_MODE_AUDIT;
    au->meta_key = "audited_by";
    au->meta_value = "\"au\"";
    tp_plugin *co = tp_new("co", &trace);
    co->mode = CPEX_MODE_CONCURRENT;
    co->meta_key = "concurrent";
    co->meta_value = "{\"ok\":1}";
    tp_reg(m, a);
    tp_reg(m, b);
    tp_reg(m, t);
    tp_reg(m, au);
    tp_reg(m, co);
    tp_init(m);
    cpex_pipeline_result res;
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
    cpex_pipeline_result_cleanup(&res);
    tp_manager_free(m);
}

static void test_metadata_later_plugin_wins_on_same_key(void **state)
{
    (void)state;
    cpex_manager *m = tp_manager();
    tp_plugin *a = tp_new("a", &trace);
    a->meta_key = "k";
    a->meta_value = "1";
    tp_plugin *b = tp_new("b", &trace);
    b->priority = 200;
    b->meta_key = "k";
    b->meta_value = "2";
    tp_reg(m, a);
    tp_reg(m, b);
    tp_init(m);
    cpex_pipeline_result res;
    run_once(m, &res);
    assert_non_null(res.metadata);
    assert_int_equal(json_integer_value(json_object_get(res.metadata, "k")), 2);
    cpex_pipeline_result_cleanup(&res);
    tp_manager_free(m);
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
    tp_plugin *b = tp_new("b", &trace);
    b->priority = 200;
    b->decision = CPEX_DENY;
    b->deny_code = "stop";
    tp_reg(m, a);
    tp_reg(m, b);
    tp_init(m);
    cpex_pipeline_result res;
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
    tp_plugin *next = tp_new("next", &trace);
    next->priority = 200;
    tp_reg(m, p);
    tp_reg(m, next);
    tp_init(m);
    cpex_pipeline_result res;
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
    cpex_pipeline_result_cleanup(&res);
    tp_manager_free(m);
}

static void test_invoke_bad_arguments(void **state)
{
    (void)state;
    cpex_manager *m = tp_manager();
    tp_reg(m, tp_new("a", &trace));
    tp_init(m);
    cpex_context_table *ctx = cpex_context_table_new();
    cpex_pipeline_result res;
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
        cmocka_unit_test_setup_teardown(test_phase_order_ignores_priority, setup, teardown),
        cmocka_unit_test_setup_teardown(test_priority_within_phase, setup, teardown),
        cmocka_unit_test_setup_teardown(test_equal_priorities_keep_registration_order, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_equal_priorities_after_unregister, setup, teardown),
        cmocka_unit_test_setup_teardown(test_negative_priorities, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sequential_deny_stops_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deny_without_violation_is_plugin_deny, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_deny_second_call_replaces_first, setup, teardown),
        cmocka_unit_test_setup_teardown(test_violation_set_but_allowed_is_allow, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_decision_is_error_ignore, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_decision_is_error_fail, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_decision_in_audit_recorded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_handler_fast_path, setup, teardown),
        cmocka_unit_test_setup_teardown(test_only_disabled_plugins_is_allow, setup, teardown),
        cmocka_unit_test_setup_teardown(test_all_allow_result_is_clean, setup, teardown),
        cmocka_unit_test_setup_teardown(test_metadata_merged, setup, teardown),
        cmocka_unit_test_setup_teardown(test_metadata_later_plugin_wins_on_same_key, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_result_to_json_and_cleanup, setup, teardown),
        cmocka_unit_test_setup_teardown(test_modify_twice_and_bad_arguments, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invoke_bad_arguments, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
