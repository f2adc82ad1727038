/*
 * hostile_unresolved.c — a plugin that calls a function no library
 * defines. Plugins are built as modules without -Wl,-z,defs, so it links;
 * dlopen with RTLD_NOW must refuse it at load time, naming the missing
 * symbol, instead of crashing at the first call.
 */
#include <cpex/plugin.h>

extern int cpex_hostile_no_such_function(int value);

static int32_t handler(void *instance, const cpex_call *call)
{
    (void)instance;
    (void)call;
    return cpex_hostile_no_such_function(1) ? CPEX_DENY : CPEX_ALLOW;
}

static const cpex_handler_reg handlers[] = {{"cmf.tool_pre_invoke", handler, "cmf"}};

static int32_t create(const cpex_host_api *host, const cpex_plugin_config *config,
                      cpex_plugin_registration *out, char *err, size_t err_cap)
{
    (void)host;
    (void)config;
    (void)err;
    (void)err_cap;
    out->name = "unresolved";
    out->version = "1.0.0";
    out->handler_count = 1;
    out->handlers = handlers;
    return CPEX_PLUGIN_OK;
}

CPEX_PLUGIN(create, "unresolved", "1.0.0", "calls a function nobody defines",
            "cmf.tool_pre_invoke")
