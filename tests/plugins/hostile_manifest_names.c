/*
 * hostile_manifest_names.c — a hand-written manifest whose second entry
 * name is not a C identifier ("bad-name", which could never be part of a
 * symbol name). The host must refuse the library from the manifest alone:
 * its entry points abort(), so a host that ran any plugin code would crash
 * the test.
 */
#include <stdlib.h>

#include <cpex/abi.h>

#define ENTRY_POINT(sym)                                                                           \
    __attribute__((visibility("default"))) int32_t sym(                                            \
        uint32_t host_abi, const cpex_host_api *host, const cpex_plugin_config *config,            \
        cpex_plugin_registration *out, char *err, size_t err_cap);                                 \
    int32_t sym(uint32_t host_abi, const cpex_host_api *host, const cpex_plugin_config *config,    \
                cpex_plugin_registration *out, char *err, size_t err_cap)                          \
    {                                                                                              \
        (void)host_abi, (void)host, (void)config, (void)out, (void)err, (void)err_cap;             \
        abort();                                                                                   \
    }

ENTRY_POINT(cpex_plugin_create_good)

static const char *const hooks[] = {"cmf.tool_pre_invoke"};
static const cpex_manifest_entry good = {
    sizeof(cpex_manifest_entry), 0, "good", "Good", "1.0.0", "a valid entry", 1, hooks};
static const cpex_manifest_entry bad = {sizeof(cpex_manifest_entry), 0, "bad-name", "Bad", "1.0.0",
                                        "not an identifier",         1, hooks};
static const cpex_manifest_entry *const entries[] = {&good, &bad};

__attribute__((visibility("default"))) extern const cpex_manifest cpex_plugin_list;
const cpex_manifest cpex_plugin_list = {sizeof(cpex_manifest), CPEX_ABI_VERSION, 2, entries,
                                        "hand-written, hostile"};
