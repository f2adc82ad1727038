/*
 * test_hook_handle.c — hooks resolved once (cpex_manager_hook) and invoked
 * by handle: the same results as by name, across registrations and
 * unregistrations, for hooks no plugin serves yet, and refused for another
 * manager's handle; invokes by name through the per-thread name cache never
 * see a stale or wrong hook. Also: many distinct hooks register in linear time (a
 * smoke check of the id-indexed registry: 2,000 hooks, no timing asserted).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "cpex/cpex.h"
#include "test_support.h"
/* after test_support.h */
#include "plugins.h"

#define PRE "cmf.tool_pre_invoke"

TP_FIXTURE;

static void invoke_handle(cpex_manager *m, const cpex_hook_handle *h, const char *text,
                          cpex_pipeline_result *res)
{
    cpex_cmf_message *msg = test_text_message(text);
    cpex_payload payload = cpex_payload_cmf(msg);
    cpex_pipeline_result_init(res);
    assert_int_equal(cpex_manager_invoke_hook(m, h, &payload, NULL, NULL, res), CPEX_OK);
    cpex_cmf_free(msg);
}

static void handle_follows_registrations(void **state)
{
    (void)state;
    cpex_manager *m = tp_manager();
    /* Resolved before any plugin serves it. */
    const cpex_hook_handle *h = cpex_manager_hook(m, PRE, NULL);
    assert_non_null(h);
    assert_string_equal(cpex_hook_handle_name(h), PRE);
    assert_ptr_equal(cpex_manager_hook(m, PRE, NULL), h); /* one handle per name */
    tp_init(m);
    cpex_pipeline_result res;
    invoke_handle(m, h, "hello", &res);
    assert_allowed(&res);
    cpex_pipeline_result_cleanup(&res);

    tp_plugin *d = tp_denying(tp_new("denier", &trace), "x.no", "no");
    tp_reg(m, d);
    invoke_handle(m, h, "hello", &res);
    assert_denied(&res, "x.no", "denier");
    cpex_pipeline_result_cleanup(&res);
    assert_int_equal(tp_calls(d), 1);

    /* A hook first seen after the registry was built. */
    const cpex_hook_handle *later = cpex_manager_hook(m, "host.later", NULL);
    invoke_handle(m, later, "hello", &res);
    assert_allowed(&res);
    cpex_pipeline_result_cleanup(&res);

    assert_int_equal(cpex_manager_unregister(m, "denier", NULL), CPEX_OK);
    invoke_handle(m, h, "hello", &res);
    assert_allowed(&res);
    cpex_pipeline_result_cleanup(&res);
    assert_int_equal(tp_calls(d), 1);
    tp_manager_free(m);
}

static void handle_matches_invoke_by_name(void **state)
{
    (void)state;
    cpex_manager *m = tp_manager();
    tp_plugin *a = tp_new_in("a", &trace, CPEX_MODE_SEQUENTIAL, 1);
    a->append_text = "+a";
    tp_plugin *b = tp_new_in("b", &trace, CPEX_MODE_TRANSFORM, 2);
    b->append_text = "+b";
    tp_reg(m, a);
    tp_reg(m, b);
    tp_init(m);
    const cpex_hook_handle *h = cpex_manager_hook(m, PRE, NULL);
    cpex_pipeline_result by_handle, by_name = CPEX_PIPELINE_RESULT_INIT;
    invoke_handle(m, h, "x", &by_handle);
    tp_run(m, PRE, &by_name);
    assert_true(by_handle.payload_modified && by_name.payload_modified);
    assert_string_equal(tp_final_text(&by_handle, NULL), "x+a+b");
    assert_string_equal(tp_final_text(&by_name, NULL), "hello+a+b");
    cpex_pipeline_result_cleanup(&by_handle);
    cpex_pipeline_result_cleanup(&by_name);
    tp_manager_free(m);
}

static void foreign_and_null_handles_refused(void **state)
{
    (void)state;
    cpex_manager *m1 = tp_manager(), *m2 = tp_manager();
    const cpex_hook_handle *h2 = cpex_manager_hook(m2, PRE, NULL);
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    assert_int_equal(cpex_manager_invoke_hook(m1, h2, NULL, NULL, NULL, &res), CPEX_E_INVALID);
    assert_denied(&res, "invalid_argument", NULL);
    assert_non_null(strstr(res.violation->reason, "another manager"));
    cpex_pipeline_result_cleanup(&res);
    assert_int_equal(cpex_manager_invoke_hook(m1, NULL, NULL, NULL, NULL, &res), CPEX_E_INVALID);
    cpex_pipeline_result_cleanup(&res);
    cpex_error err = CPEX_ERROR_INIT;
    assert_null(cpex_manager_hook(NULL, PRE, &err));
    assert_int_equal(err.code, CPEX_E_INVALID);
    cpex_error_cleanup(&err);
    assert_null(cpex_hook_handle_name(NULL));
    tp_manager_free(m1);
    tp_manager_free(m2);
}

/* 2,000 plugins, each on a hook of its own, registered one at a time:
 * every hook reachable by name and by handle afterwards. */
static void many_distinct_hooks(void **state)
{
    (void)state;
    enum { N = 2000 };
    static char names[N][32], hooks[N][32];
    cpex_manager *m = tp_manager();
    for (int i = 0; i < N; i++) {
        snprintf(names[i], sizeof names[i], "p%04d", i);
        snprintf(hooks[i], sizeof hooks[i], "host.h%04d", i);
        tp_plugin *p = tp_new(names[i], &trace);
        p->hooks[0] = hooks[i];
        tp_reg(m, p);
    }
    tp_init(m);
    for (int i = 0; i < N; i += 97) {
        const cpex_hook_handle *h = cpex_manager_hook(m, hooks[i], NULL);
        cpex_pipeline_result res;
        invoke_handle(m, h, "x", &res);
        assert_allowed(&res);
        cpex_pipeline_result_cleanup(&res);
        assert_true(cpex_manager_has_hooks_for(m, hooks[i]));
    }
    tp_manager_free(m);
}

/* An invoke by name, then a cleanup, expecting a deny by `plugin` with
 * `code`, or (plugin NULL) an allow with no plugin run. */
static void by_name(cpex_manager *m, const char *hook, const char *code, const char *plugin)
{
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    tp_run(m, hook, &res);
    if (plugin) {
        assert_denied(&res, code, plugin);
    } else {
        assert_allowed(&res);
        assert_true(res.no_plugin_ran);
    }
    cpex_pipeline_result_cleanup(&res);
}

#define LONG_HOOK "host.a_hook_name_longer_than_the_name_cache_keeps"

/* Invokes by name go through a small per-thread cache of recent names
 * (invoke.c). It must never answer for a name with another name's hook,
 * with a hook of a registry a change replaced, or with another manager's
 * hook: one buffer rewritten between invokes (the same pointer, other
 * names), misses that become hooks, unregistration, the two spellings of
 * a prompt hook, names too long to keep, and a new manager. */
static void invoke_by_name_follows_every_change(void **state)
{
    (void)state;
    cpex_manager *m = tp_manager();
    tp_reg(m, tp_denying(tp_on_hooks(tp_new("a", &trace), "host.aaaa", NULL), "x.a", "a"));
    tp_reg(m, tp_denying(tp_on_hooks(tp_new("b", &trace), "host.bbbb", NULL), "x.b", "b"));
    tp_reg(m,
           tp_denying(tp_on_hooks(tp_new("p", &trace), "cmf.prompt_pre_fetch", NULL), "x.p", "p"));
    tp_reg(m, tp_denying(tp_on_hooks(tp_new("l", &trace), LONG_HOOK, NULL), "x.l", "l"));
    tp_init(m);
    char buf[64];
    for (int round = 0; round < 2; round++) { /* the second round hits the cache */
        strcpy(buf, "host.aaaa");
        by_name(m, buf, "x.a", "a");
        strcpy(buf, "host.bbbb");
        by_name(m, buf, "x.b", "b");
        strcpy(buf, "host.cccc");
        by_name(m, buf, NULL, NULL);
        strcpy(buf, "host.aaa"); /* a prefix */
        by_name(m, buf, NULL, NULL);
        strcpy(buf, "cmf.prompt_pre_invoke"); /* the other spelling */
        by_name(m, buf, "x.p", "p");
        strcpy(buf, "cmf.prompt_pre_fetch");
        by_name(m, buf, "x.p", "p");
        strcpy(buf, LONG_HOOK);
        by_name(m, buf, "x.l", "l");
        buf[strlen(buf) - 1] = '?'; /* a long name nobody serves */
        by_name(m, buf, NULL, NULL);
    }
    /* A name missed, then served: the registration is a new registry. */
    strcpy(buf, "host.cccc");
    by_name(m, buf, NULL, NULL);
    tp_reg(m, tp_denying(tp_on_hooks(tp_new("c", &trace), "host.cccc", NULL), "x.c", "c"));
    by_name(m, buf, "x.c", "c");
    /* And served no more. */
    strcpy(buf, "host.aaaa");
    by_name(m, buf, "x.a", "a");
    assert_int_equal(cpex_manager_unregister(m, "a", NULL), CPEX_OK);
    by_name(m, buf, NULL, NULL);
    tp_manager_free(m);
    /* A new manager (perhaps at the same address, its registry too): none
       of the first one's hooks. */
    m = tp_manager();
    tp_init(m);
    strcpy(buf, "host.bbbb");
    by_name(m, buf, NULL, NULL);
    strcpy(buf, "cmf.prompt_pre_invoke");
    by_name(m, buf, NULL, NULL);
    tp_manager_free(m);
}

/* One invoke of `hook` by name and one by handle `h`, each done twice (the
 * second answer of an empty hook comes from the fast paths of invoke.c,
 * which skip the registry): every answer is the expected one, and carries
 * the manager's generation. plugin NULL: allowed, no plugin ran; else
 * denied with `code` by `plugin`. */
static void both_ways(cpex_manager *m, const char *hook, const cpex_hook_handle *h,
                      const char *code, const char *plugin)
{
    uint64_t generation = cpex_manager_generation(m);
    for (int i = 0; i < 4; i++) {
        cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
        if (i < 2)
            tp_run(m, hook, &res);
        else
            invoke_handle(m, h, "hello", &res);
        if (plugin) {
            assert_denied(&res, code, plugin);
            assert_false(res.no_plugin_ran);
        } else if (code) {
            assert_denied(&res, code, NULL);
            assert_true(res.no_plugin_ran);
        } else {
            assert_allowed(&res);
            assert_true(res.no_plugin_ran);
        }
        assert_int_equal(res.generation, generation);
        cpex_pipeline_result_cleanup(&res);
    }
}

/* A hook with nothing to run is answered without entering the registry
 * (the manager's live generation and a word per hook name, publish.c):
 * the answer follows every change, of the hook itself (a plugin comes and
 * goes, also one still pending publication) and of others (the generation
 * it reports), for a handle resolved before and after the last publish. */
static void empty_answers_follow_the_live_registry(void **state)
{
    (void)state;
    cpex_manager *m = tp_manager();
    const cpex_hook_handle *early = cpex_manager_hook(m, "host.empty", NULL);
    tp_init(m);
    both_ways(m, "host.empty", early, NULL, NULL);
    /* Another hook changes: a new generation, still nothing to run here. */
    tp_reg(m, tp_on_hooks(tp_new("other", &trace), "host.other", NULL));
    both_ways(m, "host.empty", early, NULL, NULL);
    /* Resolved after the last publish: a name the live registry never saw. */
    const cpex_hook_handle *late = cpex_manager_hook(m, "host.late", NULL);
    both_ways(m, "host.late", late, NULL, NULL);
    /* The hook gains a plugin: the next invoke runs it, by either way. */
    tp_reg(m,
           tp_denying(tp_on_hooks(tp_new("guard", &trace), "host.empty", "host.late"), "x.g", "g"));
    both_ways(m, "host.empty", early, "x.g", "guard");
    both_ways(m, "host.late", late, "x.g", "guard");
    /* And loses it. */
    assert_int_equal(cpex_manager_unregister(m, "guard", NULL), CPEX_OK);
    both_ways(m, "host.empty", early, NULL, NULL);
    both_ways(m, "host.late", late, NULL, NULL);
    /* A registration not yet published when the invoke comes (registered
       after initialize: it waits for the next reader, publish.c). */
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    invoke_handle(m, early, "hello", &res); /* the fast path is warm */
    cpex_pipeline_result_cleanup(&res);
    tp_reg(m, tp_denying(tp_on_hooks(tp_new("again", &trace), "host.empty", NULL), "x.a", "a"));
    invoke_handle(m, early, "hello", &res);
    assert_denied(&res, "x.a", "again");
    cpex_pipeline_result_cleanup(&res);
    both_ways(m, "host.empty", early, "x.a", "again");
    tp_manager_free(m);
}

/* The unknown_hook deny holds on the fast paths too. */
static void empty_answers_keep_the_unknown_hook_deny(void **state)
{
    (void)state;
    cpex_manager_options o;
    cpex_manager_options_init(&o);
    o.unknown_hook = CPEX_UNKNOWN_HOOK_DENY;
    cpex_manager *m = tp_manager_with(&o);
    tp_reg(m, tp_new("served", &trace));
    tp_init(m);
    const cpex_hook_handle *h = cpex_manager_hook(m, "host.nobody", NULL);
    both_ways(m, "host.nobody", h, "unknown_hook", NULL);
    tp_manager_free(m);
}

/* Names at the edge of what the name cache copies (24 bytes): each
 * answered right when empty, served, and empty again, and one buffer that
 * holds a cached empty name and then its prefix or a longer name. */
static void empty_answers_at_the_name_cache_edges(void **state)
{
    (void)state;
    static const char *const names[] = {"host.name_of_23_bytes_x", "host.name_of_24_bytes_xy",
                                        "host.name_of_25_bytes_xyz"};
    cpex_manager *m = tp_manager();
    tp_init(m);
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(strlen(names[i]), 23 + i);
        const cpex_hook_handle *h = cpex_manager_hook(m, names[i], NULL);
        char plugin[16];
        snprintf(plugin, sizeof plugin, "p%zu", i);
        both_ways(m, names[i], h, NULL, NULL);
        tp_reg(m, tp_denying(tp_on_hooks(tp_new(plugin, &trace), names[i], NULL), "x.e", "e"));
        both_ways(m, names[i], h, "x.e", plugin);
        assert_int_equal(cpex_manager_unregister(m, plugin, NULL), CPEX_OK);
        both_ways(m, names[i], h, NULL, NULL);
    }
    /* One buffer: a cached empty name, then names it is a prefix of or
       that are a prefix of it, one of them served. */
    tp_reg(m, tp_denying(tp_on_hooks(tp_new("short", &trace), "host.name_of_23_bytes_", NULL),
                         "x.s", "s"));
    char buf[64];
    for (int round = 0; round < 2; round++) {
        strcpy(buf, "host.name_of_23_bytes_x");
        by_name(m, buf, NULL, NULL);
        buf[22] = '\0'; /* "host.name_of_23_bytes_": served */
        by_name(m, buf, "x.s", "short");
        strcpy(buf, "host.name_of_23_bytes_xy");
        by_name(m, buf, NULL, NULL);
    }
    tp_manager_free(m);
}

/* Invokes of a hook that a writer keeps giving a plugin and taking it
 * away, from another thread, by name and by handle: every answer must be
 * the one of the generation it reports. The writer checks that each
 * change is one generation, so the plugin is there exactly in the odd
 * generations after the start. Between them the reader invokes a hook
 * that is always served (through the registry): no answer may report a
 * generation older than one the thread saw before. The windows these
 * checks guard are a few instructions wide (a publish between storing the
 * snapshot and the live words; a registration flushed between two loads),
 * so a run catches a regression there only by chance; the order itself is
 * argued in publish.c. */
enum { FLIPS = 200 };

typedef struct flip_reader {
    cpex_manager *m;
    const cpex_hook_handle *h;
    uint64_t g0;
    _Atomic int stop;
    _Atomic long invokes;
    long wrong, backwards;
} flip_reader;

static void *flip_read(void *arg)
{
    flip_reader *r = arg;
    cpex_cmf_message *msg = test_text_message("hello");
    cpex_payload payload = cpex_payload_cmf(msg);
    uint64_t last = 0;
    /* Bounded: the writer stops it, else it stops by itself after 60 s. */
    int64_t until = tp_now_ns() + 60 * (int64_t)1000000000;
    for (long i = 0; !atomic_load(&r->stop) && ((i & 1023) || tp_now_ns() < until); i++) {
        cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
        if (i % 3 == 2) {
            /* A hook always served: read through the registry, so a later
               fast answer must not report an older generation. */
            cpex_manager_invoke(r->m, "host.served", &payload, NULL, NULL, &res);
            if (res.no_plugin_ran || !res.continue_processing)
                r->wrong++;
        } else {
            if (i % 3 == 1)
                cpex_manager_invoke_hook(r->m, r->h, &payload, NULL, NULL, &res);
            else
                cpex_manager_invoke(r->m, "host.flip", &payload, NULL, NULL, &res);
            bool served = ((res.generation - r->g0) & 1) != 0;
            bool ran = !res.no_plugin_ran;
            bool denied = !res.continue_processing;
            if (served != ran || ran != denied)
                r->wrong++;
        }
        if (res.generation < last)
            r->backwards++;
        last = res.generation;
        atomic_fetch_add(&r->invokes, 1);
        cpex_pipeline_result_cleanup(&res);
    }
    cpex_cmf_free(msg);
    return NULL;
}

static void empty_answers_race_with_changes(void **state)
{
    (void)state;
    cpex_manager *m = tp_manager();
    tp_reg(m, tp_on_hooks(tp_new("served", &trace), "host.served", NULL));
    tp_init(m);
    static flip_reader r;
    memset(&r, 0, sizeof r);
    r.m = m;
    r.h = cpex_manager_hook(m, "host.flip", NULL);
    r.g0 = cpex_manager_generation(m);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, flip_read, &r), 0);
    uint64_t g = r.g0;
    for (int i = 0; i < FLIPS; i++) {
        /* Let the reader invoke a few times on each generation (at most
           about a second of waiting per change). */
        long seen = atomic_load(&r.invokes);
        for (int wait = 0; wait < 1000 && atomic_load(&r.invokes) < seen + 4; wait++)
            tp_sleep_ms(1);
        if (i % 2 == 0)
            tp_reg(m,
                   tp_denying(tp_on_hooks(tp_new("flip", &trace), "host.flip", NULL), "x.f", "f"));
        else
            assert_int_equal(cpex_manager_unregister(m, "flip", NULL), CPEX_OK);
        uint64_t now = cpex_manager_generation(m); /* publishes a pending registration */
        assert_int_equal(now, g + 1);
        g = now;
    }
    atomic_store(&r.stop, 1);
    pthread_join(th, NULL);
    assert_true(atomic_load(&r.invokes) >= FLIPS);
    assert_int_equal(r.wrong, 0);
    assert_int_equal(r.backwards, 0);
    tp_manager_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(handle_follows_registrations),
        cmocka_unit_test(handle_matches_invoke_by_name),
        cmocka_unit_test(foreign_and_null_handles_refused),
        cmocka_unit_test(many_distinct_hooks),
        cmocka_unit_test(invoke_by_name_follows_every_change),
        cmocka_unit_test(empty_answers_follow_the_live_registry),
        cmocka_unit_test(empty_answers_keep_the_unknown_hook_deny),
        cmocka_unit_test(empty_answers_at_the_name_cache_edges),
        cmocka_unit_test(empty_answers_race_with_changes),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
