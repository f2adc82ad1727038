/*
 * test_registry.c — programmatic registration (validation, payload
 * types), the plugin lifecycle (initialize, shutdown, destroy, fail
 * closed), queries and unregister, through the public manager API.
 */
#include "test_support.h"
#include "plugins.h"

#define HOOK "cmf.tool_pre_invoke"
#define POST "cmf.tool_post_invoke"

TP_FIXTURE;

/* Register `p`; expect status `want` and an error message containing `needle`
 * (NULL: unchecked). */
static void expect_reg_status(cpex_manager *m, tp_plugin *p, cpex_status want, const char *needle)
{
    cpex_error err = CPEX_ERROR_INIT;
    assert_int_equal(tp_reg_err(m, p, &err), want);
    if (needle)
        assert_contains(cpex_error_message(&err), needle);
    cpex_error_cleanup(&err);
}

/* Assert the lifecycle counters of `p`: initialize, shutdown and destroy calls. */
static void assert_lifecycle(const tp_plugin *p, int init, int shutdown, int destroy)
{
    assert_int_equal(atomic_load(&p->init_calls), init);
    assert_int_equal(atomic_load(&p->shutdown_calls), shutdown);
    assert_int_equal(atomic_load(&p->destroy_calls), destroy);
}

/* ------------------------------------------------------------------ */
/* Registration validation                                             */
/* ------------------------------------------------------------------ */

/* Register `p` with a hand-made handler array; expect refusal. */
static void expect_refused(cpex_manager *m, tp_plugin *p, const cpex_handler_reg *handlers,
                           size_t count, const char *needle)
{
    cpex_plugin_spec spec;
    cpex_plugin_registration reg;
    tp_fill(p, &spec, &reg);
    reg.handlers = handlers;
    reg.handler_count = count;
    cpex_error err = CPEX_ERROR_INIT;
    int destroyed = atomic_load(&p->destroy_calls);
    cpex_status st = cpex_manager_register(m, &spec, &reg, &err);
    assert_int_not_equal(st, CPEX_OK);
    assert_int_equal(err.code, st);
    assert_true(err.count >= 1);
    const char *msg = cpex_error_message(&err);
    assert_contains(msg, needle);
    assert_contains(msg, p->name); /* names the plugin */
    cpex_error_cleanup(&err);
    assert_int_equal(cpex_manager_plugin_count(m), 0);
    /* the manager took the instance: refused, it is destroyed, once */
    assert_int_equal(atomic_load(&p->destroy_calls), destroyed + 1);
    assert_int_equal(atomic_load(&p->init_calls), 0);
}

static void test_registration_validation(void **state)
{
    (void)state;
    cpex_manager *m = tp_manager();
    tp_plugin *p = tp_new("bad", &trace);
    cpex_handler_reg one[] = {CPEX_HANDLER(HOOK, tp_handler, NULL)};
    expect_refused(m, p, one, 0, "no handlers");
    expect_refused(m, p, NULL, 1, "no handlers");
    cpex_handler_reg nullfn[] = {CPEX_HANDLER(HOOK, NULL, NULL)};
    expect_refused(m, p, nullfn, 1, "no function");
    cpex_handler_reg emptyhook[] = {CPEX_HANDLER("", tp_handler, NULL)};
    expect_refused(m, p, emptyhook, 1, "no hook name");
    cpex_handler_reg nullhook[] = {CPEX_HANDLER(NULL, tp_handler, NULL)};
    expect_refused(m, p, nullhook, 1, "no hook name");
    cpex_handler_reg dup[] = {CPEX_HANDLER(HOOK, tp_handler, NULL),
                              CPEX_HANDLER(POST, tp_handler, NULL),
                              CPEX_HANDLER(HOOK, tp_handler, NULL)};
    expect_refused(m, p, dup, 3, HOOK);
    expect_refused(m, p, dup, 3, "two handlers");
    assert_int_equal(atomic_load(&p->destroy_calls), 7); /* one per refusal */
    /* The same plugin registers fine once fixed. */
    tp_reg(m, p);
    assert_int_equal(cpex_manager_plugin_count(m), 1);
    tp_manager_free(m);
    assert_int_equal(atomic_load(&p->destroy_calls), 8);
}

static void test_spec_validation(void **state)
{
    (void)state;
    cpex_manager *m = tp_manager();
    tp_plugin *p = tp_new("specs", &trace);
    cpex_plugin_spec spec;
    cpex_plugin_registration reg;
    cpex_error err = CPEX_ERROR_INIT;

    tp_fill(p, &spec, &reg);
    spec.name = NULL;
    assert_int_equal(cpex_manager_register(m, &spec, &reg, &err), CPEX_E_INVALID);
    cpex_error_cleanup(&err);
    tp_fill(p, &spec, &reg);
    spec.name = "";
    assert_int_equal(cpex_manager_register(m, &spec, &reg, &err), CPEX_E_INVALID);
    cpex_error_cleanup(&err);
    tp_fill(p, &spec, &reg);
    spec.mode = 42;
    assert_int_equal(cpex_manager_register(m, &spec, &reg, &err), CPEX_E_INVALID);
    cpex_error_cleanup(&err);
    tp_fill(p, &spec, &reg);
    spec.on_error = (cpex_on_error)9;
    assert_int_equal(cpex_manager_register(m, &spec, &reg, &err), CPEX_E_INVALID);
    cpex_error_cleanup(&err);
    tp_fill(p, &spec, &reg);
    spec.timeout = -1;
    assert_int_equal(cpex_manager_register(m, &spec, &reg, &err), CPEX_E_INVALID);
    cpex_error_cleanup(&err);
    /* hooks: a listed hook the plugin does not serve is an error */
    tp_fill(p, &spec, &reg);
    const char *listed[] = {"cmf.llm_output"};
    spec.hooks = listed;
    spec.hook_count = 1;
    assert_int_equal(cpex_manager_register(m, &spec, &reg, &err), CPEX_E_CONFIG);
    assert_contains(cpex_error_message(&err), "cmf.llm_output");
    cpex_error_cleanup(&err);
    assert_int_equal(cpex_manager_plugin_count(m), 0);
    assert_int_equal(atomic_load(&p->destroy_calls), 6); /* each refusal destroyed it, once */
    tp_manager_free(m);
    assert_int_equal(atomic_load(&p->destroy_calls), 6);
}

static void test_spec_hooks_filter_handlers(void **state)
{
    (void)state;
    cpex_manager *m = tp_manager();
    tp_plugin *p = tp_new("filtered", &trace);
    p->hooks[0] = HOOK;
    p->hooks[1] = POST;
    cpex_plugin_spec spec;
    cpex_plugin_registration reg;
    tp_fill(p, &spec, &reg);
    const char *only[] = {POST};
    spec.hooks = only;
    spec.hook_count = 1;
    cpex_error err = CPEX_ERROR_INIT;
    assert_int_equal(cpex_manager_register(m, &spec, &reg, &err), CPEX_OK);
    tp_init(m);
    assert_false(cpex_manager_has_hooks_for(m, HOOK));
    assert_true(cpex_manager_has_hooks_for(m, POST));
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    tp_run(m, HOOK, &res);
    cpex_pipeline_result_cleanup(&res);
    assert_int_equal(tp_calls(p), 0);
    tp_run(m, POST, &res);
    cpex_pipeline_result_cleanup(&res);
    assert_int_equal(tp_calls(p), 1);
    cpex_plugin_info info = CPEX_PLUGIN_INFO_INIT;
    assert_int_equal(cpex_manager_plugin_info(m, "filtered", &info), CPEX_OK);
    assert_string_equal(info.hooks[0], POST);
    assert_null(info.hooks[1]);
    cpex_plugin_info_cleanup(&info);
    cpex_error_cleanup(&err);
    tp_manager_free(m);
}

static void test_duplicate_name(void **state)
{
    (void)state;
    cpex_manager *m = tp_manager();
    tp_plugin *a = tp_new("same", &trace);
    tp_plugin *b = tp_new("same", &trace);
    b->hooks[0] = POST;
    tp_reg(m, a);
    expect_reg_status(m, b, CPEX_E_EXISTS, "same");
    assert_int_equal(cpex_manager_plugin_count(m), 1);
    assert_false(cpex_manager_has_hooks_for(m, POST));
    assert_int_equal(atomic_load(&b->destroy_calls), 1); /* refused: destroyed at once */
    tp_manager_free(m);
    assert_int_equal(atomic_load(&a->destroy_calls), 1);
    assert_int_equal(atomic_load(&b->destroy_calls), 1);
}

static void test_payload_type_mismatch_at_registration(void **state)
{
    (void)state;
    cpex_manager *m = tp_manager();
    tp_plugin *p = tp_new("json_on_cmf", &trace);
    p->payload_type = "json";
    cpex_error err = CPEX_ERROR_INIT;
    assert_int_equal(tp_reg_err(m, p, &err), CPEX_E_TYPE);
    assert_contains(cpex_error_message(&err), HOOK);
    assert_contains(cpex_error_message(&err), "json");
    cpex_error_cleanup(&err);
    /* An unknown type name is refused too. */
    tp_plugin *q = tp_new("unknown_type", &trace);
    q->payload_type = "no_such_type";
    expect_reg_status(m, q, CPEX_E_TYPE, "no_such_type");
    /* "cmf" on a cmf hook is fine, so is NULL (any). */
    tp_plugin *ok = tp_new("cmf_ok", &trace);
    ok->payload_type = "cmf";
    tp_reg(m, ok);
    /* A new hook is bound by the first handler that declares a type. */
    tp_plugin *j1 = tp_new("json_first", &trace);
    j1->hooks[0] = "my.doc";
    j1->payload_type = "json";
    tp_reg(m, j1);
    tp_plugin *c2 = tp_new("cmf_second", &trace);
    c2->hooks[0] = "my.doc";
    c2->payload_type = "cmf";
    expect_reg_status(m, c2, CPEX_E_TYPE, NULL);
    assert_int_equal(cpex_manager_define_hook(m, "my.doc", "cmf", &err), CPEX_E_TYPE);
    cpex_error_cleanup(&err);
    assert_int_equal(cpex_manager_define_hook(m, "my.doc", "json", &err), CPEX_OK);
    assert_int_equal(cpex_manager_define_hook(m, HOOK, "json", &err), CPEX_E_TYPE);
    cpex_error_cleanup(&err);
    assert_int_equal(cpex_manager_plugin_count(m), 2);
    tp_manager_free(m);
}

/* Invoke `hook` with `payload` (may be NULL) and expect the type-mismatch
 * deny, its reason holding `reason_part` when given. */
static void expect_mismatch(cpex_manager *m, const char *hook, const cpex_payload *payload,
                            const char *reason_part)
{
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    cpex_manager_invoke(m, hook, payload, NULL, NULL, &res);
    assert_false(res.continue_processing);
    assert_string_equal(res.violation->code, "payload_type_mismatch");
    if (reason_part)
        assert_contains(res.violation->reason, reason_part);
    cpex_pipeline_result_cleanup(&res);
}

static void test_payload_type_mismatch_at_invoke(void **state)
{
    (void)state;
    cpex_manager *m = tp_manager();
    tp_plugin *p = tp_new("cmf_plugin", &trace);
    tp_start(m, p);
    json_t *doc = json_object();
    cpex_payload pl = cpex_payload_json(doc);
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    cpex_context_table *ctx = cpex_context_table_new();
    cpex_manager_invoke(m, HOOK, &pl, NULL, ctx, &res);
    assert_false(res.continue_processing);
    assert_non_null(res.violation);
    assert_string_equal(res.violation->code, "payload_type_mismatch");
    assert_contains(res.violation->reason, "cmf");
    assert_int_equal(tp_calls(p), 0);
    assert_ptr_equal(res.context, ctx); /* the table is not lost */
    cpex_pipeline_result_cleanup(&res);
    /* No payload at all on a typed hook. */
    expect_mismatch(m, HOOK, NULL, NULL);
    /* A payload whose kind and name disagree. */
    cpex_cmf_message *msg = test_text_message("x");
    cpex_payload liar = cpex_payload_cmf(msg);
    liar.type_name.ptr = "json";
    liar.type_name.len = 4;
    expect_mismatch(m, HOOK, &liar, NULL);
    /* The hook's own type name on data of another kind: a JSON value named
       "cmf" (the name matches, the kind does not). */
    cpex_payload named_cmf = cpex_payload_json(doc);
    named_cmf.type_name.ptr = "cmf";
    named_cmf.type_name.len = 3;
    expect_mismatch(m, HOOK, &named_cmf, "disagree");
    assert_int_equal(tp_calls(p), 0);
    cpex_cmf_free(msg);
    json_decref(doc);
    tp_manager_free(m);
}

/* ------------------------------------------------------------------ */
/* Host-defined payload types                                          */
/* ------------------------------------------------------------------ */

typedef struct counter {
    int value;
} counter;

static atomic_int counter_clones, counter_frees;

static void *counter_clone(const void *data, void *user)
{
    (void)user;
    counter *c = malloc(sizeof *c);
    if (c) {
        *c = *(const counter *)data;
        atomic_fetch_add(&counter_clones, 1);
    }
    return c;
}

static void counter_free(void *data, void *user)
{
    (void)user;
    atomic_fetch_add(&counter_frees, 1);
    free(data);
}

/* Replace the counter with value + 1. */
static int32_t bump(tp_plugin *p, const cpex_call *call)
{
    const counter *in = call->payload ? call->payload->data : NULL;
    if (!in || call->payload->kind != CPEX_PAYLOAD_CUSTOM)
        return CPEX_ERROR;
    snprintf(p->seen_text, sizeof p->seen_text, "%d", in->value);
    counter *out = malloc(sizeof *out);
    out->value = in->value + 1;
    cpex_status st = cpex_call_set_payload_custom(call, out); /* takes `out` */
    p->rc_payload = (int32_t)st;
    return CPEX_ALLOW;
}

static void register_counter(cpex_manager *m)
{
    cpex_payload_type t;
    memset(&t, 0, sizeof t);
    t.struct_size = sizeof t;
    t.name = "counter";
    t.clone = counter_clone;
    t.free = counter_free;
    cpex_error err = CPEX_ERROR_INIT;
    assert_int_equal(cpex_manager_register_payload_type(m, &t, &err), CPEX_OK);
    assert_int_equal(cpex_manager_register_payload_type(m, &t, &err), CPEX_E_EXISTS);
    cpex_error_cleanup(&err);
    t.name = "cmf";
    assert_int_equal(cpex_manager_register_payload_type(m, &t, &err), CPEX_E_EXISTS);
    cpex_error_cleanup(&err);
    assert_int_equal(cpex_manager_define_hook(m, "host.count", "counter", &err), CPEX_OK);
    assert_int_equal(cpex_manager_define_hook(m, "host.other", "nope", &err), CPEX_E_NOT_FOUND);
    cpex_error_cleanup(&err);
}

/* A plugin on "host.count" that bumps the counter. */
static tp_plugin *new_bumper(const char *name, uint32_t mode)
{
    tp_plugin *p = tp_new_in(name, &trace, mode, TP_DEFAULT_PRIORITY);
    p->hooks[0] = "host.count";
    p->custom = bump;
    return p;
}

static void test_custom_payload_type(void **state)
{
    (void)state;
    atomic_store(&counter_clones, 0);
    atomic_store(&counter_frees, 0);
    cpex_manager *m = tp_manager();
    register_counter(m);
    tp_plugin *b1 = new_bumper("bump1", CPEX_MODE_SEQUENTIAL);
    b1->payload_type = "counter";
    tp_plugin *b2 = new_bumper("bump2", CPEX_MODE_TRANSFORM);
    b2->payload_type = "counter";
    tp_plugin *au = new_bumper("audit_bump", CPEX_MODE_AUDIT);       /* refused: audit */
    tp_plugin *co = new_bumper("conc_reader", CPEX_MODE_CONCURRENT); /* sees a clone */
    tp_reg(m, b1);
    tp_reg(m, b2);
    tp_reg(m, au);
    tp_reg(m, co);
    /* A cmf handler on the counter hook is refused. */
    tp_plugin *wrong = tp_new("wrong", &trace);
    wrong->hooks[0] = "host.count";
    wrong->payload_type = "cmf";
    expect_reg_status(m, wrong, CPEX_E_TYPE, NULL);
    tp_init(m);

    counter c = {10};
    cpex_payload pl = cpex_payload_custom("counter", &c);
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    cpex_manager_invoke(m, "host.count", &pl, NULL, NULL, &res);
    assert_allowed(&res);
    assert_int_equal(b1->rc_payload, CPEX_OK);
    assert_int_equal(b2->rc_payload, CPEX_OK);
    assert_string_equal(b1->seen_text, "10");
    assert_string_equal(b2->seen_text, "11");
    assert_string_equal(au->seen_text, "12");
    assert_string_equal(co->seen_text, "12");
    assert_int_equal(au->rc_payload, CPEX_E_STATE);
    assert_int_equal(co->rc_payload, CPEX_E_STATE);
    assert_record(&res, "audit_bump", "dropped_modification");
    assert_record(&res, "conc_reader", "dropped_modification");
    assert_true(res.payload_modified);
    assert_non_null(res.modified_payload);
    assert_int_equal(res.modified_payload->kind, CPEX_PAYLOAD_CUSTOM);
    assert_int_equal((int)res.modified_payload->type_name.len, 7);
    assert_memory_equal(res.modified_payload->type_name.ptr, "counter", 7);
    assert_int_equal(((const counter *)res.modified_payload->data)->value, 12);
    assert_int_equal(c.value, 10); /* caller's data untouched */
    assert_null(cpex_pipeline_result_cmf(&res, NULL));
    cpex_pipeline_result_cleanup(&res);

    /* The wrong payload type on the custom hook. */
    cpex_cmf_message *msg = test_text_message("hello");
    tp_invoke(m, "host.count", msg, NULL, NULL, &res);
    assert_false(res.continue_processing);
    assert_string_equal(res.violation->code, "payload_type_mismatch");
    assert_contains(res.violation->reason, "counter");
    cpex_pipeline_result_cleanup(&res);
    cpex_cmf_free(msg);
    /* An unregistered custom type. */
    cpex_payload alien = cpex_payload_custom("alien", &c);
    expect_mismatch(m, "host.count", &alien, NULL);
    assert_int_equal(tp_calls(b1), 1);

    tp_manager_free(m);
    /* Every clone and every plugin-made counter was freed exactly once:
     * 3 set by bump (2 accepted, 2 refused... all freed) + clones. */
    assert_int_equal(atomic_load(&counter_frees),
                     atomic_load(&counter_clones) + 4 /* b1, b2, au, co each made one */);
}

static void test_set_payload_custom_on_cmf_hook_refused(void **state)
{
    (void)state;
    cpex_manager *m = tp_manager();
    tp_plugin *p = tp_new("custom_on_cmf", &trace);
    p->custom = bump; /* returns ERROR: the payload is not custom */
    p->on_error = CPEX_ON_ERROR_IGNORE;
    tp_start(m, p);
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    tp_run(m, HOOK, &res);
    assert_allowed(&res);
    assert_record(&res, "custom_on_cmf", "error");
    cpex_pipeline_result_cleanup(&res);
    /* Not a call of this library. */
    counter *c = malloc(sizeof *c);
    assert_int_equal(cpex_call_set_payload_custom(NULL, c), CPEX_E_INVALID);
    free(c); /* refused without a call: ownership stays with the caller */
    tp_manager_free(m);
}

/* ------------------------------------------------------------------ */
/* Lifecycle                                                           */
/* ------------------------------------------------------------------ */

static void test_invoke_before_initialize_fails_closed(void **state)
{
    (void)state;
    cpex_manager *m = tp_manager();
    tp_plugin *f = tp_new("gate_fail", &trace);
    f->on_error = CPEX_ON_ERROR_FAIL;
    tp_reg(m, f);
    assert_false(cpex_manager_is_initialized(m));
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    tp_run(m, HOOK, &res);
    assert_denied(&res, "plugin_error", "gate_fail");
    assert_contains(res.violation->reason, "initialize");
    assert_int_equal(tp_calls(f), 0);
    cpex_pipeline_result_cleanup(&res);
    tp_manager_free(m);

    m = tp_manager();
    tp_plugin *g = tp_new("gate_ignore", &trace);
    g->on_error = CPEX_ON_ERROR_IGNORE;
    tp_plugin *a = tp_new_in("audit_ignore", &trace, CPEX_MODE_AUDIT, TP_DEFAULT_PRIORITY);
    a->on_error = CPEX_ON_ERROR_FAIL;
    tp_reg(m, g);
    tp_reg(m, a);
    tp_run(m, HOOK, &res);
    assert_allowed(&res);
    assert_record(&res, "gate_ignore", "not_initialized");
    assert_record(&res, "audit_ignore", "not_initialized");
    assert_int_equal(tp_calls(g), 0);
    assert_int_equal(tp_calls(a), 0);
    cpex_pipeline_result_cleanup(&res);
    /* After initialize they run. */
    tp_init(m);
    assert_true(cpex_manager_is_initialized(m));
    tp_run(m, HOOK, &res);
    assert_allowed(&res);
    assert_int_equal(res.error_count, 0);
    assert_int_equal(tp_calls(g), 1);
    tp_finish(m, &res);
}

static void test_initialize_failure(void **state)
{
    (void)state;
    cpex_manager *m = tp_manager();
    tp_plugin *good = tp_new("good", &trace);
    tp_plugin *bad = tp_new("bad_init", &trace);
    bad->init_rc = 1;
    bad->init_msg = "cannot reach policy server at 10.0.0.7";
    tp_plugin *bad2 = tp_new_in("bad_init2", &trace, CPEX_MODE_CONCURRENT, TP_DEFAULT_PRIORITY);
    bad2->init_rc = -5; /* no message */
    bad2->on_error = CPEX_ON_ERROR_IGNORE;
    tp_reg(m, good);
    tp_reg(m, bad);
    tp_reg(m, bad2);
    cpex_error err = CPEX_ERROR_INIT;
    assert_int_equal(cpex_manager_initialize(m, &err), CPEX_E_PLUGIN);
    assert_int_equal(err.count, 2); /* every failure reported */
    const char *msg = cpex_error_message(&err);
    assert_contains(msg, "bad_init");
    assert_contains(msg, "cannot reach policy server at 10.0.0.7");
    assert_contains(msg, "bad_init2");
    cpex_error_cleanup(&err);
    assert_false(cpex_manager_is_initialized(m));

    cpex_plugin_info info = CPEX_PLUGIN_INFO_INIT;
    assert_int_equal(cpex_manager_plugin_info(m, "bad_init", &info), CPEX_OK);
    assert_int_equal(info.state, CPEX_STATE_FAILED);
    assert_non_null(info.reason);
    assert_contains(info.reason, "cannot reach policy server");
    cpex_plugin_info_cleanup(&info);
    assert_int_equal(cpex_manager_plugin_info(m, "good", &info), CPEX_OK);
    assert_int_equal(info.state, CPEX_STATE_INITIALIZED);
    cpex_plugin_info_cleanup(&info);
    assert_int_equal(cpex_manager_plugin_count(m), 3); /* failed plugins stay visible */

    /* Invokes fail closed at the failed plugin. */
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    tp_run(m, HOOK, &res);
    assert_denied(&res, "plugin_error", "bad_init");
    assert_contains(res.violation->reason, "cannot reach policy server");
    assert_int_equal(tp_calls(bad), 0);
    assert_int_equal(tp_calls(good), 1);
    cpex_pipeline_result_cleanup(&res);

    /* Retrying initializes only what is not initialized. */
    bad->init_rc = 0;
    bad2->init_rc = 0;
    assert_int_equal(cpex_manager_initialize(m, &err), CPEX_OK);
    cpex_error_cleanup(&err);
    assert_int_equal(atomic_load(&good->init_calls), 1);
    assert_int_equal(atomic_load(&bad->init_calls), 2);
    assert_true(cpex_manager_is_initialized(m));
    tp_run(m, HOOK, &res);
    assert_allowed(&res);
    assert_int_equal(tp_calls(bad), 1);
    tp_finish(m, &res);
    assert_lifecycle(bad, 2, 1, 1);
}

static void test_failed_plugin_is_not_shut_down(void **state)
{
    (void)state;
    cpex_manager *m = tp_manager();
    tp_plugin *bad = tp_new("bad_init", &trace);
    bad->init_rc = 1;
    bad->init_msg = "nope";
    bad->on_error = CPEX_ON_ERROR_IGNORE;
    tp_reg(m, bad);
    cpex_error err = CPEX_ERROR_INIT;
    assert_int_equal(cpex_manager_initialize(m, &err), CPEX_E_PLUGIN);
    cpex_error_cleanup(&err);
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    tp_run(m, HOOK, &res);
    assert_allowed(&res);
    assert_record(&res, "bad_init", "not_initialized");
    assert_contains(tp_find_record(&res, "bad_init", "not_initialized")->message, "nope");
    tp_finish(m, &res);
    assert_lifecycle(bad, 1, 0, 1);
}

static void test_register_after_initialize(void **state)
{
    (void)state;
    cpex_manager *m = tp_manager();
    tp_init(m);
    tp_plugin *p = tp_new("late", &trace);
    tp_reg(m, p);
    assert_int_equal(atomic_load(&p->init_calls), 1);
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    tp_run(m, HOOK, &res);
    assert_allowed(&res);
    assert_int_equal(tp_calls(p), 1);
    cpex_pipeline_result_cleanup(&res);
    /* A late registration whose initialize fails is refused and destroyed
       (not shut down: it never initialized). */
    tp_plugin *q = tp_new("late_bad", &trace);
    q->hooks[0] = POST;
    q->init_rc = 3;
    q->init_msg = "late failure";
    expect_reg_status(m, q, CPEX_E_PLUGIN, "late failure");
    assert_int_equal(cpex_manager_plugin_count(m), 1);
    assert_false(cpex_manager_has_hooks_for(m, POST));
    assert_lifecycle(q, 1, 0, 1);
    tp_manager_free(m);
    assert_lifecycle(q, 1, 0, 1);
}

static void test_initialize_twice_once(void **state)
{
    (void)state;
    cpex_manager *m = tp_manager();
    tp_plugin *p = tp_new("once", &trace);
    tp_start(m, p);
    tp_init(m);
    assert_int_equal(atomic_load(&p->init_calls), 1);
    tp_manager_free(m);
}

static void test_shutdown_and_free_lifecycle(void **state)
{
    (void)state;
    atomic_store(&tp_order_counter, 0);
    cpex_manager *m = tp_manager();
    tp_plugin *a = tp_new("first", &trace);
    tp_plugin *b = tp_new_in("second", &trace, CPEX_MODE_DISABLED, TP_DEFAULT_PRIORITY);
    tp_plugin *c = tp_new_in("third", &trace, CPEX_MODE_FIRE_AND_FORGET, TP_DEFAULT_PRIORITY);
    tp_start(m, a, b, c);
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    tp_run(m, HOOK, &res);
    cpex_pipeline_result_cleanup(&res);
    cpex_manager_shutdown(m);
    cpex_manager_shutdown(m); /* idempotent */
    assert_false(cpex_manager_is_initialized(m));
    tp_plugin *all[] = {a, b, c};
    for (int i = 0; i < 3; i++)
        assert_lifecycle(all[i], 1, 1, 0);
    /* Reverse registration order. */
    assert_true(c->order_shutdown < b->order_shutdown);
    assert_true(b->order_shutdown < a->order_shutdown);
    cpex_plugin_info info = CPEX_PLUGIN_INFO_INIT;
    assert_int_equal(cpex_manager_plugin_info(m, "first", &info), CPEX_OK);
    assert_int_equal(info.state, CPEX_STATE_SHUT_DOWN);
    cpex_plugin_info_cleanup(&info);

    /* After shutdown, invokes fail closed and nothing is called. */
    int before = tp_calls(a);
    tp_run(m, HOOK, &res);
    assert_denied(&res, "plugin_error", "first");
    assert_int_equal(tp_calls(a), before);
    cpex_pipeline_result_cleanup(&res);
    /* And nothing can be initialized, registered or loaded again. */
    cpex_error err = CPEX_ERROR_INIT;
    assert_int_equal(cpex_manager_initialize(m, &err), CPEX_E_STATE);
    cpex_error_cleanup(&err);
    tp_plugin *d = tp_new("too_late", &trace);
    expect_reg_status(m, d, CPEX_E_STATE, NULL);

    tp_manager_free(m);
    for (int i = 0; i < 3; i++)
        assert_lifecycle(all[i], 1, 1, 1);
    assert_lifecycle(d, 0, 0, 1); /* refused after shutdown: destroyed, never initialized */
}

static void test_free_without_shutdown(void **state)
{
    (void)state;
    cpex_manager *m = tp_manager();
    tp_plugin *a = tp_new("a", &trace);
    tp_plugin *never = tp_new("never_initialized", &trace);
    never->hooks[0] = POST;
    tp_reg(m, a);
    tp_init(m);
    tp_reg(m, never); /* initialized on registration */
    tp_manager_free(m);
    assert_lifecycle(a, 1, 1, 1);
    assert_lifecycle(never, 1, 1, 1);

    /* Never initialized: destroyed, not shut down. */
    m = tp_manager();
    tp_plugin *b = tp_new("b", &trace);
    tp_reg(m, b);
    tp_manager_free(m);
    assert_lifecycle(b, 0, 0, 1);
    cpex_manager_free(NULL);
}

/* ------------------------------------------------------------------ */
/* Queries and unregister                                              */
/* ------------------------------------------------------------------ */

static void test_queries(void **state)
{
    (void)state;
    cpex_manager *m = tp_manager();
    tp_plugin *a = tp_new("alpha", &trace);
    a->priority = -5;
    a->on_error = CPEX_ON_ERROR_DISABLE;
    a->timeout = 1.5;
    a->caps[0] = "read_subject";
    a->caps[1] = "write_headers";
    a->hooks[0] = HOOK;
    a->hooks[1] = POST;
    a->reported_name = "alpha-impl";
    tp_plugin *b = tp_new_in("beta", &trace, CPEX_MODE_AUDIT, TP_DEFAULT_PRIORITY);
    tp_reg(m, a);
    tp_reg(m, b);
    assert_int_equal(cpex_manager_plugin_count(m), 2);
    char **names = cpex_manager_plugin_names(m);
    assert_non_null(names);
    assert_string_equal(names[0], "alpha");
    assert_string_equal(names[1], "beta");
    assert_null(names[2]);
    cpex_strv_free(names);
    assert_true(cpex_manager_has_hooks_for(m, HOOK));
    assert_true(cpex_manager_has_hooks_for(m, POST));
    assert_false(cpex_manager_has_hooks_for(m, "cmf.llm_input"));

    cpex_plugin_info info = CPEX_PLUGIN_INFO_INIT;
    assert_int_equal(cpex_manager_plugin_info(m, "alpha", &info), CPEX_OK);
    assert_string_equal(info.name, "alpha");
    assert_string_equal(info.kind, "test");
    assert_string_equal(info.reported_name, "alpha-impl");
    assert_string_equal(info.reported_version, "1.0");
    assert_int_equal(info.mode, CPEX_MODE_SEQUENTIAL);
    assert_int_equal(info.priority, -5);
    assert_int_equal(info.on_error, CPEX_ON_ERROR_DISABLE);
    assert_true(info.timeout == 1.5);
    assert_int_equal(info.state, CPEX_STATE_CREATED);
    assert_false(info.disabled);
    assert_null(info.reason);
    assert_string_equal(info.hooks[0], HOOK);
    assert_string_equal(info.hooks[1], POST);
    assert_null(info.hooks[2]);
    assert_string_equal(info.capabilities[0], "read_subject");
    assert_string_equal(info.capabilities[1], "write_headers");
    assert_null(info.capabilities[2]);
    cpex_plugin_info_cleanup(&info);
    assert_int_equal(cpex_manager_plugin_info(m, "gamma", &info), CPEX_E_NOT_FOUND);
    /* config: JSON null when none was given */
    json_t *cfg = cpex_manager_plugin_config(m, "alpha");
    assert_non_null(cfg);
    json_decref(cfg);
    assert_null(cpex_manager_plugin_config(m, "gamma"));
    tp_manager_free(m);
}

static void test_spec_config_copied(void **state)
{
    (void)state;
    cpex_manager *m = tp_manager();
    tp_plugin *p = tp_new("configured", &trace);
    cpex_plugin_spec spec;
    cpex_plugin_registration reg;
    tp_fill(p, &spec, &reg);
    json_t *cfg = json_pack("{s:i,s:[s]}", "limit", 5, "allow", "x");
    spec.config = cfg;
    cpex_error err = CPEX_ERROR_INIT;
    assert_int_equal(cpex_manager_register(m, &spec, &reg, &err), CPEX_OK);
    json_object_set_new(cfg, "limit", json_integer(99)); /* copied: no effect */
    json_t *got = cpex_manager_plugin_config(m, "configured");
    assert_non_null(got);
    assert_int_equal(json_integer_value(json_object_get(got, "limit")), 5);
    json_decref(got);
    json_decref(cfg);
    tp_manager_free(m);
}

static void test_unregister(void **state)
{
    (void)state;
    cpex_manager *m = tp_manager();
    tp_plugin *a = tp_new("keep", &trace);
    tp_plugin *b = tp_on_hooks(tp_new("remove_me", &trace), HOOK, POST);
    tp_start(m, a, b);
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    tp_run(m, HOOK, &res);
    cpex_pipeline_result_cleanup(&res);
    assert_int_equal(tp_calls(b), 1);

    cpex_error err = CPEX_ERROR_INIT;
    assert_int_equal(cpex_manager_unregister(m, "remove_me", &err), CPEX_OK);
    assert_lifecycle(b, 1, 1, 1);
    assert_int_equal(cpex_manager_plugin_count(m), 1);
    char **names = cpex_manager_plugin_names(m);
    assert_string_equal(names[0], "keep");
    assert_null(names[1]);
    cpex_strv_free(names);
    assert_false(cpex_manager_has_hooks_for(m, POST));
    cpex_plugin_info info = CPEX_PLUGIN_INFO_INIT;
    assert_int_equal(cpex_manager_plugin_info(m, "remove_me", &info), CPEX_E_NOT_FOUND);
    tp_run(m, HOOK, &res);
    assert_allowed(&res);
    cpex_pipeline_result_cleanup(&res);
    tp_run(m, POST, &res);
    cpex_pipeline_result_cleanup(&res);
    assert_int_equal(tp_calls(b), 1);
    assert_int_equal(tp_calls(a), 2);

    assert_int_equal(cpex_manager_unregister(m, "remove_me", &err), CPEX_E_NOT_FOUND);
    assert_contains(cpex_error_message(&err), "remove_me");
    cpex_error_cleanup(&err);

    /* The name is free again. */
    tp_plugin *b2 = tp_new("remove_me", &trace);
    tp_reg(m, b2);
    assert_int_equal(atomic_load(&b2->init_calls), 1);
    tp_manager_free(m);
    assert_lifecycle(b, 1, 1, 1);
    assert_int_equal(atomic_load(&a->destroy_calls), 1);
    assert_int_equal(atomic_load(&b2->destroy_calls), 1);
}

static void test_unregister_with_background_work(void **state)
{
    (void)state;
    /* A fire-and-forget handler still running: the plugin is shut down
     * and destroyed once it finishes, not under it. */
    cpex_manager *m = tp_manager();
    tp_plugin *f = tp_new_in("bg", &trace, CPEX_MODE_FIRE_AND_FORGET, TP_DEFAULT_PRIORITY);
    f->sleep_ms = 200;
    tp_start(m, f);
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    tp_run(m, HOOK, &res);
    cpex_pipeline_result_cleanup(&res);
    tp_sleep_ms(20); /* let it start */
    cpex_error err = CPEX_ERROR_INIT;
    assert_int_equal(cpex_manager_unregister(m, "bg", &err), CPEX_OK);
    assert_int_equal(cpex_manager_plugin_count(m), 0);
    assert_int_equal(cpex_manager_wait_background(m, 5), CPEX_OK);
    /* Give the worker a moment to drop its reference after signalling. */
    for (int i = 0; i < 100 && atomic_load(&f->destroy_calls) == 0; i++)
        tp_sleep_ms(5);
    assert_lifecycle(f, 1, 1, 1);
    tp_manager_free(m);
    assert_lifecycle(f, 1, 1, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TP_TEST(test_registration_validation),
        TP_TEST(test_spec_validation),
        TP_TEST(test_spec_hooks_filter_handlers),
        TP_TEST(test_duplicate_name),
        TP_TEST(test_payload_type_mismatch_at_registration),
        TP_TEST(test_payload_type_mismatch_at_invoke),
        TP_TEST(test_custom_payload_type),
        TP_TEST(test_set_payload_custom_on_cmf_hook_refused),
        TP_TEST(test_invoke_before_initialize_fails_closed),
        TP_TEST(test_initialize_failure),
        TP_TEST(test_failed_plugin_is_not_shut_down),
        TP_TEST(test_register_after_initialize),
        TP_TEST(test_initialize_twice_once),
        TP_TEST(test_shutdown_and_free_lifecycle),
        TP_TEST(test_free_without_shutdown),
        TP_TEST(test_queries),
        TP_TEST(test_spec_config_copied),
        TP_TEST(test_unregister),
        TP_TEST(test_unregister_with_background_work),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
