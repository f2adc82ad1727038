/*
 * manifest_function.c — `cpex_plugin_list` is a function, not data (a
 * name clash, or a library that is no plugin). Its code bytes must not be
 * read as a manifest (they would give a struct_size and pointers of
 * garbage); the host refuses it from the ELF symbol type. Neither it nor
 * the entry point may be run: both abort.
 */
#include <stdlib.h>

#include <cpex/abi.h>

__attribute__((visibility("default"))) void cpex_plugin_list(void);
void cpex_plugin_list(void) { abort(); }

/* The entry point: never run, the manifest is refused first. */
__attribute__((visibility("default"))) void cpex_plugin_create(void);
void cpex_plugin_create(void) { abort(); }
