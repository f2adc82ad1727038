/*
 * test_compat.c — plugins built against frozen older SDK headers load and
 * work in the current host (DESIGN.md, ABI principle 2): one per minor
 * (tests/compat/v1_<n>/), each with that minor's own headers.
 */
#include "test_support.h"

#include <string.h>

#include <cpex/cpex.h>

/* A manager with `lib` loaded as plugin 'old' on `hooks`, initialized. */
static cpex_manager *load(const char *lib, const char *hooks)
{
    char yaml[1024];
    snprintf(yaml, sizeof yaml,
             "plugins:\n"
             "  - name: old\n"
             "    kind: \"lib:%s/%s\"\n"
             "    hooks: [%s]\n",
             CPEX_PLUGIN_DIR, lib, hooks);
    cpex_error err = CPEX_ERROR_INIT;
    cpex_manager *m = NULL;
    assert_int_equal(cpex_manager_new(NULL, &m, &err), CPEX_OK);
    assert_int_equal(cpex_loader_register(m, &err), CPEX_OK);
    cpex_status st = cpex_manager_load_string(m, yaml, strlen(yaml), "compat.yaml", NULL, &err);
    if (st != CPEX_OK)
        print_error("%s\n", cpex_error_message(&err));
    assert_int_equal(st, CPEX_OK);
    assert_int_equal(cpex_manager_initialize(m, &err), CPEX_OK);
    cpex_error_cleanup(&err);
    return m;
}

static void invoke_tool(cpex_manager *m, const char *hook, const char *tool,
                        cpex_pipeline_result *res)
{
    char json[512];
    snprintf(json, sizeof json,
             "{\"role\":\"assistant\",\"content\":[{\"content_type\":\"tool_call\",\"content\":"
             "{\"tool_call_id\":\"1\",\"name\":\"%s\",\"arguments\":{\"q\":1}}}]}",
             tool);
    cpex_cmf_message *msg = cpex_cmf_parse(json, strlen(json), NULL);
    assert_non_null(msg);
    cpex_payload p = cpex_payload_cmf(msg);
    assert_int_equal(cpex_manager_invoke(m, hook, &p, NULL, NULL, res), CPEX_OK);
    cpex_cmf_free(msg);
}

/* The pre hook of every compat plugin: metadata, context, and a deny. */
static void expect_pre_hook_works(cpex_manager *m, const char *name, const char *abi)
{
    cpex_plugin_info info = CPEX_PLUGIN_INFO_INIT;
    assert_int_equal(cpex_manager_plugin_info(m, "old", &info), CPEX_OK);
    assert_string_equal(info.reported_name, name);
    cpex_plugin_info_cleanup(&info);

    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    invoke_tool(m, "cmf.tool_pre_invoke", "search", &res);
    assert_true(res.continue_processing);
    assert_non_null(res.metadata);
    assert_string_equal(json_string_value(json_object_get(res.metadata, "compat_abi")), abi);
    assert_non_null(res.context);
    assert_true(json_is_true(cpex_context_table_local(res.context, "old", "seen")));
    cpex_pipeline_result_cleanup(&res);

    invoke_tool(m, "cmf.tool_pre_invoke", "forbidden", &res);
    assert_false(res.continue_processing);
    assert_string_equal(res.violation->code, "compat.denied");
    assert_string_equal(res.violation->plugin_name, "old");
    cpex_pipeline_result_cleanup(&res);
}

/* 1.0: a 72-byte (LP64) registration without handler_size. */
static void test_v1_0_plugin_loads_and_works(void **state)
{
    (void)state;
    cpex_manager *m = load("libcompat_v1_0.so", "cmf.tool_pre_invoke");
    expect_pre_hook_works(m, "compat-1.0", "1.0");
    cpex_manager_free(m);
}

/* 1.1: handler_size set by its SDK; two handlers walked with that stride. */
static void test_v1_1_plugin_loads_and_works(void **state)
{
    (void)state;
    cpex_manager *m = load("libcompat_v1_1.so", "cmf.tool_pre_invoke, cmf.tool_post_invoke");
    expect_pre_hook_works(m, "compat-1.1", "1.1");
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    for (json_int_t n = 1; n <= 2; n++) {
        invoke_tool(m, "cmf.tool_post_invoke", "search", &res);
        assert_true(res.continue_processing);
        assert_true(json_is_true(json_object_get(res.metadata, "compat_post")));
        /* the state slot reached this host's backend: it counts */
        assert_int_equal(json_integer_value(json_object_get(res.metadata, "compat_posts")), n);
        cpex_pipeline_result_cleanup(&res);
    }
    cpex_manager_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_v1_0_plugin_loads_and_works),
        cmocka_unit_test(test_v1_1_plugin_loads_and_works),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
