/*
 * multi_handler.c — one plugin, two handlers.
 *
 * Allows on cmf.tool_pre_invoke; denies on cmf.tool_post_invoke with its own
 * violation code `example.multi_handler.post_deny`. Load one handler only
 * with a fragment: kind "lib:./libmulti_handler.so#cmf.tool_pre_invoke".
 */
#include <cpex/plugin.h>

static int32_t allow_pre(void *instance, const cpex_call *call)
{
    (void)instance;
    (void)call;
    return CPEX_ALLOW;
}

static int32_t deny_post(void *instance, const cpex_call *call)
{
    const cpex_host_api *host = instance; /* the instance is just the host table */
    host->deny(call, "example.multi_handler.post_deny", "tool results are blocked",
               "the multi_handler example denies every cmf.tool_post_invoke", NULL);
    return CPEX_DENY;
}

static const cpex_handler_reg handlers[] = {
    CPEX_HANDLER("cmf.tool_pre_invoke", allow_pre, "cmf"),
    CPEX_HANDLER("cmf.tool_post_invoke", deny_post, "cmf"),
};

static int32_t create(const cpex_host_api *host, const cpex_plugin_config *config,
                      cpex_plugin_registration *out, char *err, size_t err_cap)
{
    (void)config;
    (void)err;
    (void)err_cap;
    out->name = "multi-handler";
    out->version = "1.0.0";
    /* No state of its own: the host table (valid for the instance's life)
       is all a handler needs, so there is nothing to destroy. */
    out->instance = (void *)host;
    out->handler_count = sizeof handlers / sizeof handlers[0];
    out->handlers = handlers;
    return CPEX_CREATE_OK;
}

CPEX_PLUGIN(create, "multi-handler", "1.0.0", "Allows before a tool call, denies after it",
            "cmf.tool_pre_invoke", "cmf.tool_post_invoke")
