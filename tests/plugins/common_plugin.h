/*
 * common_plugin.h — the body the minimal test plugins share: a handler that
 * allows every call on cmf.tool_pre_invoke, a create that registers it as
 * TEST_PLUGIN_NAME version TEST_PLUGIN_VERSION, and the manifest
 * (CPEX_PLUGIN) that describes it with TEST_PLUGIN_DESCRIPTION.
 *
 * Test plugins are built one .c file per library, so the shared part is a
 * header: define the three TEST_PLUGIN_* macros (and CPEX_PLUGIN_ABI_MAJOR /
 * _MINOR before any SDK header, to claim another ABI), then include it once,
 * at the end of the plugin's .c file.
 */
#ifndef CPEX_TEST_COMMON_PLUGIN_H
#define CPEX_TEST_COMMON_PLUGIN_H

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
    out->name = TEST_PLUGIN_NAME;
    out->version = TEST_PLUGIN_VERSION;
    out->handler_count = 1;
    out->handlers = handlers;
    return CPEX_PLUGIN_OK;
}

CPEX_PLUGIN(create, TEST_PLUGIN_NAME, TEST_PLUGIN_VERSION, TEST_PLUGIN_DESCRIPTION,
            "cmf.tool_pre_invoke")

#endif /* CPEX_TEST_COMMON_PLUGIN_H */
