/*
 * manifest_entry_is_data.c — a valid manifest that lists the default
 * entry, but the library's `cpex_plugin_create` is a data object, not a
 * function. Calling it would jump into data (a crash, or worse): the host
 * must refuse it from the ELF symbol type, before any call.
 */
#include <stdint.h>

#include <cpex/abi.h>

static const char *const served[] = {"cmf.tool_pre_invoke"};
static const cpex_manifest_entry the_entry = {
    sizeof(cpex_manifest_entry),   0, "",    "Data entry", "0.0.1",
    "an entry point that is data", 1, served};
static const cpex_manifest_entry *const list[] = {&the_entry};

__attribute__((visibility("default"))) extern const cpex_manifest cpex_plugin_list;
const cpex_manifest cpex_plugin_list = {sizeof(cpex_manifest), CPEX_ABI_VERSION, 1, list,
                                        "hostile: entry point is data"};

/* Bytes that are no code of any use (0xff 0xff: an invalid instruction on x86). */
__attribute__((visibility("default"))) extern const uint8_t cpex_plugin_create[16];
const uint8_t cpex_plugin_create[16] = {0xff, 0xff, 0xff, 0xff};
