/*
 * hooks_agree.h — a plugin names its hooks twice: in the handler array of
 * its registration and in its manifest entry (CPEX_PLUGIN, CPEX_PLUGIN_ENTRY).
 * The loader refuses a library where the two lists differ, so that what
 * `cpex inspect` shows is what the plugin serves.
 */
#ifndef CPEX_LOADER_HOOKS_AGREE_H
#define CPEX_LOADER_HOOKS_AGREE_H

#include "cpex/abi.h"
#include "cpex/error.h"

/**
 * Compare the hooks of manifest entry `entry` (a validated host copy) with
 * the handlers of `reg` (accepted by cpex__registration_check, before any
 * '#' fragment). Returns CPEX_OK when every listed hook has a handler and
 * every handler's hook is listed; else CPEX_E_LOAD with one item per hook
 * that is missing on either side, each naming the library `path` and the
 * entry.
 */
cpex_status cpex__hooks_agree(const cpex_manifest_entry *entry, const cpex_plugin_registration *reg,
                              const char *path, cpex_error *err);

#endif
