/*
 * hostile_abi_split_manifest.c — the other disagreement: the manifest
 * claims ABI 1.5 (a minor newer than this host's), while the entry point
 * would register as 1.0. The manifest is read first, so the host must
 * refuse the library before running any plugin code: the entry point
 * aborts.
 */
#include <stdlib.h>

#include <cpex/abi.h>

__attribute__((visibility("default"))) int32_t
cpex_plugin_create(uint32_t host_abi, const cpex_host_api *host, const cpex_plugin_config *config,
                   cpex_plugin_registration *out, char *err, size_t err_cap);
int32_t cpex_plugin_create(uint32_t host_abi, const cpex_host_api *host,
                           const cpex_plugin_config *config, cpex_plugin_registration *out,
                           char *err, size_t err_cap)
{
    (void)host_abi, (void)host, (void)config, (void)out, (void)err, (void)err_cap;
    abort();
}

static const char *const hooks[] = {"cmf.tool_pre_invoke"};
static const cpex_manifest_entry only = {
    sizeof(cpex_manifest_entry), 0, "", "ABI split", "1.0.0", "manifest 1.5, registration 1.0",
    1, hooks};
static const cpex_manifest_entry *const entries[] = {&only};

__attribute__((visibility("default"))) extern const cpex_manifest cpex_plugin_list;
const cpex_manifest cpex_plugin_list = {sizeof(cpex_manifest), CPEX_ABI_MAKE_VERSION(1, 5), 1,
                                        entries, NULL};
