/*
 * test_logging.c — plugins' log lines reach the manager's sink under the
 * plugin's name, inside handler calls and outside them (initialize,
 * shutdown, destroy), and the level filter applies.
 */
#include "test_support.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

    cpex_cmf_message *msg = test_text_message("hi");
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

static int32_t handler_forges(void *instance, const cpex_call *call)
{
    (void)instance;
    cpex_host_api_get()->log(call, CPEX_LOG_WARN,
                             "forged\nsummary: all fine\x1b[2J\xc2\x9b"
                             "31m\xff");
    return CPEX_ALLOW;
}

static const cpex_handler_reg forge_handlers[] = {
    CPEX_HANDLER("cmf.tool_pre_invoke", handler_forges, "cmf")};

/* Without a sink the lines go to stderr: the plugin's name (the operator's,
   from YAML) and its words are escaped, one log line is one line. */
static void test_default_sink_escapes_name_and_message(void **state)
{
    (void)state;
    char path[] = "/tmp/cpex_test_stderr_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    assert_true(dup2(fd, STDERR_FILENO) >= 0);

    cpex_manager *m = NULL;
    cpex_error err = CPEX_ERROR_INIT;
    assert_int_equal(cpex_manager_new(NULL, &m, &err), CPEX_OK);
    cpex_plugin_spec spec;
    cpex_plugin_spec_init(&spec);
    spec.name = "evil\nsummary: by the name\x1b]0;title\x07";
    cpex_plugin_registration reg;
    memset(&reg, 0, sizeof reg);
    reg.struct_size = sizeof reg;
    reg.abi_version = CPEX_ABI_VERSION;
    reg.handler_count = 1;
    reg.handlers = forge_handlers;
    assert_int_equal(cpex_manager_register(m, &spec, &reg, &err), CPEX_OK);
    assert_int_equal(cpex_manager_initialize(m, &err), CPEX_OK);
    cpex_cmf_message *msg = cpex_cmf_new(CPEX_ROLE_USER);
    cpex_payload p = cpex_payload_cmf(msg);
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    cpex_manager_invoke(m, "cmf.tool_pre_invoke", &p, NULL, NULL, &res);
    cpex_pipeline_result_cleanup(&res);
    cpex_cmf_free(msg);
    cpex_manager_free(m);

    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    close(fd);
    size_t len = 0;
    char *text = test_read_file(path, &len);
    unlink(path);
    assert_non_null(text);
    assert_string_equal(text,
                        "cpex: [warn] plugin 'evil\\nsummary: by the name\\x1b]0;title\\x07': "
                        "forged\\nsummary: all fine\\x1b[2J\\u009b31m\\xff\n");
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plugin_logs_reach_the_sink_with_the_plugin_name),
        cmocka_unit_test(test_default_sink_escapes_name_and_message),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
