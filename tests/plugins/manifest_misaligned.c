/*
 * manifest_misaligned.c — an entry list that points inside the library but
 * one byte off: reading pointers from it is undefined behaviour (and a
 * fault on strict-alignment machines). It must be refused as misaligned.
 * The entry point aborts: no plugin code may run.
 */
#include <stdlib.h>

#include <cpex/abi.h>

static const char *const hooks[] = {"cmf.tool_pre_invoke"};
static const cpex_manifest_entry only = {
    sizeof(cpex_manifest_entry), 0, "", "Off by one", "1.0.0", "a misaligned list", 1, hooks};
static const cpex_manifest_entry *const entries[] = {&only, &only};

__attribute__((visibility("default"))) extern const cpex_manifest cpex_plugin_list;
const cpex_manifest cpex_plugin_list = {
    sizeof(cpex_manifest), CPEX_ABI_VERSION, 1,
    (const cpex_manifest_entry *const *)((const char *)entries + 1), "hostile: misaligned"};

/* The entry point: never run, the manifest is refused first. */
__attribute__((visibility("default"))) void cpex_plugin_create(void);
void cpex_plugin_create(void) { abort(); }
