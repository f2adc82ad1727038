/*
 * test_hook_handle.c — hooks resolved once (cpex_manager_hook) and invoked
 * by handle: the same results as by name, across registrations and
 * unregistrations, for hooks no plugin serves yet, and refused for another
 * manager's handle. Also: many distinct hooks register in linear time (a
 * smoke check of the id-indexed registry: 2,000 hooks, no timing asserted).
 */
#include <stdio.h>
#include <string.h>

#include "cpex/cpex.h"
#include "test_support.h"
/* after test_support.h */
#include "plugins.h"

#define PRE "cmf.tool_pre_invoke"

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(handle_follows_registrations),
        cmocka_unit_test(handle_matches_invoke_by_name),
        cmocka_unit_test(foreign_and_null_handles_refused),
        cmocka_unit_test(many_distinct_hooks),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
