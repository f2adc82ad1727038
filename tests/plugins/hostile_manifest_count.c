/*
 * hostile_manifest_count.c — a hand-written manifest that claims 2^40
 * entries over a one-element array. The host must refuse the count before
 * reading the array (AddressSanitizer would catch a read past it), and
 * must not run any plugin code: the entry point aborts.
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
    sizeof(cpex_manifest_entry), 0, "", "Huge", "1.0.0", "claims a huge count", 1, hooks};
static const cpex_manifest_entry *const entries[] = {&only};

__attribute__((visibility("default"))) extern const cpex_manifest cpex_plugin_list;
const cpex_manifest cpex_plugin_list = {sizeof(cpex_manifest), CPEX_ABI_VERSION,
                                        (size_t)1 << 40, entries, NULL};
