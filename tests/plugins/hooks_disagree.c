/*
 * hooks_disagree.c — plugins whose manifest entries and handler arrays
 * name different hooks; the loader must refuse both after create (and
 * destroy the instance). Entries (kind "lib:…/libhooks_disagree.so?entry=<case>"):
 *
 *   lists_more       the manifest lists cmf.tool_pre_invoke and
 *                    cmf.tool_post_invoke; the plugin registers only the first
 *   registers_more   the manifest lists cmf.tool_pre_invoke; the plugin
 *                    registers it and cmf.tool_post_invoke
 *
 * Live instances are counted in `hostile_live_instances`.
 */
#define TEST_PLUGIN_LIVE_COUNT
#include "common_plugin.h"

static const cpex_handler_reg both_handlers[] = {
    CPEX_HANDLER("cmf.tool_pre_invoke", allow, "cmf"),
    CPEX_HANDLER("cmf.tool_post_invoke", allow, "cmf"),
};

static int32_t fill(cpex_plugin_registration *out, const cpex_handler_reg *handlers, size_t n,
                    char *err, size_t err_cap)
{
    if (test_new_instance(out, err, err_cap) != CPEX_CREATE_OK)
        return CPEX_CREATE_INIT_FAILED;
    hostile_live_instances++;
    return TEST_REGISTER_N(out, "hooks-disagree", "6.6.6", handlers, n);
}

static int32_t create_lists_more(const cpex_host_api *host, const cpex_plugin_config *config,
                                 cpex_plugin_registration *out, char *err, size_t err_cap)
{
    (void)host, (void)config;
    return fill(out, allow_handlers, 1, err, err_cap);
}

static int32_t create_registers_more(const cpex_host_api *host, const cpex_plugin_config *config,
                                     cpex_plugin_registration *out, char *err, size_t err_cap)
{
    (void)host, (void)config;
    return fill(out, both_handlers, 2, err, err_cap);
}

CPEX_PLUGIN_ENTRY(lists_more, create_lists_more, "lists-more", "6.6.6",
                  "lists a hook it registers no handler for", "cmf.tool_pre_invoke",
                  "cmf.tool_post_invoke")
CPEX_PLUGIN_ENTRY(registers_more, create_registers_more, "registers-more", "6.6.6",
                  "registers a handler its manifest does not list", "cmf.tool_pre_invoke")
CPEX_PLUGIN_LIST(lists_more, registers_more)
