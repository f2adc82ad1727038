/*
 * test_context.c — per-plugin local state threaded from a pre hook to a
 * post hook through the context table, global state shared along one
 * invoke, and what is (not) persisted in each mode.
 */
#include "test_support.h"
#include "plugins.h"

#define PRE "cmf.tool_pre_invoke"
#define POST "cmf.tool_post_invoke"

TP_FIXTURE;

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

/* A plugin on PRE and POST that keeps its local "token" from one to the other. */
static tp_plugin *new_keeper(const char *name, uint32_t mode)
{
    tp_plugin *k = tp_on_hooks(tp_new_in(name, &trace, mode, TP_DEFAULT_PRIORITY), PRE, POST);
    k->custom = keeper;
    return k;
}

static void invoke(cpex_manager *m, const char *hook, cpex_context_table *ctx,
                   cpex_pipeline_result *res)
{
    tp_invoke_text(m, hook, "hello", NULL, ctx, res);
}

/* Invoke `hook` with `ctx` (consumed) and return the context table that comes back. */
static cpex_context_table *invoke_for_context(cpex_manager *m, const char *hook,
                                              cpex_context_table *ctx)
{
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    invoke(m, hook, ctx, &res);
    cpex_context_table *t = cpex_pipeline_result_take_context(&res);
    cpex_pipeline_result_cleanup(&res);
    return t;
}

static void test_local_state_threads_pre_to_post(void **state)
{
    (void)state;
    cpex_manager *m = tp_manager();
    tp_plugin *k = new_keeper("keeper", CPEX_MODE_SEQUENTIAL);
    tp_plugin *other = tp_new_in("other", &trace, CPEX_MODE_SEQUENTIAL, 200);
    tp_on_hooks(other, PRE, POST);
    other->read_local_key = "token"; /* reads "token" in its own local state */
    tp_start(m, k, other);

    cpex_pipeline_result pre = CPEX_PIPELINE_RESULT_INIT;
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

    cpex_pipeline_result post = CPEX_PIPELINE_RESULT_INIT;
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
    tp_finish(m, &post);
}

static void test_local_state_is_per_request(void **state)
{
    (void)state;
    /* Two requests interleaved, each with its own table. */
    cpex_manager *m = tp_manager();
    tp_plugin *k = new_keeper("keeper", CPEX_MODE_SEQUENTIAL);
    tp_start(m, k);
    cpex_pipeline_result a = CPEX_PIPELINE_RESULT_INIT, b = CPEX_PIPELINE_RESULT_INIT;
    cpex_context_table *ta = invoke_for_context(m, PRE, NULL);
    /* Request b passes an empty table of its own. */
    invoke(m, POST, cpex_context_table_new(), &b);
    assert_string_equal(k->seen_local, "(null)");
    cpex_pipeline_result_cleanup(&b);
    invoke(m, POST, ta, &a);
    assert_string_equal(k->seen_local, "\"keeper-secret\"");
    tp_finish(m, &a);
}

static void test_same_name_other_manager_does_not_see_it(void **state)
{
    (void)state;
    /* Local state is keyed by the registration: a re-registered plugin of
     * the same name starts fresh. */
    cpex_manager *m = tp_manager();
    tp_start(m, new_keeper("keeper", CPEX_MODE_SEQUENTIAL));
    cpex_context_table *t = invoke_for_context(m, PRE, NULL);
    cpex_error err = CPEX_ERROR_INIT;
    assert_int_equal(cpex_manager_unregister(m, "keeper", &err), CPEX_OK);
    tp_plugin *k2 = new_keeper("keeper", CPEX_MODE_SEQUENTIAL);
    tp_reg(m, k2);
    cpex_pipeline_result r = CPEX_PIPELINE_RESULT_INIT;
    invoke(m, POST, t, &r);
    assert_allowed(&r);
    assert_string_equal(k2->seen_local, "(null)");
    cpex_error_cleanup(&err);
    tp_finish(m, &r);
}

/* A sequential plugin that sets global `key` to the JSON text `value`. */
static tp_plugin *new_global_writer(const char *name, int32_t priority, const char *key,
                                    const char *value)
{
    tp_plugin *p = tp_new_in(name, &trace, CPEX_MODE_SEQUENTIAL, priority);
    p->ctx_global_key = key;
    p->ctx_global_value = value;
    return p;
}

/* A plugin that reads global `key` into seen_global. */
static tp_plugin *new_global_reader(const char *name, uint32_t mode, int32_t priority,
                                    const char *key)
{
    tp_plugin *p = tp_new_in(name, &trace, mode, priority);
    p->read_global_key = key;
    return p;
}

static void test_global_state_along_one_invoke(void **state)
{
    (void)state;
    cpex_manager *m = tp_manager();
    tp_plugin *w = new_global_writer("writer", 1, "risk", "{\"score\":7}");
    tp_plugin *r1 = new_global_reader("reader_seq", CPEX_MODE_SEQUENTIAL, 2, "risk");
    /* runs before the writer */
    tp_plugin *before = new_global_reader("before", CPEX_MODE_SEQUENTIAL, 0, "risk");
    tp_plugin *xf =
        new_global_reader("reader_xf", CPEX_MODE_TRANSFORM, TP_DEFAULT_PRIORITY, "risk");
    tp_plugin *au = new_global_reader("reader_audit", CPEX_MODE_AUDIT, TP_DEFAULT_PRIORITY, "risk");
    tp_plugin *co =
        new_global_reader("reader_conc", CPEX_MODE_CONCURRENT, TP_DEFAULT_PRIORITY, "risk");
    tp_plugin *ff =
        new_global_reader("reader_faf", CPEX_MODE_FIRE_AND_FORGET, TP_DEFAULT_PRIORITY, "risk");
    tp_start(m, w, r1, before, xf, au, co, ff);
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
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
    assert_int_equal(cpex_manager_wait_background(m, 5), CPEX_OK);
    tp_finish(m, &res);
}

static void test_global_delete_and_overwrite(void **state)
{
    (void)state;
    cpex_manager *m = tp_manager();
    tp_plugin *a = new_global_writer("a", 1, "k", "1");
    tp_plugin *b = new_global_writer("b", 2, "k", "2");
    tp_plugin *c = new_global_reader("c", CPEX_MODE_SEQUENTIAL, 3, "k");
    c->ctx_local_key = "gone";
    c->ctx_local_value = NULL; /* NULL value deletes */
    tp_start(m, a, b, c);
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    invoke(m, PRE, NULL, &res);
    assert_string_equal(c->seen_global, "2");
    assert_int_equal(c->rc_ctx_local, CPEX_HOST_OK);
    assert_int_equal(json_integer_value(cpex_context_table_global(res.context, "k")), 2);
    tp_finish(m, &res);
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

/* *state: the (read-only) mode of the writing plugin. */
static void test_context_writes_not_persisted(void **state)
{
    const uint32_t mode = *(const uint32_t *)*state;
    cpex_manager *m = tp_manager();
    tp_plugin *p = tp_on_hooks(tp_new_in("ro", &trace, mode, TP_DEFAULT_PRIORITY), PRE, POST);
    p->custom = write_then_read;
    tp_plugin *later = new_global_reader("later_faf", CPEX_MODE_FIRE_AND_FORGET, 1000, "shared");
    tp_start(m, p, later);
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
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
    tp_finish(m, &res);
}

static void test_transform_context_persists(void **state)
{
    (void)state;
    cpex_manager *m = tp_manager();
    tp_plugin *p = new_keeper("xf_keeper", CPEX_MODE_TRANSFORM);
    tp_start(m, p);
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    invoke(m, POST, invoke_for_context(m, PRE, NULL), &res);
    assert_string_equal(p->seen_local, "\"xf_keeper-secret\"");
    tp_finish(m, &res);
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
    tp_start(m, p);
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
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
    tp_finish(m, &res);
}

static void test_context_passed_in_comes_back_unchanged(void **state)
{
    (void)state;
    cpex_manager *m = tp_manager();
    tp_plugin *p = tp_new("quiet", &trace);
    tp_start(m, p);
    cpex_context_table *t = cpex_context_table_new();
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
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
    tp_finish(m, &res);
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
        TP_TEST(test_local_state_threads_pre_to_post),
        TP_TEST(test_local_state_is_per_request),
        TP_TEST(test_same_name_other_manager_does_not_see_it),
        TP_TEST(test_global_state_along_one_invoke),
        TP_TEST(test_global_delete_and_overwrite),
        TP_CASE("test_audit_context_writes_not_persisted", test_context_writes_not_persisted,
                &(const uint32_t){CPEX_MODE_AUDIT}),
        TP_CASE("test_concurrent_context_writes_not_persisted", test_context_writes_not_persisted,
                &(const uint32_t){CPEX_MODE_CONCURRENT}),
        TP_CASE("test_faf_context_writes_not_persisted", test_context_writes_not_persisted,
                &(const uint32_t){CPEX_MODE_FIRE_AND_FORGET}),
        TP_TEST(test_transform_context_persists),
        TP_TEST(test_context_of_halting_plugin_kept),
        TP_TEST(test_context_passed_in_comes_back_unchanged),
        TP_TEST(test_ctx_bad_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
