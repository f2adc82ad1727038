/*
 * test_threads.c — one manager, many threads: concurrent invokes with
 * every phase, and registration changes while invokes run. Meant to run
 * under ThreadSanitizer as well as ASan/UBSan.
 */
#include "test_support.h"
#include "plugins.h"

#define HOOK "cmf.tool_pre_invoke"
#define THREADS 4

#ifndef TP_INVOKES
#define TP_INVOKES 250
#endif

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

/* Deny messages whose text starts with "deny". */
static int32_t deny_some(tp_plugin *p, const cpex_call *call)
{
    (void)p;
    const cpex_cmf_message *m = call->payload->data;
    if (strncmp(tp_msg_text(m), "deny", 4) == 0) {
        tp_host()->deny(call, "deny_word", "text starts with deny", NULL, NULL);
        return CPEX_DENY;
    }
    return tp_append_to_payload(call, "+s") == CPEX_HOST_OK ? CPEX_ALLOW : CPEX_ERROR;
}

/* Audit and background: count calls whose payload was already modified
 * (text ends with "+s"); anything else is counted as a bad view. */
static atomic_int bad_views;

static int32_t check_view(tp_plugin *p, const cpex_call *call)
{
    (void)p;
    const cpex_cmf_message *m = call->payload->data;
    const char *t = tp_msg_text(m);
    size_t n = strlen(t);
    if (n < 2 || strcmp(t + n - 2, "+s") != 0)
        atomic_fetch_add(&bad_views, 1);
    /* Per-invoke context in a concurrent handler: reads are private. */
    const cpex_host_api *h = tp_host();
    h->ctx_set(call, CPEX_CTX_LOCAL, "scratch", h->json_new_integer(1));
    return CPEX_ALLOW;
}

typedef struct worker_arg {
    cpex_manager *m;
    int id;
    int allowed, denied, wrong;
} worker_arg;

static void *invoker(void *arg)
{
    worker_arg *w = arg;
    for (int i = 0; i < TP_INVOKES; i++) {
        char text[64];
        bool deny = i % 10 == 3;
        snprintf(text, sizeof text, "%s-%d-%d", deny ? "deny" : "msg", w->id, i);
        cpex_cmf_message *msg = tp_msg(text);
        cpex_extensions *ext = cpex_extensions_new();
        cpex_extensions_set(ext, CPEX_EXT_REQUEST_ID, text);
        cpex_pipeline_result res;
        tp_invoke(w->m, HOOK, msg, ext, NULL, &res);
        char expect[80];
        snprintf(expect, sizeof expect, "%s+s", text);
        if (deny) {
            if (!res.continue_processing && res.violation &&
                strcmp(res.violation->code, "deny_word") == 0 && res.violation->plugin_name &&
                strcmp(res.violation->plugin_name, "seq") == 0)
                w->denied++;
            else
                w->wrong++;
        } else {
            const char *got = tp_final_text(&res, msg);
            if (res.continue_processing && res.payload_modified && strcmp(got, expect) == 0 &&
                res.error_count == 0 && res.extensions_modified &&
                strcmp(cpex_extensions_header(res.extensions, CPEX_HEADERS_REQUEST, "x-id"),
                       text) == 0)
                w->allowed++;
            else
                w->wrong++;
        }
        cpex_pipeline_result_cleanup(&res);
        cpex_extensions_unref(ext);
        cpex_cmf_free(msg);
    }
    return NULL;
}

/* A transform that copies the request id into a header (chained extensions). */
static int32_t id_header(tp_plugin *p, const cpex_call *call)
{
    (void)p;
    const cpex_host_api *h = tp_host();
    cpex_str id = {NULL, 0};
    if (h->ext_get(call, CPEX_EXT_REQUEST_ID, &id) != CPEX_HOST_OK)
        return CPEX_ERROR;
    char v[80];
    snprintf(v, sizeof v, "%.*s", (int)id.len, id.ptr);
    return h->ext_set_header(call, CPEX_HEADERS_REQUEST, "X-Id", v) == CPEX_HOST_OK ? CPEX_ALLOW
                                                                                    : CPEX_ERROR;
}

static void test_parallel_invokes_all_phases(void **state)
{
    (void)state;
    atomic_store(&bad_views, 0);
    cpex_manager_options o;
    cpex_manager_options_init(&o);
    o.worker_threads = 3;
    cpex_manager *m = tp_manager_with(&o);
    tp_plugin *seq = tp_new("seq", NULL);
    seq->custom = deny_some;
    tp_plugin *xf = tp_new("xf", NULL);
    xf->mode = CPEX_MODE_TRANSFORM;
    xf->caps[0] = "read_request";
    xf->caps[1] = "write_headers";
    xf->custom = id_header;
    tp_plugin *au = tp_new("au", NULL);
    au->mode = CPEX_MODE_AUDIT;
    au->custom = check_view;
    tp_plugin *co1 = tp_new("co1", NULL);
    co1->mode = CPEX_MODE_CONCURRENT;
    co1->custom = check_view;
    tp_plugin *co2 = tp_new("co2", NULL);
    co2->mode = CPEX_MODE_CONCURRENT;
    co2->custom = check_view;
    tp_plugin *ff = tp_new("ff", NULL);
    ff->mode = CPEX_MODE_FIRE_AND_FORGET;
    ff->custom = check_view;
    tp_plugin *all[] = {seq, xf, au, co1, co2, ff};
    for (int i = 0; i < 6; i++)
        tp_reg(m, all[i]);
    tp_init(m);

    pthread_t th[THREADS];
    worker_arg args[THREADS];
    for (int i = 0; i < THREADS; i++) {
        args[i] = (worker_arg){m, i, 0, 0, 0};
        assert_int_equal(pthread_create(&th[i], NULL, invoker, &args[i]), 0);
    }
    int allowed = 0, denied = 0, wrong = 0;
    for (int i = 0; i < THREADS; i++) {
        pthread_join(th[i], NULL);
        allowed += args[i].allowed;
        denied += args[i].denied;
        wrong += args[i].wrong;
    }
    assert_int_equal(cpex_manager_wait_background(m, 20), CPEX_OK);
    const int total = THREADS * TP_INVOKES;
    const int expect_denied = THREADS * (TP_INVOKES / 10 + (TP_INVOKES % 10 > 3 ? 1 : 0));
    print_message("allowed %d denied %d wrong %d\n", allowed, denied, wrong);
    assert_int_equal(wrong, 0);
    assert_int_equal(denied, expect_denied);
    assert_int_equal(allowed, total - expect_denied);
    assert_int_equal(tp_calls(seq), total);
    assert_int_equal(tp_calls(xf), allowed);
    assert_int_equal(tp_calls(au), allowed);
    assert_int_equal(tp_calls(co1), allowed);
    assert_int_equal(tp_calls(co2), allowed);
    assert_int_equal(tp_calls(ff), allowed); /* every background handler ran */
    assert_int_equal(atomic_load(&bad_views), 0);
    cpex_error_record *recs = NULL;
    size_t n = cpex_manager_take_background_errors(m, &recs);
    assert_int_equal(n, 0);
    cpex_error_records_free(recs, n);
    tp_manager_free(m);
}

/* ------------------------------------------------------------------ */
/* Registration changes while invoking                                 */
/* ------------------------------------------------------------------ */

typedef struct churn_arg {
    cpex_manager *m;
    atomic_bool *stop;
    int id;
    int ok, wrong;
    int with, without;
} churn_arg;

static void *churn_invoker(void *arg)
{
    churn_arg *w = arg;
    int i = 0;
    while (!atomic_load(w->stop) || i < 20) {
        char text[64];
        snprintf(text, sizeof text, "m%d-%d", w->id, i++);
        cpex_cmf_message *msg = tp_msg(text);
        cpex_pipeline_result res;
        tp_invoke(w->m, HOOK, msg, NULL, NULL, &res);
        char a[96], b[96];
        snprintf(a, sizeof a, "%s+base", text);       /* churn plugin absent */
        snprintf(b, sizeof b, "%s+churn+base", text); /* churn plugin present */
        const char *got = tp_final_text(&res, msg);
        if (!res.continue_processing || res.error_count != 0) {
            w->wrong++;
        } else if (strcmp(got, a) == 0) {
            w->ok++;
            w->without++;
        } else if (strcmp(got, b) == 0) {
            w->ok++;
            w->with++;
        } else {
            w->wrong++;
        }
        cpex_pipeline_result_cleanup(&res);
        cpex_cmf_free(msg);
        if (i > 100000)
            break;
    }
    return NULL;
}

static void test_register_unregister_while_invoking(void **state)
{
    (void)state;
    cpex_manager *m = tp_manager();
    tp_plugin *base = tp_new("base", NULL);
    base->priority = 100;
    base->append_text = "+base";
    tp_plugin *bg = tp_new("bg", NULL);
    bg->mode = CPEX_MODE_FIRE_AND_FORGET;
    tp_plugin *co = tp_new("co", NULL);
    co->mode = CPEX_MODE_CONCURRENT;
    tp_reg(m, base);
    tp_reg(m, bg);
    tp_reg(m, co);
    tp_init(m);

    tp_plugin *churn = tp_new("churn", NULL);
    churn->priority = 50; /* before base */
    churn->append_text = "+churn";
    tp_plugin *churn_conc = tp_new("churn_conc", NULL);
    churn_conc->mode = CPEX_MODE_CONCURRENT;
    churn_conc->sleep_ms = 1;

    atomic_bool stop;
    atomic_init(&stop, false);
    pthread_t th[3];
    churn_arg args[3];
    for (int i = 0; i < 3; i++) {
        args[i] = (churn_arg){m, &stop, i, 0, 0, 0, 0};
        assert_int_equal(pthread_create(&th[i], NULL, churn_invoker, &args[i]), 0);
    }
    int rounds = 0, reg_failures = 0;
    for (; rounds < 150; rounds++) {
        cpex_error err = CPEX_ERROR_INIT;
        if (tp_reg_err(m, churn, &err) != CPEX_OK)
            reg_failures++;
        if (tp_reg_err(m, churn_conc, &err) != CPEX_OK)
            reg_failures++;
        tp_sleep_ms(1);
        if (cpex_manager_unregister(m, "churn", &err) != CPEX_OK)
            reg_failures++;
        if (cpex_manager_unregister(m, "churn_conc", &err) != CPEX_OK)
            reg_failures++;
        cpex_error_cleanup(&err);
        /* Queries while invokes run. */
        char **names = cpex_manager_plugin_names(m);
        cpex_strv_free(names);
        (void)cpex_manager_has_hooks_for(m, HOOK);
    }
    atomic_store(&stop, true);
    int ok = 0, wrong = 0, with = 0, without = 0;
    for (int i = 0; i < 3; i++) {
        pthread_join(th[i], NULL);
        ok += args[i].ok;
        wrong += args[i].wrong;
        with += args[i].with;
        without += args[i].without;
    }
    assert_int_equal(cpex_manager_wait_background(m, 20), CPEX_OK);
    print_message("rounds %d: %d consistent results (%d with churn, %d without), %d wrong\n",
                  rounds, ok, with, without, wrong);
    assert_int_equal(reg_failures, 0);
    assert_int_equal(wrong, 0);
    assert_true(ok > 0);
    assert_int_equal(tp_calls(base), ok);
    /* Every registration was initialized, shut down and destroyed once. */
    for (int i = 0; i < 200 && atomic_load(&churn_conc->destroy_calls) < rounds; i++)
        tp_sleep_ms(5);
    assert_int_equal(atomic_load(&churn->init_calls), rounds);
    assert_int_equal(atomic_load(&churn->shutdown_calls), rounds);
    assert_int_equal(atomic_load(&churn->destroy_calls), rounds);
    assert_int_equal(atomic_load(&churn_conc->init_calls), rounds);
    assert_int_equal(atomic_load(&churn_conc->shutdown_calls), rounds);
    assert_int_equal(atomic_load(&churn_conc->destroy_calls), rounds);
    assert_int_equal(cpex_manager_plugin_count(m), 3);
    tp_manager_free(m);
}

/* ------------------------------------------------------------------ */
/* Disable racing with invokes                                         */
/* ------------------------------------------------------------------ */

static void *plain_invoker(void *arg)
{
    worker_arg *w = arg;
    for (int i = 0; i < TP_INVOKES; i++) {
        cpex_cmf_message *msg = tp_msg("hello");
        cpex_pipeline_result res;
        tp_invoke(w->m, HOOK, msg, NULL, NULL, &res);
        if (res.continue_processing)
            w->allowed++;
        else
            w->wrong++;
        cpex_pipeline_result_cleanup(&res);
        cpex_cmf_free(msg);
    }
    return NULL;
}

static void test_disable_under_concurrency(void **state)
{
    (void)state;
    cpex_manager *m = tp_manager();
    tp_plugin *e = tp_new("fragile", NULL);
    e->mode = CPEX_MODE_CONCURRENT;
    e->on_error = CPEX_ON_ERROR_DISABLE;
    e->decision = CPEX_ERROR;
    e->error_message = "broken";
    tp_plugin *s = tp_new("fragile_seq", NULL);
    s->on_error = CPEX_ON_ERROR_DISABLE;
    s->decision = CPEX_ERROR;
    tp_reg(m, e);
    tp_reg(m, s);
    tp_init(m);
    pthread_t th[THREADS];
    worker_arg args[THREADS];
    for (int i = 0; i < THREADS; i++) {
        args[i] = (worker_arg){m, i, 0, 0, 0};
        assert_int_equal(pthread_create(&th[i], NULL, plain_invoker, &args[i]), 0);
    }
    int allowed = 0;
    for (int i = 0; i < THREADS; i++) {
        pthread_join(th[i], NULL);
        allowed += args[i].allowed;
        assert_int_equal(args[i].wrong, 0);
    }
    assert_int_equal(allowed, THREADS * TP_INVOKES);
    assert_true(tp_is_disabled(m, "fragile", NULL, 0));
    assert_true(tp_is_disabled(m, "fragile_seq", NULL, 0));
    /* Invokes in flight when it was disabled may still have called it,
     * but not more than once per thread. */
    assert_true(tp_calls(e) >= 1 && tp_calls(e) <= THREADS);
    assert_true(tp_calls(s) >= 1 && tp_calls(s) <= THREADS);
    tp_manager_free(m);
}

/* ------------------------------------------------------------------ */
/* Shutdown while an invoke is in flight                               */
/* ------------------------------------------------------------------ */

typedef struct one_invoke {
    cpex_manager *m;
    cpex_pipeline_result res;
} one_invoke;

static void *invoke_once(void *arg)
{
    one_invoke *o = arg;
    cpex_cmf_message *msg = tp_msg("hello");
    tp_invoke(o->m, HOOK, msg, NULL, NULL, &o->res);
    cpex_cmf_free(msg);
    return NULL;
}

static void test_shutdown_waits_for_invoke_in_flight(void **state)
{
    (void)state;
    /* manager.h: shutdown waits for invokes in flight to finish with the
     * old registry, and waits for background work before calling each
     * plugin's shutdown. An invoke that started before shutdown therefore
     * runs to its end with initialized plugins: the sequential plugin
     * after the slow one, the concurrent and the background ones all run,
     * and only then is shutdown called. */
    cpex_manager *m = tp_manager();
    tp_plugin *slow = tp_new("slow_first", NULL);
    slow->priority = 1;
    slow->sleep_ms = 200;
    tp_plugin *second = tp_new("second", NULL);
    second->priority = 2;
    second->append_text = "+second";
    tp_plugin *co = tp_new("conc", NULL);
    co->mode = CPEX_MODE_CONCURRENT;
    tp_plugin *ff = tp_new("faf", NULL);
    ff->mode = CPEX_MODE_FIRE_AND_FORGET;
    tp_reg(m, slow);
    tp_reg(m, second);
    tp_reg(m, co);
    tp_reg(m, ff);
    tp_init(m);
    one_invoke o = {m, {0}};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, invoke_once, &o), 0);
    tp_sleep_ms(50); /* the invoke is inside slow_first */
    assert_int_equal(tp_calls(slow), 1);
    cpex_manager_shutdown(m);
    pthread_join(th, NULL);
    if (!o.res.continue_processing)
        tp_print_result(&o.res);
    bool allowed = o.res.continue_processing;
    size_t errors = o.res.error_count;
    char text[64];
    snprintf(text, sizeof text, "%s", tp_final_text(&o.res, NULL));
    cpex_pipeline_result_cleanup(&o.res); /* before asserting: no leak on failure */
    assert_true(allowed);
    assert_int_equal(errors, 0);
    assert_string_equal(text, "hello+second");
    assert_int_equal(tp_calls(second), 1);
    assert_int_equal(tp_calls(co), 1);
    assert_int_equal(tp_calls(ff), 1);
    cpex_error_record *recs = NULL;
    size_t n = cpex_manager_take_background_errors(m, &recs);
    cpex_error_records_free(recs, n);
    assert_int_equal(n, 0);
    tp_plugin *all[] = {slow, second, co, ff};
    for (int i = 0; i < 4; i++)
        assert_int_equal(atomic_load(&all[i]->shutdown_calls), 1);
    /* An invoke after shutdown fails closed. */
    cpex_cmf_message *msg = tp_msg("hello");
    cpex_pipeline_result res;
    tp_invoke(m, HOOK, msg, NULL, NULL, &res);
    assert_denied(&res, "plugin_error", "slow_first");
    cpex_pipeline_result_cleanup(&res);
    cpex_cmf_free(msg);
    assert_int_equal(tp_calls(slow), 1);
    tp_manager_free(m);
}

static void *plain_invoker_checked(void *arg)
{
    worker_arg *w = arg;
    for (int i = 0; i < TP_INVOKES; i++) {
        cpex_cmf_message *msg = tp_msg("hello");
        cpex_pipeline_result res;
        tp_invoke(w->m, HOOK, msg, NULL, NULL, &res);
        /* Either it ran (before shutdown) or it failed closed (after). */
        if (res.continue_processing && strcmp(tp_final_text(&res, msg), "hello+a") == 0)
            w->allowed++;
        else if (!res.continue_processing && res.violation &&
                 strcmp(res.violation->code, "plugin_error") == 0)
            w->denied++;
        else
            w->wrong++;
        cpex_pipeline_result_cleanup(&res);
        cpex_cmf_free(msg);
    }
    return NULL;
}

static void test_shutdown_under_load(void **state)
{
    (void)state;
    cpex_manager *m = tp_manager();
    tp_plugin *a = tp_new("a", NULL);
    a->append_text = "+a";
    tp_plugin *co = tp_new("co", NULL);
    co->mode = CPEX_MODE_CONCURRENT;
    tp_plugin *ff = tp_new("ff", NULL);
    ff->mode = CPEX_MODE_FIRE_AND_FORGET;
    tp_reg(m, a);
    tp_reg(m, co);
    tp_reg(m, ff);
    tp_init(m);
    pthread_t th[THREADS];
    worker_arg args[THREADS];
    for (int i = 0; i < THREADS; i++) {
        args[i] = (worker_arg){m, i, 0, 0, 0};
        assert_int_equal(pthread_create(&th[i], NULL, plain_invoker_checked, &args[i]), 0);
    }
    tp_sleep_ms(20);
    cpex_manager_shutdown(m);
    /* Once shutdown returned, no handler is called any more. */
    int calls_a = tp_calls(a), calls_co = tp_calls(co), calls_ff = tp_calls(ff);
    int wrong = 0, allowed = 0;
    for (int i = 0; i < THREADS; i++) {
        pthread_join(th[i], NULL);
        wrong += args[i].wrong;
        allowed += args[i].allowed;
    }
    assert_int_equal(wrong, 0);
    assert_int_equal(tp_calls(a), calls_a);
    assert_int_equal(tp_calls(co), calls_co);
    assert_int_equal(tp_calls(ff), calls_ff);
    assert_int_equal(atomic_load(&a->shutdown_calls), 1);
    assert_int_equal(atomic_load(&co->shutdown_calls), 1);
    assert_int_equal(atomic_load(&ff->shutdown_calls), 1);
    tp_manager_free(m);
    assert_int_equal(atomic_load(&ff->destroy_calls), 1);
    print_message("allowed before shutdown: %d\n", allowed);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_parallel_invokes_all_phases, setup, teardown),
        cmocka_unit_test_setup_teardown(test_register_unregister_while_invoking, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disable_under_concurrency, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shutdown_waits_for_invoke_in_flight, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shutdown_under_load, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
