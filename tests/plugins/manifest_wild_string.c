/*
 * manifest_wild_string.c — a well-formed manifest whose one entry has the
 * display name (char *)0x1000: unmapped memory. Reading the string (even
 * with strnlen) would crash the host; it must be refused as pointing
 * outside the library. The entry point aborts: no plugin code may run.
 */
#include <stdint.h>
#include <stdlib.h>

#include <cpex/abi.h>

static const char *const hooks[] = {"cmf.tool_pre_invoke"};
static const cpex_manifest_entry only = {
    sizeof(cpex_manifest_entry), 0, "",   (const char *)(uintptr_t)0x1000, "1.0.0",
    "display name at 0x1000",    1, hooks};
static const cpex_manifest_entry *const entries[] = {&only};

__attribute__((visibility("default"))) extern const cpex_manifest cpex_plugin_list;
const cpex_manifest cpex_plugin_list = {sizeof(cpex_manifest), CPEX_ABI_VERSION, 1, entries,
                                        "hostile: wild string"};

/* The entry point: never run, the manifest is refused first. */
__attribute__((visibility("default"))) void cpex_plugin_create(void);
void cpex_plugin_create(void) { abort(); }
