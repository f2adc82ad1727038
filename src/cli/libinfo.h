/*
 * libinfo.h — describing a plugin library without creating a plugin
 * (`cpex inspect`).
 */
#ifndef CPEX_CLI_LIBINFO_H
#define CPEX_CLI_LIBINFO_H

#include <stdbool.h>

#include <jansson.h>

/**
 * Open the library named `arg` (a path, or a bare name looked up in the
 * build's plugin directory), read its manifest and entry symbols, check
 * them, and close it. Returns the description as JSON (docs/cli.md:
 * library, path, loaded, host_abi, abi, compatible, manifest, build_info,
 * entries, symbols, problems, notes, usable); NULL only when out of memory.
 */
json_t *cli_describe_library(const char *arg);

#endif
