/*
 * manifest.h — checking what a library says about itself (loader layer).
 *
 * A library's `cpex_plugin_list` is data we did not write: a stale build, a
 * different SDK or a hostile file may present anything. Everything here
 * reads the manifest defensively (sizes before fields, bounded string
 * lengths, bounded counts) and explains each refusal in the PostgreSQL way:
 * one line naming the library and what failed, then "host has X, plugin has
 * Y", then a hint.
 */
#ifndef CPEX_LOADER_MANIFEST_H
#define CPEX_LOADER_MANIFEST_H

#include <stddef.h>
#include <stdint.h>

#include "cpex/abi.h"
#include "cpex/error.h"

/*
 * The sizes of the 1.0 structs: the least a sender of major 1 may present.
 * Spelled as offset + size of the last 1.0 field (not sizeof) so that they
 * stay frozen when a later minor appends fields.
 */
#define CPEX_MANIFEST_SIZE_1_0 (offsetof(cpex_manifest, build_info) + sizeof(const char *))
#define CPEX_MANIFEST_ENTRY_SIZE_1_0 \
    (offsetof(cpex_manifest_entry, hooks) + sizeof(const char *const *))
#define CPEX_REGISTRATION_SIZE_1_0 \
    (offsetof(cpex_plugin_registration, handlers) + sizeof(const cpex_handler_reg *))

/** More entries (or hooks per entry) than this is taken as corruption. */
#define CPEX_MANIFEST_MAX_ENTRIES 1024u
/** A struct_size above this is taken as corruption (no struct is near it). */
#define CPEX_ABI_STRUCT_SIZE_MAX 65536u

/**
 * The version rule: compatible when both majors are equal and the plugin's
 * minor is not newer than the host's (an older plugin sees a prefix of
 * every struct and table the host has; a newer one may need what the host
 * lacks). Returns 1 if `plugin` may be loaded by `host`, else 0.
 * `why` (may be NULL) receives "host has ABI a.b, plugin has ABI c.d" and,
 * when incompatible, which rule failed (NUL-terminated, truncated to cap).
 */
int cpex_abi_compatible(uint32_t host, uint32_t plugin, char *why, size_t cap);

/**
 * Validate the manifest `m` of the library at `path` (for messages) for a
 * host of ABI `host_abi`. `object_size` is the size of the data symbol when
 * the loader could learn it (the ELF symbol size), else 0; a struct_size
 * beyond it is refused, since reading it would run past the object.
 * Returns CPEX_OK, or CPEX_E_LOAD with one item in `err`.
 */
cpex_status cpex_manifest_validate(const cpex_manifest *m, uint32_t host_abi, const char *path,
                                   size_t object_size, cpex_error *err);

/** The entry named `entry` ("" for the default) of a validated manifest, or NULL. */
const cpex_manifest_entry *cpex_manifest_find(const cpex_manifest *m, const char *entry);

/** Number of named (non-default) entries of a validated manifest. */
size_t cpex_manifest_named_count(const cpex_manifest *m);

/**
 * The entry names of a validated manifest as "[allow, deny]" (the default
 * entry shown as "(default)"). Owned by the caller (cpex_free); NULL on OOM.
 */
char *cpex_manifest_entry_list(const cpex_manifest *m);

#endif
