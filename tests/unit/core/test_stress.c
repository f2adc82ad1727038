/*
 * test_stress.c — several threads invoke one manager for a few seconds
 * with a mix of modes, and every result is checked.
 *
 * Plugins (registered from code; every handler reaches the host through
 * the host table only):
 *   seq     sequential  appends "+s"; denies texts starting with "deny"
 *   tx      transform   appends "+t"; stores the request's token in its
 *                       local context on the pre hook and checks it on the
 *                       post hook ("token_ok" metadata)
 *   audit   audit       counts what it saw; a view without "+s+t" is wrong
 *   conc    concurrent  takes a little time; denies texts containing "block"
 *   faf     fire_and_forget  takes a little time, counts what it saw; also
 *                       the only plugin of a background-only hook
 *   churn   audit       registered and unregistered over and over by one
 *                       thread while the others invoke
 *
 * Checked per invoke: the decision, the violation and who made it, the
 * final text, the metadata, the context threaded from pre to post. Checked
 * at the end: the audit plugin, the concurrent plugin and the background
 * plugin each counted exactly what the invokers sent them; shutdown waited
 * for every background call (the faf plugin's shutdown sees the final
 * count, and no call happens after it); no background error was recorded.
 *
 * Duration: 2 s (1 s under sanitizers), or CPEX_STRESS_SECONDS from the
 * environment for a longer run (docs/testing.md). Runs under TSan in
 * make test-tsan.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "test_support.h"
#include "cpex/cpex.h"

#define PRE "cmf.tool_pre_invoke"
#define POST "cmf.tool_post_invoke"
#define BG "stress.background" /* served by the faf plugin alone */
#define INVOKERS 4

static const cpex_host_api *H;

static void sleep_us(long us)
{
    struct timespec ts = {us / 1000000, (us % 1000000) * 1000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ------------------------------------------------------------------ */
/* Plugins                                                             */
/* ------------------------------------------------------------------ */

static atomic_long audit_seen, conc_seen, faf_seen, bad_views;
static atomic_long faf_at_shutdown = -1;
static atomic_int faf_shut, faf_after_shutdown, shutdowns;

static const char *text_of(const cpex_call *call)
{
    const cpex_cmf_message *m = call->payload->data;
    return m->part_count ? m->parts[0].text.ptr : "";
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

static int32_t append(const cpex_call *call, const char *suffix)
{
    cpex_cmf_message *copy = H->cmf_clone(call->payload->data);
    if (!copy)
        return CPEX_ERROR;
    char buf[256];
    snprintf(buf, sizeof buf, "%s%s", text_of(call), suffix);
    if (H->cmf_set_text(copy, 0, buf, strlen(buf)) != CPEX_HOST_OK) {
        H->cmf_free(copy);
        return CPEX_ERROR;
    }
    return H->set_payload_cmf(call, copy) == CPEX_HOST_OK ? CPEX_ALLOW : CPEX_ERROR;
}

static int32_t seq_fn(void *instance, const cpex_call *call)
{
    (void)instance;
    if (strncmp(text_of(call), "deny", 4) == 0) {
        H->deny(call, "deny_word", "the text starts with deny", NULL, NULL);
        return CPEX_DENY;
    }
    return append(call, "+s");
}

static int is_hook(const cpex_call *call, const char *hook)
{
    return call->hook.len == strlen(hook) && memcmp(call->hook.ptr, hook, call->hook.len) == 0;
}

static int32_t tx_fn(void *instance, const cpex_call *call)
{
    (void)instance;
    /* the token is the text up to the first '+' */
    char token[128];
    snprintf(token, sizeof token, "%s", text_of(call));
    char *plus = strchr(token, '+');
    if (plus)
        *plus = '\0';
    if (is_hook(call, PRE)) {
        H->ctx_set(call, CPEX_CTX_LOCAL, "token", H->json_new_string(token, strlen(token)));
    } else {
        const cpex_json *t = H->ctx_get(call, CPEX_CTX_LOCAL, "token");
        const char *s = t ? H->json_string(t, NULL) : NULL;
        H->set_metadata(call, "token_ok", H->json_new_bool(s && strcmp(s, token) == 0));
    }
    return append(call, "+t");
}

static int32_t audit_fn(void *instance, const cpex_call *call)
{
    (void)instance;
    atomic_fetch_add(&audit_seen, 1);
    if (!ends_with(text_of(call), "+s+t"))
        atomic_fetch_add(&bad_views, 1);
    return CPEX_ALLOW;
}

static int32_t conc_fn(void *instance, const cpex_call *call)
{
    (void)instance;
    atomic_fetch_add(&conc_seen, 1);
    if (!ends_with(text_of(call), "+s+t"))
        atomic_fetch_add(&bad_views, 1);
    sleep_us(200);
    if (strstr(text_of(call), "block")) {
        H->deny(call, "conc_block", "the text contains block", NULL, NULL);
        return CPEX_DENY;
    }
    H->set_metadata(call, "conc", H->json_new_bool(1));
    return CPEX_ALLOW;
}

static int32_t faf_fn(void *instance, const cpex_call *call)
{
    (void)instance;
    if (atomic_load(&faf_shut))
        atomic_fetch_add(&faf_after_shutdown, 1);
    if (is_hook(call, BG) ? strncmp(text_of(call), "bg-", 3) != 0
                          : !ends_with(text_of(call), "+s+t"))
        atomic_fetch_add(&bad_views, 1);
    sleep_us(300);
    atomic_fetch_add(&faf_seen, 1);
    return CPEX_ALLOW;
}

static int32_t churn_fn(void *instance, const cpex_call *call)
{
    (void)instance;
    (void)call;
    return CPEX_ALLOW;
}

static void faf_shutdown(void *instance)
{
    (void)instance;
    atomic_store(&faf_at_shutdown, atomic_load(&faf_seen));
    atomic_store(&faf_shut, 1);
    atomic_fetch_add(&shutdowns, 1);
}

static void other_shutdown(void *instance)
{
    (void)instance;
    atomic_fetch_add(&shutdowns, 1);
}

typedef struct def {
    const char *name;
    uint32_t mode;
    cpex_handler_fn fn;
    int both_hooks;
} def;

static const def defs[] = {
    {"seq", CPEX_MODE_SEQUENTIAL, seq_fn, 0},      {"tx", CPEX_MODE_TRANSFORM, tx_fn, 1},
    {"audit", CPEX_MODE_AUDIT, audit_fn, 0},       {"conc", CPEX_MODE_CONCURRENT, conc_fn, 0},
    {"faf", CPEX_MODE_FIRE_AND_FORGET, faf_fn, 1},
};
#define NDEFS (CPEX__COUNT(defs))
static cpex_handler_reg handlers[NDEFS + 1][2];

static cpex_status register_one(cpex_manager *m, size_t i, const def *d, cpex_error *err)
{
    cpex_plugin_spec spec;
    cpex_plugin_spec_init(&spec);
    spec.name = d->name;
    spec.mode = d->mode;
    spec.on_error = CPEX_ON_ERROR_FAIL;
    handlers[i][0].hook = PRE;
    handlers[i][0].fn = d->fn;
    handlers[i][0].payload_type = "cmf";
    handlers[i][1].hook = d->fn == faf_fn ? BG : POST;
    handlers[i][1].fn = d->fn;
    handlers[i][1].payload_type = "cmf";
    cpex_plugin_registration reg;
    memset(&reg, 0, sizeof reg);
    reg.struct_size = (uint32_t)sizeof reg;
    reg.abi_version = CPEX_ABI_VERSION;
    reg.name = d->name;
    /* churn comes and goes (and is shut down each time): not counted */
    reg.shutdown = d->fn == faf_fn ? faf_shutdown : d->fn == churn_fn ? NULL : other_shutdown;
    reg.handler_count = d->both_hooks ? 2 : 1;
    reg.handlers = handlers[i];
    return cpex_manager_register(m, &spec, &reg, err);
}

/* ------------------------------------------------------------------ */
/* Invokers                                                            */
/* ------------------------------------------------------------------ */

typedef struct invoker {
    cpex_manager *m;
    int id;
    double until;
    long normal, denied, blocked, threaded, background;
    long to_audit, to_conc, to_faf;
    char failure[512]; /* the first wrong result, or "" */
} invoker;

static atomic_int stop_churn;

#define WRONG(inv, ...)                                                                            \
    do {                                                                                           \
        if (!(inv)->failure[0])                                                                    \
            snprintf((inv)->failure, sizeof(inv)->failure, __VA_ARGS__);                           \
    } while (0)

static const char *final_text(const cpex_pipeline_result *r, const cpex_cmf_message *orig)
{
    const cpex_cmf_message *m = cpex_pipeline_result_cmf(r, orig);
    return m && m->part_count ? m->parts[0].text.ptr : "";
}

static void check_violation(invoker *inv, const cpex_pipeline_result *r, const char *code,
                            const char *plugin, const char *text)
{
    if (r->continue_processing || !r->violation)
        WRONG(inv, "'%s': expected a deny %s", text, code);
    else if (strcmp(r->violation->code, code) != 0 || !r->violation->plugin_name ||
             strcmp(r->violation->plugin_name, plugin) != 0)
        WRONG(inv, "'%s': expected %s by %s, got %s by %s", text, code, plugin, r->violation->code,
              r->violation->plugin_name ? r->violation->plugin_name : "-");
}

static void *invoke_loop(void *arg)
{
    invoker *inv = arg;
    unsigned seed = (unsigned)inv->id * 2654435761u;
    char text[128];
    for (long i = 0; now_s() < inv->until; i++) {
        seed = seed * 1103515245u + 12345u;
        int kind = (int)((seed >> 16) % 8);
        if (kind == 0)
            snprintf(text, sizeof text, "deny-%d-%ld", inv->id, i);
        else if (kind == 1)
            snprintf(text, sizeof text, "block-%d-%ld", inv->id, i);
        else if (kind == 7)
            snprintf(text, sizeof text, "bg-%d-%ld", inv->id, i);
        else
            snprintf(text, sizeof text, "req-%d-%ld", inv->id, i);
        cpex_cmf_message *msg = test_text_message(text);
        cpex_payload p = cpex_payload_cmf(msg);
        cpex_pipeline_result r = CPEX_PIPELINE_RESULT_INIT;
        cpex_manager_invoke(inv->m, kind == 7 ? BG : PRE, &p, NULL, NULL, &r);
        char want[160];
        snprintf(want, sizeof want, "%s+s+t", text);
        if (kind == 0) {
            check_violation(inv, &r, "deny_word", "seq", text);
            if (r.payload_modified)
                WRONG(inv, "'%s': denied by the first plugin, yet modified", text);
            inv->denied++;
        } else if (kind == 1) {
            check_violation(inv, &r, "conc_block", "conc", text);
            inv->to_audit++;
            inv->to_conc++;
            inv->blocked++;
        } else if (kind == 7) {
            /* background only: allowed at once, untouched */
            if (!r.continue_processing || r.payload_modified || r.error_count)
                WRONG(inv, "'%s': a background-only hook must allow untouched", text);
            inv->to_faf++;
            inv->background++;
        } else {
            if (!r.continue_processing || r.violation || r.error_count)
                WRONG(inv, "'%s': expected allow without errors (continue %d, %zu errors)", text,
                      r.continue_processing, r.error_count);
            else if (strcmp(final_text(&r, msg), want) != 0)
                WRONG(inv, "'%s': final text '%s', expected '%s'", text, final_text(&r, msg), want);
            else if (!r.metadata || !json_is_true(json_object_get(r.metadata, "conc")))
                WRONG(inv, "'%s': the concurrent plugin's metadata is missing", text);
            inv->to_audit++;
            inv->to_conc++;
            inv->to_faf++;
            inv->normal++;
            if (kind == 2 && r.continue_processing) {
                /* the post hook of the same request, with its context */
                cpex_context_table *ctx = cpex_pipeline_result_take_context(&r);
                if (!ctx)
                    WRONG(inv, "'%s': no context table after tx stored its token", text);
                cpex_pipeline_result post = CPEX_PIPELINE_RESULT_INIT;
                cpex_manager_invoke(inv->m, POST, &p, NULL, ctx, &post);
                if (!post.continue_processing || post.error_count ||
                    !json_is_true(json_object_get(post.metadata, "token_ok")))
                    WRONG(inv, "'%s': the post hook did not see the pre hook's token", text);
                cpex_pipeline_result_cleanup(&post);
                inv->threaded++;
            }
        }
        cpex_pipeline_result_cleanup(&r);
        cpex_cmf_free(msg);
    }
    return NULL;
}

/* Registers and unregisters an extra audit plugin while the others invoke. */
static void *churn_loop(void *arg)
{
    cpex_manager *m = arg;
    static const def churn = {"churn", CPEX_MODE_AUDIT, churn_fn, 0};
    long rounds = 0;
    while (!atomic_load(&stop_churn)) {
        cpex_error err = CPEX_ERROR_INIT;
        if (register_one(m, NDEFS, &churn, &err) == CPEX_OK) {
            sleep_us(2000);
            cpex_manager_unregister(m, "churn", &err);
            rounds++;
        }
        cpex_error_cleanup(&err);
        /* queries race with invokes and changes too */
        cpex_plugin_info info = CPEX_PLUGIN_INFO_INIT;
        if (cpex_manager_plugin_info(m, "faf", &info) == CPEX_OK)
            cpex_plugin_info_cleanup(&info);
        (void)cpex_manager_has_hooks_for(m, PRE);
        sleep_us(1000);
    }
    return (void *)(intptr_t)rounds;
}

static void test_stress(void **state)
{
    (void)state;
    H = cpex_host_api_get();
    double seconds = TEST_UNDER_SANITIZER ? 1.0 : 2.0;
    const char *env = getenv("CPEX_STRESS_SECONDS");
    if (env && atof(env) > 0)
        seconds = atof(env);

    cpex_manager_options o;
    cpex_manager_options_init(&o);
    o.worker_threads = 3;
    cpex_manager *m = NULL;
    cpex_error err = CPEX_ERROR_INIT;
    assert_int_equal(cpex_manager_new(&o, &m, &err), CPEX_OK);
    for (size_t i = 0; i < NDEFS; i++) {
        cpex_status st = register_one(m, i, &defs[i], &err);
        if (st != CPEX_OK)
            print_error("%s\n", cpex_error_message(&err));
        assert_int_equal(st, CPEX_OK);
    }
    assert_int_equal(cpex_manager_initialize(m, &err), CPEX_OK);
    cpex_error_cleanup(&err);

    invoker inv[INVOKERS];
    pthread_t threads[INVOKERS], churner;
    double until = now_s() + seconds;
    atomic_store(&stop_churn, 0);
    assert_int_equal(pthread_create(&churner, NULL, churn_loop, m), 0);
    for (int i = 0; i < INVOKERS; i++) {
        memset(&inv[i], 0, sizeof inv[i]);
        inv[i].m = m;
        inv[i].id = i;
        inv[i].until = until;
        assert_int_equal(pthread_create(&threads[i], NULL, invoke_loop, &inv[i]), 0);
    }
    long to_audit = 0, to_conc = 0, to_faf = 0, total = 0, threaded = 0;
    for (int i = 0; i < INVOKERS; i++) {
        pthread_join(threads[i], NULL);
        if (inv[i].failure[0])
            fail_msg("invoker %d: %s", i, inv[i].failure);
        to_audit += inv[i].to_audit;
        to_conc += inv[i].to_conc;
        to_faf += inv[i].to_faf;
        total += inv[i].normal + inv[i].denied + inv[i].blocked + inv[i].background;
        threaded += inv[i].threaded;
        assert_true(inv[i].normal > 0 && inv[i].denied > 0 && inv[i].blocked > 0);
    }
    atomic_store(&stop_churn, 1);
    void *rounds = NULL;
    pthread_join(churner, &rounds);

    /* A last burst of background work, then shutdown at once. */
    for (int i = 0; i < 300; i++) {
        char text[32];
        snprintf(text, sizeof text, "bg-burst-%d", i);
        cpex_cmf_message *msg = test_text_message(text);
        cpex_payload p = cpex_payload_cmf(msg);
        cpex_pipeline_result r = CPEX_PIPELINE_RESULT_INIT;
        cpex_manager_invoke(m, BG, &p, NULL, NULL, &r);
        assert_true(r.continue_processing);
        cpex_pipeline_result_cleanup(&r);
        cpex_cmf_free(msg);
        to_faf++;
        total++;
    }

    /* Shutdown right away, with background calls still queued: it must
       wait for all of them, then shut the plugins down. */
    long faf_before = atomic_load(&faf_seen);
    cpex_manager_shutdown(m);
    print_message("stress: %.1fs, %ld invokes (%ld pre->post), %ld churn rounds; "
                  "%ld background calls still queued at shutdown\n",
                  seconds, total, threaded, (long)(intptr_t)rounds, to_faf - faf_before);

    assert_int_equal(atomic_load(&bad_views), 0);
    assert_int_equal(atomic_load(&audit_seen), to_audit);
    assert_int_equal(atomic_load(&conc_seen), to_conc);
    assert_int_equal(atomic_load(&faf_seen), to_faf);
    assert_int_equal(atomic_load(&faf_at_shutdown), to_faf);
    assert_int_equal(atomic_load(&faf_after_shutdown), 0);
    assert_int_equal(atomic_load(&shutdowns), (int)NDEFS);
    cpex_error_record *bg = NULL;
    size_t nbg = cpex_manager_take_background_errors(m, &bg);
    for (size_t i = 0; i < nbg; i++)
        print_error("background error: %s %s %s\n", bg[i].plugin_name, bg[i].code, bg[i].message);
    cpex_error_records_free(bg, nbg);
    assert_int_equal(nbg, 0);

    /* After shutdown, invokes fail closed and reach no plugin. */
    cpex_cmf_message *msg = test_text_message("late");
    cpex_payload p = cpex_payload_cmf(msg);
    cpex_pipeline_result r = CPEX_PIPELINE_RESULT_INIT;
    cpex_manager_invoke(m, PRE, &p, NULL, NULL, &r);
    assert_false(r.continue_processing);
    cpex_pipeline_result_cleanup(&r);
    cpex_cmf_free(msg);
    cpex_manager_free(m);
    assert_int_equal(atomic_load(&audit_seen), to_audit);
    assert_int_equal(atomic_load(&faf_seen), to_faf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stress),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
