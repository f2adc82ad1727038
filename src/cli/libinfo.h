/*
 * libinfo.h — describing a plugin library without creating a plugin
 * (`cpex inspect`).
 */
#ifndef CPEX_CLI_LIBINFO_H
#define CPEX_CLI_LIBINFO_H

#include <stdbool.h>

#include <jansson.h>

/**
 * Describe the library named `arg` (a path, or a bare name looked up in the
 * build's plugin directory) with cpex_library_describe, which opens it,
 * reads its manifest and entry symbols safely, checks them, and closes it;
 * the entry symbols of the file's ELF symbol table are passed along so that
 * a library without a manifest shows its named entries. Returns the
 * description as JSON (docs/cli.md: library, path, loaded, host_abi, abi,
 * compatible, manifest, build_info, entries, symbols, problems, notes,
 * usable); NULL only when out of memory.
 */
json_t *cli_describe_library(const char *arg);

#endif
