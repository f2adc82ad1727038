/*
 * test_compat.c — plugins built against frozen older SDK headers load and
 * work in the current host (DESIGN.md, ABI principle 2).
 */
#include "test_support.h"

#include <string.h>

#include <cpex/cpex.h>

static cpex_manager *load(const char *lib)
{
    char yaml[1024];
    snprintf(yaml, sizeof yaml,
             "plugins:\n"
             "  - name: old\n"
             "    kind: \"lib:%s/%s\"\n"
             "    hooks: [cmf.tool_pre_invoke]\n",
             CPEX_PLUGIN_DIR, lib);
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

static void invoke_tool(cpex_manager *m, const char *tool, cpex_pipeline_result *res)
{
    char json[512];
    snprintf(json, sizeof json,
             "{\"role\":\"assistant\",\"content\":[{\"content_type\":\"tool_call\",\"content\":"
             "{\"tool_call_id\":\"1\",\"name\":\"%s\",\"arguments\":{\"q\":1}}}]}",
             tool);
    cpex_cmf_message *msg = cpex_cmf_parse(json, strlen(json), NULL);
    assert_non_null(msg);
    cpex_payload p = cpex_payload_cmf(msg);
    cpex_manager_invoke(m, "cmf.tool_pre_invoke", &p, NULL, NULL, res);
    cpex_cmf_free(msg);
}

static void test_v1_0_plugin_loads_and_works(void **state)
{
    (void)state;
    cpex_manager *m = load("libcompat_v1_0.so");
    cpex_plugin_info info = CPEX_PLUGIN_INFO_INIT;
    assert_int_equal(cpex_manager_plugin_info(m, "old", &info), CPEX_OK);
    assert_string_equal(info.reported_name, "compat-1.0");
    cpex_plugin_info_cleanup(&info);

    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    invoke_tool(m, "search", &res);
    assert_true(res.continue_processing);
    assert_non_null(res.metadata);
    assert_string_equal(json_string_value(json_object_get(res.metadata, "compat_abi")), "1.0");
    assert_non_null(res.context);
    assert_true(json_is_true(cpex_context_table_local(res.context, "old", "seen")));
    cpex_pipeline_result_cleanup(&res);

    invoke_tool(m, "forbidden", &res);
    assert_false(res.continue_processing);
    assert_string_equal(res.violation->code, "compat.denied");
    assert_string_equal(res.violation->plugin_name, "old");
    cpex_pipeline_result_cleanup(&res);
    cpex_manager_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_v1_0_plugin_loads_and_works),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
