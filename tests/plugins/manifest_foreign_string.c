/*
 * manifest_foreign_string.c — an entry whose description points into
 * another object's memory (the C library's `environ`): readable, so a
 * careless reader would not crash, but not this library's data, and not a
 * string. It must be refused as pointing outside the library. The entry
 * point aborts: no plugin code may run.
 */
#include <stdlib.h>

#include <cpex/abi.h>

extern char **environ;

static const char *const hooks[] = {"cmf.tool_pre_invoke"};
static const cpex_manifest_entry only = {sizeof(cpex_manifest_entry), 0, "",   "Foreign", "1.0.0",
                                         (const char *)&environ,      1, hooks};
static const cpex_manifest_entry *const entries[] = {&only};

__attribute__((visibility("default"))) extern const cpex_manifest cpex_plugin_list;
const cpex_manifest cpex_plugin_list = {sizeof(cpex_manifest), CPEX_ABI_VERSION, 1, entries,
                                        "hostile: foreign string"};

/* The entry point: never run, the manifest is refused first. */
__attribute__((visibility("default"))) void cpex_plugin_create(void);
void cpex_plugin_create(void) { abort(); }
