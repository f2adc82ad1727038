/*
 * hostile_abi_split.c — the manifest and the entry point disagree about the
 * ABI: the manifest says 1.0 (what this host speaks), the registration the
 * entry point fills says 2.0. The host must refuse the registration with
 * both versions named, and destroy the instance the create made (counted
 * in the exported `hostile_live_instances`).
 */
#include <stdlib.h>

#include <cpex/abi.h>

__attribute__((visibility("default"))) int hostile_live_instances;

static int32_t allow(void *instance, const cpex_call *call)
{
    (void)instance;
    (void)call;
    return CPEX_ALLOW;
}

static void destroy(void *instance)
{
    hostile_live_instances--;
    free(instance);
}

static const cpex_handler_reg handlers[] = {{"cmf.tool_pre_invoke", allow, "cmf"}};

__attribute__((visibility("default"))) int32_t
cpex_plugin_create(uint32_t host_abi, const cpex_host_api *host, const cpex_plugin_config *config,
                   cpex_plugin_registration *out, char *err, size_t err_cap);
int32_t cpex_plugin_create(uint32_t host_abi, const cpex_host_api *host,
                           const cpex_plugin_config *config, cpex_plugin_registration *out,
                           char *err, size_t err_cap)
{
    (void)host_abi, (void)host, (void)config, (void)err, (void)err_cap;
    out->struct_size = (uint32_t)sizeof *out;
    out->abi_version = CPEX_ABI_MAKE_VERSION(2, 0);
    out->name = "abi-split";
    out->version = "2.0.0";
    out->instance = malloc(16);
    hostile_live_instances++;
    out->destroy = destroy;
    out->handler_count = 1;
    out->handlers = handlers;
    return CPEX_PLUGIN_OK;
}

static const char *const hooks[] = {"cmf.tool_pre_invoke"};
static const cpex_manifest_entry only = {
    sizeof(cpex_manifest_entry), 0, "", "ABI split", "2.0.0", "manifest 1.0, registration 2.0",
    1, hooks};
static const cpex_manifest_entry *const entries[] = {&only};

__attribute__((visibility("default"))) extern const cpex_manifest cpex_plugin_list;
const cpex_manifest cpex_plugin_list = {sizeof(cpex_manifest), CPEX_ABI_VERSION, 1, entries,
                                        NULL};
