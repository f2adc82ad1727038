/* bad_status.c — an entry point that returns a status no ABI version
   defines (42), with a message. The host must say so and keep the text. */
#include <cpex/plugin.h>

static int32_t create(const cpex_host_api *host, const cpex_plugin_config *config,
                      cpex_plugin_registration *out, char *err, size_t err_cap)
{
    (void)host;
    (void)config;
    (void)out;
    cpex_plugin_errorf(err, err_cap, "bad_status: something odd");
    return 42;
}

CPEX_PLUGIN(create, "bad-status", "1.0.0", "returns an unknown status", "cmf.tool_pre_invoke")
