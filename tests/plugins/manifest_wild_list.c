/*
 * manifest_wild_list.c — a manifest whose entry list is the pointer 0x10,
 * as a damaged relocation or a hostile file could present it. A host that
 * followed it would die of SIGSEGV; it must refuse the library from the
 * pointer alone. The entry point aborts: no plugin code may run.
 */
#include <stdint.h>
#include <stdlib.h>

#include <cpex/abi.h>

__attribute__((visibility("default"))) extern const cpex_manifest cpex_plugin_list;
const cpex_manifest cpex_plugin_list = {sizeof(cpex_manifest), CPEX_ABI_VERSION, 2,
                                        (const cpex_manifest_entry *const *)(uintptr_t)0x10,
                                        "entry list at 0x10"};

/* The entry point: never run, the manifest is refused first. */
__attribute__((visibility("default"))) void cpex_plugin_create(void);
void cpex_plugin_create(void) { abort(); }
