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

static const cpex_handler_reg handlers[] = {CPEX_HANDLER("cmf.tool_pre_invoke", handler, "cmf")};

#define TEST_PLUGIN_NAME "unresolved"
#define TEST_PLUGIN_VERSION "1.0.0"
#define TEST_PLUGIN_DESCRIPTION "calls a function nobody defines"
#define TEST_PLUGIN_HANDLERS handlers
#include "common_plugin.h"
