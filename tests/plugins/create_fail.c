/* create_fail.c — a plugin whose create fails (not a config problem) with
   its own message. */
#include <cpex/plugin.h>

static int32_t create(const cpex_host_api *host, const cpex_plugin_config *config,
                      cpex_plugin_registration *out, char *err, size_t err_cap)
{
    (void)host;
    (void)config;
    (void)out;
    cpex_plugin_errorf(err, err_cap, "create_fail: cannot open model file /nonexistent/model.bin");
    return CPEX_CREATE_INIT_FAILED;
}

CPEX_PLUGIN(create, "create-fail", "1.0.0", "always fails to create", "cmf.tool_pre_invoke")
