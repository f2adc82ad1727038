/*
 * reg_newer.c — a hand-written plugin (no manifest, no handshake) whose
 * create succeeds but whose registration claims ABI 1.99. The host must
 * refuse the registration AND call the plugin's destroy (the instance is
 * allocated: forgetting destroy leaks, which LeakSanitizer reports).
 */
#include <stdlib.h>

#include <cpex/abi.h>

static int32_t allow(void *instance, const cpex_call *call)
{
    (void)instance;
    (void)call;
    return CPEX_ALLOW;
}

static void destroy(void *instance) { free(instance); }

static const cpex_handler_reg handlers[] = {{"cmf.tool_pre_invoke", allow, "cmf"}};

__attribute__((visibility("default"))) int32_t
cpex_plugin_create(uint32_t host_abi, const cpex_host_api *host, const cpex_plugin_config *config,
                   cpex_plugin_registration *out, char *err, size_t err_cap);

int32_t cpex_plugin_create(uint32_t host_abi, const cpex_host_api *host,
                           const cpex_plugin_config *config, cpex_plugin_registration *out,
                           char *err, size_t err_cap)
{
    (void)host_abi;
    (void)host;
    (void)config;
    (void)err;
    (void)err_cap;
    out->abi_version = CPEX_ABI_MAKE_VERSION(1, 99);
    out->name = "reg-newer";
    out->version = "1.99.0";
    out->instance = malloc(8);
    out->destroy = destroy;
    out->handler_count = 1;
    out->handlers = handlers;
    return CPEX_PLUGIN_OK;
}
