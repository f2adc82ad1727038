/*
 * dup_host.c — a plugin that carries its own copy of the host: it defines
 * cpex_host_api_get (as a plugin that statically embeds libcpex would),
 * whose table has another host_identity than the host loading it. The
 * SDK's duplicated-host check must refuse the create.
 */
#include <cpex/plugin.h>

static const int embedded_identity;
static const cpex_host_api embedded = {
    .struct_size = (uint32_t)sizeof(cpex_host_api),
    .abi_version = CPEX_ABI_VERSION,
    .host_identity = &embedded_identity,
};

/* Hidden like every other symbol of the plugin: only the SDK's weak
   reference inside this library sees it. */
const cpex_host_api *cpex_host_api_get(void);
const cpex_host_api *cpex_host_api_get(void) { return &embedded; }

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
    out->name = "dup-host";
    out->version = "1.0.0";
    out->handler_count = 1;
    out->handlers = handlers;
    return CPEX_PLUGIN_OK;
}

CPEX_PLUGIN(create, "dup-host", "1.0.0", "embeds its own host", "cmf.tool_pre_invoke")
