/*
 * elfsyms.h — the exported symbols of a shared library file, read from its
 * ELF dynamic symbol table (.dynsym) without loading it.
 *
 * `cpex inspect` uses it to find the entry points of a library that has no
 * manifest (cpex_plugin_create_<entry> names are not known in advance, so
 * dlsym cannot find them).
 */
#ifndef CPEX_CLI_ELFSYMS_H
#define CPEX_CLI_ELFSYMS_H

#include <stddef.h>

/**
 * The defined, exported symbols of the ELF file at `path` whose names start
 * with `prefix`, sorted, as a NULL-terminated malloc'd array (free with
 * cli_strv_free). NULL when the file cannot be read as an ELF shared object
 * of this machine's class and byte order, with the reason in `why`.
 */
char **cli_elf_exported(const char *path, const char *prefix, char *why, size_t cap);

void cli_strv_free(char **v);

#endif
