/*
 * test_context.c — per-plugin local state threaded from a pre hook to a
 * post hook through the context table, global state shared along one
 * invoke, and what is (not) persisted in each mode.
 */
#include "test_support.h"
#include "plugins.h"

#define PRE "cmf.tool_pre_invoke"
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

static bool is_hook(const cpex_call *call, const char *hook)
{
    return call->hook.len == strlen(hook) && memcmp(call->hook.ptr, hook, call->hook.len) == 0;
}

/* Pre: store local "token" = "<name>-secret". Post: read it. */
static int32_t keeper(tp_plugin *p, const cpex_call *call)
{
    const cpex_host_api *h = tp_host();
    if (is_hook(call, PRE)) {
        char v[128];
        snprintf(v, sizeof v, "%s-secret", p->name);
        p->rc_ctx_local =
            h->ctx_set(call, CPEX_CTX_LOCAL, "token", h->json_new_string(v, strlen(v)));
    } else {
        pthread_mutex_lock(&p->lock);
        tp_dump_json(p->seen_local, sizeof p->seen_local,
                     h->ctx_get(call, CPEX_CTX_LOCAL, "token"));
        pthread_mutex_unlock(&p->lock);
    }
    return CPEX_ALLOW;
}

static void invoke(cpex_manager *m, const char *hook, cpex_context_table *ctx,
                   cpex_pipeline_result *res)
{
    cpex_cmf_message *msg = tp_msg("hello");
    tp_invoke(m, hook, msg, NULL, ctx, res);
    cpex_cmf_free(msg);
}

static void test_local_state_threads_pre_to_post(void **state)
{
    (void)state;
    cpex_manager *m = tp_manager();
    tp_plugin *k = tp_new("keeper", &trace);
    k->hooks[0] = PRE;
    k->hooks[1] = POST;
    k->custom = keeper;
    tp_plugin *other = tp_new("other", &trace); /* reads "token" in its own local state */
    other->priority = 200;
    other->hooks[0] = PRE;
    other->hooks[1] = POST;
    other->read_local_key = "token";
    tp_reg(m, k);
    tp_reg(m, other);
    tp_init(m);

    cpex_pipeline_result pre;
    invoke(m, PRE, NULL, &pre);
    assert_allowed(&pre);
    assert_int_equal(k->rc_ctx_local, CPEX_HOST_OK);
    assert_string_equal(other->seen_local, "(null)"); /* not another plugin's local state */
    assert_non_null(pre.context);
    /* The host can read the table. */
    const json_t *tok = cpex_context_table_local(pre.context, "keeper", "token");
    assert_non_null(tok);
    assert_string_equal(json_string_value(tok), "keeper-secret");
    assert_null(cpex_context_table_local(pre.context, "other", "token"));
    assert_null(cpex_context_table_local(pre.context, "nobody", "token"));
    assert_null(cpex_context_table_global(pre.context, "token"));

    cpex_context_table *ctx = cpex_pipeline_result_take_context(&pre);
    assert_non_null(ctx);
    assert_null(pre.context);
    cpex_pipeline_result_cleanup(&pre);

    cpex_pipeline_result post;
    invoke(m, POST, ctx, &post); /* consumes ctx */
    assert_allowed(&post);
    assert_string_equal(k->seen_local, "\"keeper-secret\"");
    assert_string_equal(other->seen_local, "(null)");
    /* The table comes back again for a further invoke. */
    assert_non_null(post.context);
    assert_string_equal(
        json_string_value(cpex_context_table_local(post.context, "keeper", "token")),
        "keeper-secret");
    cpex_pipeline_result_cleanup(&post);

    /* Without threading the table, post sees nothing. */
    invoke(m, POST, NULL, &post);
    assert_string_equal(k->seen_local, "(null)");
    cpex_pipeline_result_cleanup(&post);
    tp_manager_free(m);
}

static void test_local_state_is_per_request(void **state)
{
    (void)state;
    /* Two requests interleaved, each with its own table. */
    cpex_manager *m = tp_manager();
    tp_plugin *k = tp_new("keeper", &trace);
    k->hooks[0] = PRE;
    k->hooks[1] = POST;
    k->custom = keeper;
    tp_reg(m, k);
    tp_init(m);
    cpex_pipeline_result a, b;
    invoke(m, PRE, NULL, &a);
    cpex_context_table *ta = cpex_pipeline_result_take_context(&a);
    cpex_pipeline_result_cleanup(&a);
    /* Request b passes an empty table of its own. */
    invoke(m, POST, cpex_context_table_new(), &b);
    assert_string_equal(k->seen_local, "(null)");
    cpex_pipeline_result_cleanup(&b);
    invoke(m, POST, ta, &a);
    assert_string_equal(k->seen_local, "\"keeper-secret\"");
    cpex_pipeline_result_cleanup(&a);
    tp_manager_free(m);
}

static void test_same_name_other_manager_does_not_see_it(void **state)
{
    (void)state;
    /* Local state is keyed by the registration: a re-registered plugin of
     * the same name starts fresh. */
    cpex_manager *m = tp_manager();
    tp_plugin *k = tp_new("keeper", &trace);
    k->hooks[0] = PRE;
    k->hooks[1] = POST;
    k->custom = keeper;
    tp_reg(m, k);
    tp_init(m);
    cpex_pipeline_result r;
    invoke(m, PRE, NULL, &r);
    cpex_context_table *t = cpex_pipeline_result_take_context(&r);
    cpex_pipeline_result_cleanup(&r);
    cpex_error err = CPEX_ERROR_INIT;
    assert_int_equal(cpex_manager_unregister(m, "keeper", &err), CPEX_OK);
    tp_plugin *k2 = tp_new("keeper", &trace);
    k2->hooks[0] = PRE;
    k2->hooks[1] = POST;
    k2->custom = keeper;
    tp_reg(m, k2);
    invoke(m, POST, t, &r);
    assert_allowed(&r);
    assert_string_equal(k2->seen_local, "(null)");
    cpex_pipeline_result_cleanup(&r);
    cpex_error_cleanup(&err);
    tp_manager_free(m);
}

static void test_global_state_along_one_invoke(void **state)
{
    (void)state;
    cpex_manager *m = tp_manager();
    tp_plugin *w = tp_new("writer", &trace);
    w->priority = 1;
    w->ctx_global_key = "risk";
    w->ctx_global_value = "{\"score\":7}";
    tp_plugin *r1 = tp_new("reader_seq", &trace);
    r1->priority = 2;
    r1->read_global_key = "risk";
    tp_plugin *before = tp_new("before", &trace); /* runs before the writer */
    before->priority = 0;
    before->read_global_key = "risk";
    tp_plugin *xf = tp_new("reader_xf", &trace);
    xf->mode = CPEX_MODE_TRANSFORM;
    xf->read_global_key = "risk";
    tp_plugin *au = tp_new("reader_audit", &trace);
    au->mode = CPEX_MODE_AUDIT;
    au->read_global_key = "risk";
    tp_plugin *co = tp_new("reader_conc", &trace);
    co->mode = CPEX_MODE_CONCURRENT;
    co->read_global_key = "risk";
    tp_plugin *ff = tp_new("reader_faf", &trace);
    ff->mode = CPEX_MODE_FIRE_AND_FORGET;
    ff->read_global_key = "risk";
    tp_plugin *all[] = {w, r1, before, xf, au, co, ff};
    for (int i = 0; i < 7; i++)
        tp_reg(m, all[i]);
    tp_init(m);
    cpex_pipeline_result res;
    invoke(m, PRE, NULL, &res);
    assert_allowed(&res);
    assert_int_equal(cpex_manager_wait_background(m, 5), CPEX_OK);
    assert_int_equal(w->rc_ctx_global, CPEX_HOST_OK);
    assert_string_equal(before->seen_global, "(null)");
    assert_string_equal(r1->seen_global, "{\"score\":7}");
    assert_string_equal(xf->seen_global, "{\"score\":7}");
    assert_string_equal(au->seen_global, "{\"score\":7}");
    assert_string_equal(co->seen_global, "{\"score\":7}");
    assert_string_equal(ff->seen_global, "{\"score\":7}");
    assert_non_null(res.context);
    const json_t *g = cpex_context_table_global(res.context, "risk");
    assert_non_null(g);
    assert_int_equal(json_integer_value(json_object_get(g, "score")), 7);
    /* Threaded into the next invoke, global state is there from the start. */
    cpex_context_table *t = cpex_pipeline_result_take_context(&res);
    cpex_pipeline_result_cleanup(&res);
    before->seen_global[0] = '\0';
    invoke(m, POST, t, &res); /* no plugin on POST: the table comes back as is */
    assert_ptr_equal(res.context, t);
    t = cpex_pipeline_result_take_context(&res);
    cpex_pipeline_result_cleanup(&res);
    invoke(m, PRE, t, &res);
    assert_string_equal(before->seen_global, "{\"score\":7}");
    cpex_pipeline_result_cleanup(&res);
    assert_int_equal(cpex_manager_wait_background(m, 5), CPEX_OK);
    tp_manager_free(m);
}

static void test_global_delete_and_overwrite(void **state)
{
    (void)state;
    cpex_manager *m = tp_manager();
    tp_plugin *a = tp_new("a", &trace);
    a->priority = 1;
    a->ctx_global_key = "k";
    a->ctx_global_value = "1";
    tp_plugin *b = tp_new("b", &trace);
    b->priority = 2;
    b->ctx_global_key = "k";
    b->ctx_global_value = "2";
    tp_plugin *c = tp_new("c", &trace);
    c->priority = 3;
    c->read_global_key = "k";
    c->ctx_local_key = "gone";
    c->ctx_local_value = NULL; /* NULL value deletes */
    tp_reg(m, a);
    tp_reg(m, b);
    tp_reg(m, c);
    tp_init(m);
    cpex_pipeline_result res;
    invoke(m, PRE, NULL, &res);
    assert_string_equal(c->seen_global, "2");
    assert_int_equal(c->rc_ctx_local, CPEX_HOST_OK);
    assert_int_equal(json_integer_value(cpex_context_table_global(res.context, "k")), 2);
    cpex_pipeline_result_cleanup(&res);
    tp_manager_free(m);
}

/* Writes in a read-only mode live until the call ends, then vanish. */
static int32_t write_then_read(tp_plugin *p, const cpex_call *call)
{
    const cpex_host_api *h = tp_host();
    p->rc_ctx_local = h->ctx_set(call, CPEX_CTX_LOCAL, "mine", h->json_new_integer(1));
    p->rc_ctx_global = h->ctx_set(call, CPEX_CTX_GLOBAL, "shared", h->json_new_integer(2));
    const cpex_json *l = h->ctx_get(call, CPEX_CTX_LOCAL, "mine");
    const cpex_json *g = h->ctx_get(call, CPEX_CTX_GLOBAL, "shared");
    pthread_mutex_lock(&p->lock);
    tp_dump_json(p->seen_local, sizeof p->seen_local, l);
    tp_dump_json(p->seen_global, sizeof p->seen_global, g);
    pthread_mutex_unlock(&p->lock);
    return CPEX_ALLOW;
}

static void readonly_mode_case(uint32_t mode)
{
    cpex_manager *m = tp_manager();
    tp_plugin *p = tp_new("ro", &trace);
    p->mode = mode;
    p->hooks[0] = PRE;
    p->hooks[1] = POST;
    p->custom = write_then_read;
    tp_plugin *later = tp_new("later_faf", &trace);
    later->mode = CPEX_MODE_FIRE_AND_FORGET;
    later->priority = 1000;
    later->read_global_key = "shared";
    tp_reg(m, p);
    tp_reg(m, later);
    tp_init(m);
    cpex_pipeline_result res;
    invoke(m, PRE, NULL, &res);
    assert_allowed(&res);
    assert_int_equal(cpex_manager_wait_background(m, 5), CPEX_OK);
    /* Readable during the call ... */
    assert_string_equal(p->seen_local, "1");
    assert_string_equal(p->seen_global, "2");
    /* ... never persisted. */
    assert_null(cpex_context_table_local(res.context, "ro", "mine"));
    assert_null(cpex_context_table_global(res.context, "shared"));
    if (mode != CPEX_MODE_FIRE_AND_FORGET)
        assert_string_equal(later->seen_global, "(null)");
    /* And not visible on the next hook either. */
    cpex_context_table *t = cpex_pipeline_result_take_context(&res);
    cpex_pipeline_result_cleanup(&res);
    p->custom = NULL;
    p->read_local_key = "mine";
    p->read_global_key = "shared";
    invoke(m, POST, t, &res);
    assert_int_equal(cpex_manager_wait_background(m, 5), CPEX_OK);
    assert_string_equal(p->seen_local, "(null)");
    assert_string_equal(p->seen_global, "(null)");
    cpex_pipeline_result_cleanup(&res);
    tp_manager_free(m);
}

static void test_audit_context_writes_not_persisted(void **state)
{
    (void)state;
    readonly_mode_case(CPEX_MODE_AUDIT);
}

static void test_concurrent_context_writes_not_persisted(void **state)
{
    (void)state;
    readonly_mode_case(CPEX_MODE_CONCURRENT);
}

static void test_faf_context_writes_not_persisted(void **state)
{
    (void)state;
    readonly_mode_case(CPEX_MODE_FIRE_AND_FORGET);
}

static void test_transform_context_persists(void **state)
{
    (void)state;
    cpex_manager *m = tp_manager();
    tp_plugin *p = tp_new("xf_keeper", &trace);
    p->mode = CPEX_MODE_TRANSFORM;
    p->hooks[0] = PRE;
    p->hooks[1] = POST;
    p->custom = keeper;
    tp_reg(m, p);
    tp_init(m);
    cpex_pipeline_result res;
    invoke(m, PRE, NULL, &res);
    cpex_context_table *t = cpex_pipeline_result_take_context(&res);
    cpex_pipeline_result_cleanup(&res);
    invoke(m, POST, t, &res);
    assert_string_equal(p->seen_local, "\"xf_keeper-secret\"");
    cpex_pipeline_result_cleanup(&res);
    tp_manager_free(m);
}

static void test_context_of_halting_plugin_kept(void **state)
{
    (void)state;
    /* DESIGN: the context of a plugin that halts is kept. */
    cpex_manager *m = tp_manager();
    tp_plugin *p = tp_new("halter", &trace);
    p->ctx_local_key = "why";
    p->ctx_local_value = "\"blocked\"";
    p->ctx_global_key = "halted_by";
    p->ctx_global_value = "\"halter\"";
    p->decision = CPEX_DENY;
    tp_reg(m, p);
    tp_init(m);
    cpex_pipeline_result res;
    invoke(m, PRE, NULL, &res);
    assert_denied(&res, "plugin_deny", "halter");
    assert_non_null(res.context);
    assert_string_equal(json_string_value(cpex_context_table_local(res.context, "halter", "why")),
                        "blocked");
    assert_string_equal(json_string_value(cpex_context_table_global(res.context, "halted_by")),
                        "halter");
    cpex_pipeline_result_cleanup(&res);

    /* Also when it halts by failing. */
    p->decision = CPEX_ERROR;
    invoke(m, PRE, NULL, &res);
    assert_denied(&res, "plugin_error", "halter");
    assert_non_null(res.context);
    assert_non_null(cpex_context_table_local(res.context, "halter", "why"));
    cpex_pipeline_result_cleanup(&res);
    tp_manager_free(m);
}

static void test_context_passed_in_comes_back_unchanged(void **state)
{
    (void)state;
    cpex_manager *m = tp_manager();
    tp_plugin *p = tp_new("quiet", &trace);
    tp_reg(m, p);
    tp_init(m);
    cpex_context_table *t = cpex_context_table_new();
    cpex_pipeline_result res;
    invoke(m, PRE, t, &res);
    assert_allowed(&res);
    assert_ptr_equal(res.context, t);
    cpex_pipeline_result_cleanup(&res); /* frees t */

    /* No table passed, no state stored: none comes back. */
    invoke(m, PRE, NULL, &res);
    assert_null(res.context);
    cpex_pipeline_result_cleanup(&res);

    /* A denied invoke returns the table too. */
    p->decision = CPEX_DENY;
    t = cpex_context_table_new();
    invoke(m, PRE, t, &res);
    assert_false(res.continue_processing);
    assert_ptr_equal(res.context, t);
    cpex_pipeline_result_cleanup(&res);
    tp_manager_free(m);
}

static void test_ctx_bad_arguments(void **state)
{
    (void)state;
    const cpex_host_api *h = tp_host();
    /* Outside a call, slots refuse without crashing. */
    assert_null(h->ctx_get(NULL, CPEX_CTX_LOCAL, "k"));
    assert_int_equal(h->ctx_set(NULL, CPEX_CTX_LOCAL, "k", h->json_new_integer(1)),
                     CPEX_HOST_EINVAL);
    cpex_call fake;
    memset(&fake, 0, sizeof fake);
    static _Alignas(16) unsigned char zeros[4096]; /* a block that is not a call state */
    fake.host_private = zeros;
    assert_int_equal(h->ctx_set(&fake, CPEX_CTX_GLOBAL, "k", h->json_new_integer(1)),
                     CPEX_HOST_EINVAL);
    assert_null(cpex_context_table_local(NULL, "p", "k"));
    assert_null(cpex_context_table_global(NULL, "k"));
    cpex_context_table_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_local_state_threads_pre_to_post, setup, teardown),
        cmocka_unit_test_setup_teardown(test_local_state_is_per_request, setup, teardown),
        cmocka_unit_test_setup_teardown(test_same_name_other_manager_does_not_see_it, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_global_state_along_one_invoke, setup, teardown),
        cmocka_unit_test_setup_teardown(test_global_delete_and_overwrite, setup, teardown),
        cmocka_unit_test_setup_teardown(test_audit_context_writes_not_persisted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_context_writes_not_persisted, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_faf_context_writes_not_persisted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_transform_context_persists, setup, teardown),
        cmocka_unit_test_setup_teardown(test_context_of_halting_plugin_kept, setup, teardown),
        cmocka_unit_test_setup_teardown(test_context_passed_in_comes_back_unchanged, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_ctx_bad_arguments, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
