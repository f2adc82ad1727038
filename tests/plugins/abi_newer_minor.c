/* abi_newer_minor.c — a plugin that claims ABI 1.99 (a minor newer than
   the host's): its manifest and its entry point both say so. The host must
   refuse it with both versions in the message. */
#define CPEX_PLUGIN_ABI_MAJOR 1u
#define CPEX_PLUGIN_ABI_MINOR 99u
#include <cpex/plugin.h>

static int32_t allow(void *instance, const cpex_call *call)
{
    (void)instance;
    (void)call;
    return CPEX_ALLOW;
}

static const cpex_handler_reg handlers[] = {{"cmf.tool_pre_invoke", allow, "cmf"}};

static int32_t create(const cpex_host_api *host, const cpex_plugin_config *config,
                      cpex_plugin_registration *out, char *err, size_t err_cap)
{
    (void)host;
    (void)config;
    (void)err;
    (void)err_cap;
    out->name = "abi-newer-minor";
    out->version = "1.99.0";
    out->handler_count = 1;
    out->handlers = handlers;
    return CPEX_PLUGIN_OK;
}

CPEX_PLUGIN(create, "abi-newer-minor", "1.99.0", "claims ABI 1.99", "cmf.tool_pre_invoke")
