/*
 * hostile_handlers.c — plugins built with the SDK whose handler lists are
 * broken (the SDK does not check what create puts into the registration).
 * Entries (kind "lib:…/libhostile_handlers.so?entry=<case>"):
 *
 *   null_fn      a handler with a NULL function
 *   null_hook    a handler with a NULL hook name
 *   empty_hook   a handler with an empty hook name
 *   dup_hook     two handlers for the same hook
 *
 * Every create allocates its instance and counts it in the exported
 * `hostile_live_instances`; destroy counts it down (see hostile_registration.c).
 */
#define TEST_PLUGIN_LIVE_COUNT
#include "common_plugin.h"

static const cpex_handler_reg null_fn_handlers[] = {
    CPEX_HANDLER("cmf.tool_pre_invoke", allow, "cmf"),
    CPEX_HANDLER("cmf.tool_post_invoke", NULL, "cmf"),
};
static const cpex_handler_reg null_hook_handlers[] = {
    CPEX_HANDLER("cmf.tool_pre_invoke", allow, "cmf"),
    CPEX_HANDLER(NULL, allow, "cmf"),
};
static const cpex_handler_reg empty_hook_handlers[] = {
    CPEX_HANDLER("", allow, "cmf"),
};
static const cpex_handler_reg dup_hook_handlers[] = {
    CPEX_HANDLER("cmf.tool_pre_invoke", allow, "cmf"),
    CPEX_HANDLER("cmf.tool_pre_invoke", allow, "cmf"),
};

static int32_t fill(cpex_plugin_registration *out, const cpex_handler_reg *handlers, size_t n,
                    char *err, size_t err_cap)
{
    if (test_new_instance(out, err, err_cap) != CPEX_CREATE_OK)
        return CPEX_CREATE_INIT_FAILED;
    hostile_live_instances++;
    return TEST_REGISTER_N(out, "hostile-handlers", "6.6.6", handlers, n);
}

#define CREATE(name)                                                                               \
    static int32_t create_##name(const cpex_host_api *host, const cpex_plugin_config *config,      \
                                 cpex_plugin_registration *out, char *err, size_t err_cap)         \
    {                                                                                              \
        (void)host;                                                                                \
        (void)config;                                                                              \
        return fill(out, name##_handlers, sizeof name##_handlers / sizeof name##_handlers[0], err, \
                    err_cap);                                                                      \
    }

CREATE(null_fn)
CREATE(null_hook)
CREATE(empty_hook)
CREATE(dup_hook)

CPEX_PLUGIN_ENTRY(null_fn, create_null_fn, "null-fn", "6.6.6", "a NULL handler function",
                  "cmf.tool_pre_invoke", "cmf.tool_post_invoke")
CPEX_PLUGIN_ENTRY(null_hook, create_null_hook, "null-hook", "6.6.6", "a NULL hook name",
                  "cmf.tool_pre_invoke")
CPEX_PLUGIN_ENTRY(empty_hook, create_empty_hook, "empty-hook", "6.6.6", "an empty hook name",
                  "cmf.tool_pre_invoke")
CPEX_PLUGIN_ENTRY(dup_hook, create_dup_hook, "dup-hook", "6.6.6", "two handlers for one hook",
                  "cmf.tool_pre_invoke")
CPEX_PLUGIN_LIST(null_fn, null_hook, empty_hook, dup_hook)
