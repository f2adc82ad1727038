/*
 * test_logging.c — plugins' log lines reach the manager's sink under the
 * plugin's name, inside handler calls and outside them (initialize,
 * shutdown, destroy), and the level filter applies.
 */
#include "test_support.h"

#include <stdio.h>
#include <string.h>

#include <cpex/cpex.h>

typedef struct sink {
    char lines[16][256];
    int count;
} sink;

static void capture(void *user, uint32_t level, const char *plugin, const char *message)
{
    sink *s = user;
    if (s->count < 16)
        snprintf(s->lines[s->count++], 256, "%u|%s|%s", level, plugin ? plugin : "-", message);
}

static int32_t init_logs(void *instance, char *err, size_t cap)
{
    (void)instance;
    (void)err;
    (void)cap;
    cpex_host_api_get()->log(NULL, CPEX_LOG_WARN, "warming up");
    return 0;
}

static void destroy_logs(void *instance)
{
    (void)instance;
    cpex_host_api_get()->log(NULL, CPEX_LOG_ERROR, "going away");
}

static int32_t handler_logs(void *instance, const cpex_call *call)
{
    (void)instance;
    cpex_host_api_get()->log(call, CPEX_LOG_WARN, "in a call");
    cpex_host_api_get()->log(call, CPEX_LOG_DEBUG, "too chatty");
    return CPEX_ALLOW;
}

static const cpex_handler_reg handlers[] = {
    CPEX_HANDLER("cmf.tool_pre_invoke", handler_logs, "cmf")};

static void test_plugin_logs_reach_the_sink_with_the_plugin_name(void **state)
{
    (void)state;
    sink s;
    memset(&s, 0, sizeof s);
    cpex_manager_options o;
    cpex_manager_options_init(&o);
    o.log = capture;
    o.log_user = &s;
    o.log_level = CPEX_LOG_WARN;
    cpex_manager *m = NULL;
    cpex_error err = CPEX_ERROR_INIT;
    assert_int_equal(cpex_manager_new(&o, &m, &err), CPEX_OK);
    cpex_plugin_spec spec;
    cpex_plugin_spec_init(&spec);
    spec.name = "chatty";
    cpex_plugin_registration reg;
    memset(&reg, 0, sizeof reg);
    reg.struct_size = sizeof reg;
    reg.abi_version = CPEX_ABI_VERSION;
    reg.initialize = init_logs;
    reg.destroy = destroy_logs;
    reg.handler_count = 1;
    reg.handlers = handlers;
    assert_int_equal(cpex_manager_register(m, &spec, &reg, &err), CPEX_OK);
    assert_int_equal(cpex_manager_initialize(m, &err), CPEX_OK);

    cpex_cmf_message *msg = cpex_cmf_new(CPEX_ROLE_USER);
    cpex_cmf_append_text(msg, CPEX_PART_TEXT, "hi", 2);
    cpex_payload p = cpex_payload_cmf(msg);
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    cpex_manager_invoke(m, "cmf.tool_pre_invoke", &p, NULL, NULL, &res);
    cpex_pipeline_result_cleanup(&res);
    cpex_cmf_free(msg);
    cpex_manager_free(m);

    assert_int_equal(s.count, 3);
    assert_string_equal(s.lines[0], "2|chatty|warming up");
    assert_string_equal(s.lines[1], "2|chatty|in a call");
    assert_string_equal(s.lines[2], "3|chatty|going away");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plugin_logs_reach_the_sink_with_the_plugin_name),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
