/*
 * swap_plugin.h — the plugin of swap_v1.c and swap_v2.c: two builds of
 * "the same" plugin, for the reload test that renames a new build over the
 * library a running manager loaded. Each reports its version and a call
 * count kept in a library global ("swap.version", "swap.calls"). Define
 * SWAP_VERSION (a number) and SWAP_VERSION_TEXT (its string) first.
 */
#include <stdlib.h>

#include <cpex/plugin.h>

static long long calls; /* per loaded copy of the library */

static int32_t on_call(void *instance, const cpex_call *call)
{
    const cpex_host_api *host = instance;
    calls++;
    host->set_metadata(call, "swap.version", host->json_new_integer(SWAP_VERSION));
    host->set_metadata(call, "swap.calls", host->json_new_integer(calls));
    return CPEX_ALLOW;
}

static const cpex_handler_reg handlers[] = {CPEX_HANDLER("cmf.tool_pre_invoke", on_call, "cmf")};

static int32_t create(const cpex_host_api *host, const cpex_plugin_config *config,
                      cpex_plugin_registration *out, char *err, size_t err_cap)
{
    (void)config;
    (void)err;
    (void)err_cap;
    out->name = "swap";
    out->version = SWAP_VERSION_TEXT;
    out->instance = (void *)host;
    out->handler_count = 1;
    out->handlers = handlers;
    return CPEX_CREATE_OK;
}

CPEX_PLUGIN(create, "swap", SWAP_VERSION_TEXT, "a plugin whose library is replaced while it runs",
            "cmf.tool_pre_invoke")
