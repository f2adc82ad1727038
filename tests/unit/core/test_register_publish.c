/*
 * test_register_publish.c — registrations from code are published lazily
 * (src/core/publish.c): cpex_manager_register checks and wires the plugin,
 * and the next reader of the registry publishes every pending one. What
 * must hold as before:
 *
 *   - register, then invoke at once (by name and by hook handle), before
 *     and after initialize: the new plugin runs;
 *   - every query sees a registration that returned, without an invoke
 *     between (count, names, has_hooks_for, info, config, generation), and
 *     the generation advances by one per registration;
 *   - duplicate names and payload type clashes with a pending registration
 *     are refused by cpex_manager_register itself; unregister finds a
 *     pending plugin; shutdown and free shut down and destroy pending ones;
 *   - one thread registers while others invoke: an invoke that starts after
 *     a registration returned runs that plugin (TSan sees the races);
 *   - an invoke nested in a handler, while registrations are pending and a
 *     writer on another thread waits for readers, neither deadlocks nor
 *     misses the registration.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "cpex/cpex.h"
#include "test_support.h"
/* after test_support.h */
#include "plugins.h"
#include "util/alloc.h"

#define PRE "cmf.tool_pre_invoke"

TP_FIXTURE;

#define MANY 200
static char hook_names[MANY][32];
static char plugin_names[MANY][32];

static void make_names(const char *prefix)
{
    for (int i = 0; i < MANY; i++) {
        snprintf(hook_names[i], sizeof hook_names[i], "t.hook_%03d", i);
        snprintf(plugin_names[i], sizeof plugin_names[i], "%s%03d", prefix, i);
    }
}

/* A plugin on hook i of its own that denies with code "mine". */
static tp_plugin *on_own_hook(int i)
{
    tp_plugin *p = tp_new(plugin_names[i], NULL);
    p->hooks[0] = hook_names[i];
    return tp_denying(p, "mine", "the plugin ran");
}

/* ------------------------------------------------------------------ */
/* One thread                                                          */
/* ------------------------------------------------------------------ */

static void register_then_invoke_at_once(void **state)
{
    (void)state;
    make_names("r");
    cpex_manager *m = tp_manager();
    cpex_error err = CPEX_ERROR_INIT;
    const cpex_hook_handle *h5 = cpex_manager_hook(m, hook_names[5], &err);
    assert_non_null(h5);
    for (int i = 0; i < 10; i++)
        tp_reg(m, on_own_hook(i));
    tp_init(m);
    for (int i = 10; i < 40; i++) {
        uint64_t g = cpex_manager_generation(m);
        tp_plugin *p = on_own_hook(i);
        tp_reg(m, p);
        cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
        tp_run(m, hook_names[i], &res);
        assert_denied(&res, "mine", plugin_names[i]);
        assert_int_equal(res.generation, g + 1);
        cpex_pipeline_result_cleanup(&res);
        assert_int_equal(tp_calls(p), 1);
        assert_int_equal(atomic_load(&p->init_calls), 1);
    }
    /* By handle, on a hook registered before initialize. */
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    cpex_cmf_message *msg = test_text_message("hello");
    cpex_payload pl = cpex_payload_cmf(msg);
    assert_int_equal(cpex_manager_invoke_hook(m, h5, &pl, NULL, NULL, &res), CPEX_OK);
    assert_denied(&res, "mine", plugin_names[5]);
    cpex_pipeline_result_cleanup(&res);
    /* A handle taken before a burst of registrations, invoked after it. */
    const cpex_hook_handle *h45 = cpex_manager_hook(m, hook_names[45], &err);
    for (int i = 40; i < 50; i++)
        tp_reg(m, on_own_hook(i));
    assert_int_equal(cpex_manager_invoke_hook(m, h45, &pl, NULL, NULL, &res), CPEX_OK);
    assert_denied(&res, "mine", plugin_names[45]);
    cpex_pipeline_result_cleanup(&res);
    cpex_cmf_free(msg);
    tp_manager_free(m);
}

static void queries_see_pending(void **state)
{
    (void)state;
    make_names("q");
    cpex_manager *m = tp_manager();
    uint64_t g0 = cpex_manager_generation(m);
    tp_plugin *ps[5];
    for (int i = 0; i < 5; i++) {
        ps[i] = on_own_hook(i);
        ps[i]->config = "{\"n\": 1}";
        tp_reg(m, ps[i]);
    }
    /* One generation per registration, as when each published at once. */
    assert_int_equal(cpex_manager_generation(m), g0 + 5);
    tp_reg(m, on_own_hook(5));
    assert_int_equal(cpex_manager_plugin_count(m), 6);
    tp_reg(m, on_own_hook(6));
    char **names = cpex_manager_plugin_names(m);
    assert_non_null(names);
    for (int i = 0; i < 7; i++)
        assert_string_equal(names[i], plugin_names[i]);
    assert_null(names[7]);
    cpex_strv_free(names);
    tp_reg(m, on_own_hook(7));
    assert_true(cpex_manager_has_hooks_for(m, hook_names[7]));
    tp_reg(m, on_own_hook(8));
    cpex_plugin_info info = CPEX_PLUGIN_INFO_INIT;
    assert_int_equal(cpex_manager_plugin_info(m, plugin_names[8], &info), CPEX_OK);
    assert_string_equal(info.hooks[0], hook_names[8]);
    cpex_plugin_info_cleanup(&info);
    tp_plugin *last = on_own_hook(9);
    last->config = "{\"last\": true}";
    tp_reg(m, last);
    json_t *cfg = cpex_manager_plugin_config(m, plugin_names[9]);
    assert_non_null(cfg);
    assert_true(json_is_true(json_object_get(cfg, "last")));
    json_decref(cfg);

    /* Refused at once against a registration nobody has published yet. */
    tp_reg(m, on_own_hook(10));
    tp_plugin *dup = tp_new(plugin_names[10], NULL);
    dup->hooks[0] = "t.other";
    cpex_error err = CPEX_ERROR_INIT;
    assert_int_equal(tp_reg_err(m, dup, &err), CPEX_E_EXISTS);
    assert_contains(cpex_error_message(&err), plugin_names[10]);
    cpex_error_cleanup(&err);
    assert_int_equal(atomic_load(&dup->destroy_calls), 1);
    tp_plugin *j = tp_new("json_doc", NULL);
    j->hooks[0] = "t.doc";
    j->payload_type = "json";
    tp_reg(m, j);
    tp_plugin *c = tp_new("cmf_doc", NULL);
    c->hooks[0] = "t.doc";
    c->payload_type = "cmf";
    assert_int_equal(tp_reg_err(m, c, &err), CPEX_E_TYPE);
    cpex_error_cleanup(&err);
    assert_int_equal(atomic_load(&c->destroy_calls), 1);

    /* Unregister finds a pending plugin; it is destroyed with its snapshot. */
    tp_plugin *gone = on_own_hook(11);
    tp_reg(m, gone);
    assert_int_equal(cpex_manager_unregister(m, plugin_names[11], &err), CPEX_OK);
    assert_int_equal(atomic_load(&gone->destroy_calls), 1);
    assert_false(cpex_manager_has_hooks_for(m, hook_names[11]));
    assert_int_equal(cpex_manager_plugin_count(m), 12);

    /* initialize and shutdown reach pending plugins; free destroys them. */
    tp_plugin *late = on_own_hook(12);
    tp_reg(m, late);
    tp_init(m);
    assert_int_equal(atomic_load(&late->init_calls), 1);
    assert_true(cpex_manager_is_initialized(m));
    tp_plugin *after = on_own_hook(13);
    tp_reg(m, after); /* initialized by the registration */
    cpex_manager_shutdown(m);
    assert_int_equal(atomic_load(&after->shutdown_calls), 1);
    tp_manager_free(m);
    assert_int_equal(atomic_load(&after->destroy_calls), 1);
    assert_int_equal(atomic_load(&ps[0]->destroy_calls), 1);
}

/* Out of memory, the publish of pending registrations fails and they stay
 * pending: a writer that then looks for them must not act as if they were
 * not registered (unregister saying "no plugin named", initialize leaving
 * them uninitialized). It fails with CPEX_E_NOMEM instead, and the same
 * call works once memory is back. */
static void out_of_memory_publishing_hides_nothing(void **state)
{
    (void)state;
    make_names("o");
    cpex_manager *m = tp_manager();
    tp_plugin *a = on_own_hook(0);
    tp_reg(m, a); /* pending */
    cpex_error err = CPEX_ERROR_INIT;
    cpex__alloc_fail_at(1); /* the publish's plugin list */
    assert_int_equal(cpex_manager_unregister(m, plugin_names[0], &err), CPEX_E_NOMEM);
    cpex__alloc_fail_at(0);
    assert_contains(cpex_error_message(&err), "retry");
    cpex_error_cleanup(&err);
    assert_int_equal(atomic_load(&a->destroy_calls), 0);

    cpex__alloc_fail_at(1);
    assert_int_equal(cpex_manager_initialize(m, &err), CPEX_E_NOMEM);
    cpex__alloc_fail_at(0);
    cpex_error_cleanup(&err);
    assert_int_equal(atomic_load(&a->init_calls), 0);
    assert_false(cpex_manager_is_initialized(m));

    /* Memory back: the same calls work, on the plugin. */
    tp_init(m);
    assert_int_equal(atomic_load(&a->init_calls), 1);
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    tp_run(m, hook_names[0], &res);
    assert_denied(&res, "mine", plugin_names[0]);
    cpex_pipeline_result_cleanup(&res);
    assert_int_equal(cpex_manager_unregister(m, plugin_names[0], &err), CPEX_OK);
    assert_int_equal(atomic_load(&a->destroy_calls), 1);
    tp_manager_free(m);
}

/* A host log sink that reads the manager while it logs (a common thing: it
 * adds the generation, or the plugin count, to each line). */
static cpex_manager *reading_sink_manager;
static uint64_t reading_sink_generation;
static int reading_sink_lines;

static void reading_sink(void *user, uint32_t level, const char *plugin, const char *message)
{
    (void)user;
    (void)level;
    (void)plugin;
    if (!strstr(message, "out of memory publishing"))
        return;
    reading_sink_lines++;
    reading_sink_generation = cpex_manager_generation(reading_sink_manager);
    (void)cpex_manager_plugin_count(reading_sink_manager);
}

/* The publish of a pending registration fails and logs; the sink reads the
 * registry from inside that log line (same thread, the lock held). It sees
 * the registry as it was, and the publish is neither repeated from inside
 * (once: two generations for one registration) nor lost: the next reader
 * publishes it, one generation. */
static void log_sink_reading_during_a_failed_publish(void **state)
{
    (void)state;
    make_names("l");
    cpex_manager_options o;
    cpex_manager_options_init(&o);
    o.log = reading_sink;
    cpex_manager *m = tp_manager_with(&o);
    reading_sink_manager = m;
    reading_sink_lines = 0;
    uint64_t g0 = cpex_manager_generation(m);
    tp_plugin *a = on_own_hook(0);
    tp_reg(m, a); /* pending: no reader in between */
    cpex__alloc_fail_at(1);
    size_t seen = cpex_manager_plugin_count(m); /* publishes first: fails, logs */
    cpex__alloc_fail_at(0);
    assert_int_equal(seen, 0); /* the registry as it was */
    assert_int_equal(reading_sink_lines, 1);
    assert_int_equal(reading_sink_generation, g0);
    /* Still short of memory at the next reader: retried, not said again. */
    cpex__alloc_fail_at(1);
    assert_int_equal(cpex_manager_plugin_count(m), 0);
    assert_true(cpex__alloc_failed());
    cpex__alloc_fail_at(0);
    assert_int_equal(reading_sink_lines, 1);
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    /* The next reader publishes: the plugin runs, one generation. */
    tp_init(m);
    tp_run(m, hook_names[0], &res);
    assert_denied(&res, "mine", plugin_names[0]);
    cpex_pipeline_result_cleanup(&res);
    assert_int_equal(cpex_manager_generation(m), g0 + 1);
    assert_int_equal(cpex_manager_plugin_count(m), 1);
    tp_manager_free(m);
}

static void free_destroys_pending(void **state)
{
    (void)state;
    make_names("f");
    cpex_manager *m = tp_manager();
    tp_init(m);
    tp_plugin *a = on_own_hook(0), *b = on_own_hook(1);
    tp_reg(m, a);
    tp_reg(m, b);
    /* No reader in between: both still pending when the manager goes. */
    tp_manager_free(m);
    assert_int_equal(atomic_load(&a->init_calls), 1);
    assert_int_equal(atomic_load(&a->shutdown_calls), 1);
    assert_int_equal(atomic_load(&a->destroy_calls), 1);
    assert_int_equal(atomic_load(&b->shutdown_calls), 1);
    assert_int_equal(atomic_load(&b->destroy_calls), 1);
}

/* ------------------------------------------------------------------ */
/* Threads                                                             */
/* ------------------------------------------------------------------ */

typedef struct race {
    cpex_manager *m;
    tp_plugin *plugins[MANY];
    atomic_int registered; /* registrations that returned */
    atomic_int failures;
    atomic_int invokes;
} race;

static void *registrar(void *arg)
{
    race *r = arg;
    for (int i = 0; i < MANY; i++) {
        cpex_error err = CPEX_ERROR_INIT;
        if (tp_reg_err(r->m, r->plugins[i], &err) != CPEX_OK)
            atomic_fetch_add(&r->failures, 1);
        cpex_error_cleanup(&err);
        atomic_store(&r->registered, i + 1);
    }
    return NULL;
}

static void *invoker(void *arg)
{
    race *r = arg;
    cpex_cmf_message *msg = test_text_message("hello");
    cpex_payload pl = cpex_payload_cmf(msg);
    while (atomic_load(&r->registered) < MANY) {
        int k = atomic_load(&r->registered);
        if (k == 0)
            continue;
        /* Registration k-1 returned before this invoke began: it runs. */
        cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
        cpex_manager_invoke(r->m, hook_names[k - 1], &pl, NULL, NULL, &res);
        if (res.continue_processing || !res.violation || strcmp(res.violation->code, "mine") != 0)
            atomic_fetch_add(&r->failures, 1);
        if (cpex_manager_plugin_count(r->m) < (size_t)k)
            atomic_fetch_add(&r->failures, 1);
        cpex_pipeline_result_cleanup(&res);
        atomic_fetch_add(&r->invokes, 1);
    }
    cpex_cmf_free(msg);
    return NULL;
}

static void register_beside_invokes(void **state)
{
    (void)state;
    make_names("c");
    race r;
    memset(&r, 0, sizeof r);
    r.m = tp_manager_workers(2);
    tp_init(r.m);
    for (int i = 0; i < MANY; i++)
        r.plugins[i] = on_own_hook(i);
    pthread_t inv[2], reg;
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&inv[i], NULL, invoker, &r), 0);
    assert_int_equal(pthread_create(&reg, NULL, registrar, &r), 0);
    pthread_join(reg, NULL);
    for (int i = 0; i < 2; i++)
        pthread_join(inv[i], NULL);
    assert_int_equal(atomic_load(&r.failures), 0);
    assert_int_equal(cpex_manager_plugin_count(r.m), MANY);
    for (int i = 0; i < MANY; i++)
        assert_int_equal(atomic_load(&r.plugins[i]->init_calls), 1);
    tp_manager_free(r.m);
    for (int i = 0; i < MANY; i++)
        assert_int_equal(atomic_load(&r.plugins[i]->destroy_calls), 1);
}

/* A handler that waits until a registration is pending and a writer on
 * another thread waits for readers (this invoke among them), then invokes
 * the new plugin's hook from inside. */
typedef struct nested {
    cpex_manager *m;
    atomic_int inside;     /* the outer handler runs */
    atomic_int registered; /* the registration returned */
    atomic_int writer_started;
    atomic_int nested_ok;
} nested;

static nested the_nested;

static int32_t nest_handler(tp_plugin *p, const cpex_call *call)
{
    (void)p, (void)call;
    nested *n = &the_nested;
    atomic_store(&n->inside, 1);
    while (!atomic_load(&n->writer_started))
        tp_sleep_ms(1);
    tp_sleep_ms(50); /* the writer holds the lock and waits for this reader */
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    cpex_cmf_message *msg = test_text_message("inner");
    cpex_payload pl = cpex_payload_cmf(msg);
    cpex_manager_invoke(n->m, "t.late", &pl, NULL, NULL, &res);
    if (!res.continue_processing && res.violation && strcmp(res.violation->code, "late") == 0)
        atomic_store(&n->nested_ok, 1);
    cpex_pipeline_result_cleanup(&res);
    cpex_cmf_free(msg);
    return CPEX_ALLOW;
}

static void *outer_invoke(void *arg)
{
    nested *n = arg;
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    cpex_cmf_message *msg = test_text_message("outer");
    cpex_payload pl = cpex_payload_cmf(msg);
    cpex_manager_invoke(n->m, "t.outer", &pl, NULL, NULL, &res);
    cpex_pipeline_result_cleanup(&res);
    cpex_cmf_free(msg);
    return NULL;
}

static void *unregister_other(void *arg)
{
    nested *n = arg;
    atomic_store(&n->writer_started, 1);
    cpex_status st = cpex_manager_unregister(n->m, "victim", NULL);
    return (void *)(intptr_t)st;
}

static void nested_invoke_beside_a_waiting_writer(void **state)
{
    (void)state;
    nested *n = &the_nested;
    memset(n, 0, sizeof *n);
    n->m = tp_manager();
    tp_plugin *outer = tp_new("outer", NULL);
    outer->hooks[0] = "t.outer";
    outer->custom = nest_handler;
    tp_plugin *victim = tp_new("victim", NULL);
    victim->hooks[0] = "t.victim";
    tp_reg(n->m, outer);
    tp_reg(n->m, victim);
    tp_init(n->m);
    pthread_t o, w;
    assert_int_equal(pthread_create(&o, NULL, outer_invoke, n), 0);
    while (!atomic_load(&n->inside))
        tp_sleep_ms(1);
    /* A registration left pending while the outer invoke runs. */
    tp_plugin *late = tp_denying(tp_new("late", NULL), "late", "the late plugin ran");
    late->hooks[0] = "t.late";
    tp_reg(n->m, late);
    assert_int_equal(pthread_create(&w, NULL, unregister_other, n), 0);
    pthread_join(o, NULL);
    void *rc = NULL;
    pthread_join(w, &rc);
    assert_int_equal((intptr_t)rc, CPEX_OK);
    assert_int_equal(atomic_load(&n->nested_ok), 1);
    assert_int_equal(tp_calls(late), 1);
    tp_manager_free(n->m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(register_then_invoke_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(queries_see_pending, setup, teardown),
        cmocka_unit_test_setup_teardown(free_destroys_pending, setup, teardown),
        cmocka_unit_test_setup_teardown(out_of_memory_publishing_hides_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(log_sink_reading_during_a_failed_publish, setup, teardown),
        cmocka_unit_test_setup_teardown(register_beside_invokes, setup, teardown),
        cmocka_unit_test_setup_teardown(nested_invoke_beside_a_waiting_writer, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
