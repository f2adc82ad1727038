/*
 * multi_plugin.c — two plugins in one library, selected with `?entry=`:
 *
 *   kind: "lib:./libmulti_plugin.so?entry=allow"   allows on cmf.tool_pre_invoke
 *   kind: "lib:./libmulti_plugin.so?entry=deny"    denies with example.multi_plugin.deny
 */
#include <cpex/plugin.h>

static int32_t allow(void *instance, const cpex_call *call)
{
    (void)instance;
    (void)call;
    return CPEX_ALLOW;
}

static int32_t deny(void *instance, const cpex_call *call)
{
    const cpex_host_api *host = instance;
    host->deny(call, "example.multi_plugin.deny", "denied by the deny gate", NULL, NULL);
    return CPEX_DENY;
}

static const cpex_handler_reg allow_handlers[] = {
    CPEX_HANDLER("cmf.tool_pre_invoke", allow, "cmf")};
static const cpex_handler_reg deny_handlers[] = {CPEX_HANDLER("cmf.tool_pre_invoke", deny, "cmf")};

static int32_t allow_create(const cpex_host_api *host, const cpex_plugin_config *config,
                            cpex_plugin_registration *out, char *err, size_t err_cap)
{
    (void)config;
    (void)err;
    (void)err_cap;
    out->name = "allow-gate";
    out->version = "1.0.0";
    out->instance = (void *)host;
    out->handler_count = 1;
    out->handlers = allow_handlers;
    return CPEX_CREATE_OK;
}

static int32_t deny_create(const cpex_host_api *host, const cpex_plugin_config *config,
                           cpex_plugin_registration *out, char *err, size_t err_cap)
{
    (void)config;
    (void)err;
    (void)err_cap;
    out->name = "deny-gate";
    out->version = "0.5.0";
    out->instance = (void *)host;
    out->handler_count = 1;
    out->handlers = deny_handlers;
    return CPEX_CREATE_OK;
}

CPEX_PLUGIN_ENTRY(allow, allow_create, "allow-gate", "1.0.0", "Allows every tool call",
                  "cmf.tool_pre_invoke")
CPEX_PLUGIN_ENTRY(deny, deny_create, "deny-gate", "0.5.0", "Denies every tool call",
                  "cmf.tool_pre_invoke")
CPEX_PLUGIN_LIST(allow, deny)
