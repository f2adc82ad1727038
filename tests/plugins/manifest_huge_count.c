/*
 * manifest_huge_count.c — an entry count chosen so that count * sizeof(pointer)
 * wraps around to 8: a reader that multiplied before bounding the count
 * would check 8 bytes, accept the one-element array, and then walk far
 * past it. The count must be refused first. The entry point aborts: no
 * plugin code may run.
 */
#include <stdint.h>
#include <stdlib.h>

#include <cpex/abi.h>

static const char *const hooks[] = {"cmf.tool_pre_invoke"};
static const cpex_manifest_entry only = {sizeof(cpex_manifest_entry), 0, "",   "Wrap", "1.0.0",
                                         "count * 8 wraps to 8",      1, hooks};
static const cpex_manifest_entry *const entries[] = {&only};

__attribute__((visibility("default"))) extern const cpex_manifest cpex_plugin_list;
const cpex_manifest cpex_plugin_list = {sizeof(cpex_manifest), CPEX_ABI_VERSION,
                                        SIZE_MAX / sizeof(void *) + 2, entries,
                                        "hostile: huge count"};

/* The entry point: never run, the manifest is refused first. */
__attribute__((visibility("default"))) void cpex_plugin_create(void);
void cpex_plugin_create(void) { abort(); }
