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

TP_FIXTURE;

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

/* How a worker counts one result. */
typedef enum outcome { ALLOWED, DENIED, WRONG } outcome;
typedef outcome (*judge_fn)(const cpex_pipeline_result *res, const cpex_cmf_message *msg);

typedef struct worker_arg {
    cpex_manager *m;
    int id;
    judge_fn judge; /* hello_invoker only */
    int allowed, denied, wrong;
} worker_arg;

/* Start `fn` on THREADS threads over `m`, thread i with args[i] (id i). */
static void start_workers(pthread_t *th, worker_arg *args, cpex_manager *m, void *(*fn)(void *),
                          judge_fn judge)
{
    for (int i = 0; i < THREADS; i++) {
        args[i] = (worker_arg){m, i, judge, 0, 0, 0};
        assert_int_equal(pthread_create(&th[i], NULL, fn, &args[i]), 0);
    }
}

/* Join the THREADS workers; returns their counts summed. */
static worker_arg join_workers(pthread_t *th, const worker_arg *args)
{
    worker_arg sum = {NULL, -1, NULL, 0, 0, 0};
    for (int i = 0; i < THREADS; i++) {
        pthread_join(th[i], NULL);
        sum.allowed += args[i].allowed;
        sum.denied += args[i].denied;
        sum.wrong += args[i].wrong;
    }
    return sum;
}

static void *invoker(void *arg)
{
    worker_arg *w = arg;
    for (int i = 0; i < TP_INVOKES; i++) {
        char text[64];
        bool deny = i % 10 == 3;
        snprintf(text, sizeof text, "%s-%d-%d", deny ? "deny" : "msg", w->id, i);
        cpex_cmf_message *msg = test_text_message(text);
        cpex_extensions *ext = cpex_extensions_new();
        cpex_extensions_set(ext, CPEX_EXT_REQUEST_ID, text);
        cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
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

/* A plugin in `mode` whose handler is check_view. */
static tp_plugin *new_checker(const char *name, uint32_t mode)
{
    tp_plugin *p = tp_new_in(name, NULL, mode, TP_DEFAULT_PRIORITY);
    p->custom = check_view;
    return p;
}

static void test_parallel_invokes_all_phases(void **state)
{
    (void)state;
    atomic_store(&bad_views, 0);
    cpex_manager *m = tp_manager_workers(3);
    tp_plugin *seq = tp_new("seq", NULL);
    seq->custom = deny_some;
    tp_plugin *xf = tp_new_in("xf", NULL, CPEX_MODE_TRANSFORM, TP_DEFAULT_PRIORITY);
    xf->caps[0] = "read_request";
    xf->caps[1] = "write_headers";
    xf->custom = id_header;
    tp_plugin *au = new_checker("au", CPEX_MODE_AUDIT);
    tp_plugin *co1 = new_checker("co1", CPEX_MODE_CONCURRENT);
    tp_plugin *co2 = new_checker("co2", CPEX_MODE_CONCURRENT);
    tp_plugin *ff = new_checker("ff", CPEX_MODE_FIRE_AND_FORGET);
    tp_start(m, seq, xf, au, co1, co2, ff);

    pthread_t th[THREADS];
    worker_arg args[THREADS];
    start_workers(th, args, m, invoker, NULL);
    worker_arg sum = join_workers(th, args);
    int allowed = sum.allowed, denied = sum.denied, wrong = sum.wrong;
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
    tp_expect_background_errors(m, 0);
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
        cpex_cmf_message *msg = test_text_message(text);
        cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
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
    tp_plugin *base = tp_new_in("base", NULL, CPEX_MODE_SEQUENTIAL, 100);
    base->append_text = "+base";
    tp_start(m, base, tp_new_in("bg", NULL, CPEX_MODE_FIRE_AND_FORGET, TP_DEFAULT_PRIORITY),
             tp_new_in("co", NULL, CPEX_MODE_CONCURRENT, TP_DEFAULT_PRIORITY));

    tp_plugin *churn = tp_new_in("churn", NULL, CPEX_MODE_SEQUENTIAL, 50); /* before base */
    churn->append_text = "+churn";
    tp_plugin *churn_conc =
        tp_new_in("churn_conc", NULL, CPEX_MODE_CONCURRENT, TP_DEFAULT_PRIORITY);
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
    tp_plugin *churned[] = {churn, churn_conc};
    for (int i = 0; i < 2; i++) {
        assert_int_equal(atomic_load(&churned[i]->init_calls), rounds);
        assert_int_equal(atomic_load(&churned[i]->shutdown_calls), rounds);
        assert_int_equal(atomic_load(&churned[i]->destroy_calls), rounds);
    }
    assert_int_equal(cpex_manager_plugin_count(m), 3);
    tp_manager_free(m);
}

/* ------------------------------------------------------------------ */
/* Disable racing with invokes                                         */
/* ------------------------------------------------------------------ */

/* Invoke HOOK TP_INVOKES times on "hello"; w->judge sorts the results. */
static void *hello_invoker(void *arg)
{
    worker_arg *w = arg;
    for (int i = 0; i < TP_INVOKES; i++) {
        cpex_cmf_message *msg = test_text_message("hello");
        cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
        tp_invoke(w->m, HOOK, msg, NULL, NULL, &res);
        outcome o = w->judge(&res, msg);
        if (o == ALLOWED)
            w->allowed++;
        else if (o == DENIED)
            w->denied++;
        else
            w->wrong++;
        cpex_pipeline_result_cleanup(&res);
        cpex_cmf_free(msg);
    }
    return NULL;
}

/* Every invoke must be allowed. */
static outcome allowed_only(const cpex_pipeline_result *res, const cpex_cmf_message *msg)
{
    (void)msg;
    return res->continue_processing ? ALLOWED : WRONG;
}

static void test_disable_under_concurrency(void **state)
{
    (void)state;
    cpex_manager *m = tp_manager();
    tp_plugin *e = tp_new_in("fragile", NULL, CPEX_MODE_CONCURRENT, TP_DEFAULT_PRIORITY);
    tp_plugin *s = tp_new("fragile_seq", NULL);
    tp_start(m, tp_failing(e, CPEX_ON_ERROR_DISABLE, "broken"),
             tp_failing(s, CPEX_ON_ERROR_DISABLE, NULL));
    pthread_t th[THREADS];
    worker_arg args[THREADS];
    start_workers(th, args, m, hello_invoker, allowed_only);
    int allowed = join_workers(th, args).allowed;
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(args[i].wrong, 0);
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
    cpex_cmf_message *msg = test_text_message("hello");
    tp_invoke(o->m, HOOK, msg, NULL, NULL, &o->res); /* no cmocka assert off the main thread */
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
    tp_plugin *slow = tp_new_in("slow_first", NULL, CPEX_MODE_SEQUENTIAL, 1);
    slow->sleep_ms = 200;
    tp_plugin *second = tp_new_in("second", NULL, CPEX_MODE_SEQUENTIAL, 2);
    second->append_text = "+second";
    tp_plugin *co = tp_new_in("conc", NULL, CPEX_MODE_CONCURRENT, TP_DEFAULT_PRIORITY);
    tp_plugin *ff = tp_new_in("faf", NULL, CPEX_MODE_FIRE_AND_FORGET, TP_DEFAULT_PRIORITY);
    tp_start(m, slow, second, co, ff);
    one_invoke o = {m, CPEX_PIPELINE_RESULT_INIT};
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
    tp_expect_background_errors(m, 0);
    tp_plugin *all[] = {slow, second, co, ff};
    for (int i = 0; i < 4; i++)
        assert_int_equal(atomic_load(&all[i]->shutdown_calls), 1);
    /* An invoke after shutdown fails closed. */
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    tp_run(m, HOOK, &res);
    assert_denied(&res, "plugin_error", "slow_first");
    cpex_pipeline_result_cleanup(&res);
    assert_int_equal(tp_calls(slow), 1);
    tp_manager_free(m);
}

/* Either it ran (before shutdown) or it failed closed (after). */
static outcome ran_or_failed_closed(const cpex_pipeline_result *res, const cpex_cmf_message *msg)
{
    if (res->continue_processing && strcmp(tp_final_text(res, msg), "hello+a") == 0)
        return ALLOWED;
    if (!res->continue_processing && res->violation &&
        strcmp(res->violation->code, "plugin_error") == 0)
        return DENIED;
    return WRONG;
}

static void test_shutdown_under_load(void **state)
{
    (void)state;
    cpex_manager *m = tp_manager();
    tp_plugin *a = tp_new("a", NULL);
    a->append_text = "+a";
    tp_plugin *co = tp_new_in("co", NULL, CPEX_MODE_CONCURRENT, TP_DEFAULT_PRIORITY);
    tp_plugin *ff = tp_new_in("ff", NULL, CPEX_MODE_FIRE_AND_FORGET, TP_DEFAULT_PRIORITY);
    tp_start(m, a, co, ff);
    pthread_t th[THREADS];
    worker_arg args[THREADS];
    start_workers(th, args, m, hello_invoker, ran_or_failed_closed);
    tp_sleep_ms(20);
    cpex_manager_shutdown(m);
    /* Once shutdown returned, no handler is called any more. */
    int calls_a = tp_calls(a), calls_co = tp_calls(co), calls_ff = tp_calls(ff);
    worker_arg sum = join_workers(th, args);
    int allowed = sum.allowed;
    assert_int_equal(sum.wrong, 0);
    assert_int_equal(tp_calls(a), calls_a);
    assert_int_equal(tp_calls(co), calls_co);
    assert_int_equal(tp_calls(ff), calls_ff);
    tp_plugin *all[] = {a, co, ff};
    for (int i = 0; i < 3; i++)
        assert_int_equal(atomic_load(&all[i]->shutdown_calls), 1);
    tp_manager_free(m);
    assert_int_equal(atomic_load(&ff->destroy_calls), 1);
    print_message("allowed before shutdown: %d\n", allowed);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TP_TEST(test_parallel_invokes_all_phases),
        TP_TEST(test_register_unregister_while_invoking),
        TP_TEST(test_disable_under_concurrency),
        TP_TEST(test_shutdown_waits_for_invoke_in_flight),
        TP_TEST(test_shutdown_under_load),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
