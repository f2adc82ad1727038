/*
 * test_hook_handle.c — hooks resolved once (cpex_manager_hook) and invoked
 * by handle: the same results as by name, across registrations and
 * unregistrations, for hooks no plugin serves yet, and refused for another
 * manager's handle; invokes by name through the per-thread name cache never
 * see a stale or wrong hook. Also: many distinct hooks register in linear time (a
 * smoke check of the id-indexed registry: 2,000 hooks, no timing asserted).
 */
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(handle_follows_registrations),
        cmocka_unit_test(handle_matches_invoke_by_name),
        cmocka_unit_test(foreign_and_null_handles_refused),
        cmocka_unit_test(many_distinct_hooks),
        cmocka_unit_test(invoke_by_name_follows_every_change),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
