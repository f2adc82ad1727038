/*
 * manifest.h — checking what a library says about itself (loader layer).
 *
 * A library's `cpex_plugin_list` is data we did not write: a stale build, a
 * different SDK or a hostile file may present anything. Everything here
 * reads the manifest defensively (every pointer checked against the
 * library's readable memory before it is followed, sizes before fields,
 * bounded string lengths, bounded counts), copies what it accepts into
 * host memory, and explains each refusal in the PostgreSQL way:
 * one line naming the library and what failed, then "host has X, plugin has
 * Y", then a hint.
 */
#ifndef CPEX_LOADER_MANIFEST_H
#define CPEX_LOADER_MANIFEST_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "cpex/abi.h"
#include "cpex/error.h"
#include "loader/image.h"

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
int cpex__abi_compatible(uint32_t host, uint32_t plugin, char *why, size_t cap);

/*
 * Reading a manifest. The reader follows a pointer only after checking it
 * against an image (image.h): the library's own readable segments, or
 * NULL for a manifest in trusted process memory. It reads in this order,
 * and stops at the first problem:
 *
 *   1. the symbol: a data object (not a function), at least the 8 bytes
 *      of struct_size and abi_version, inside the library;
 *   2. struct_size (at least 8), then abi_version — the header;
 *   3. the major version: another major may lay the rest out differently,
 *      so nothing more is read;
 *   4. the layout: struct_size within bounds and the symbol's size, then
 *      the fields this host knows (a shorter, older struct is zero-filled);
 *   5. the entry list, each entry (size first, then fields), its strings
 *      (bounded, terminated inside the library) and its hook list;
 *      names are empty or C identifiers and not repeated.
 *
 * A newer minor is NOT refused by the reader (its layout is a superset):
 * the caller applies the version rule to the header, and may still want
 * to describe the rest.
 */

/** A manifest copied into host memory: nothing in it points into the library. */
typedef struct cpex__manifest_copy {
    /* The manifest as this host's struct: entries, entry structs, strings
       and hook lists are host-owned copies; fields the library's (older)
       struct did not have are zero. abi_version is the library's;
       struct_size is sizeof(cpex_manifest) and each entry's is
       sizeof(cpex_manifest_entry). Use it with the functions below. */
    cpex_manifest manifest;
    uint32_t declared_size; /* struct_size as the library declared it */
    /* private: what to free */
    size_t capacity;
    cpex_manifest_entry *store;
    const cpex_manifest_entry **list;
    struct cpex__manifest_block *strings; /* every string of the copy, in a few blocks */
    _Atomic long extra_refs;              /* holders beyond the first (libcache.h shares it) */
} cpex__manifest_copy;

/** Free a copy and everything in it, or drop one reference of a shared
 *  one. NULL is allowed. A copy is never changed once read. */
void cpex__manifest_copy_free(cpex__manifest_copy *copy);
/** One more holder of `copy` (each releases with cpex__manifest_copy_free). */
cpex__manifest_copy *cpex__manifest_copy_ref(cpex__manifest_copy *copy);

typedef enum cpex__manifest_verdict {
    CPEX_MANIFEST_VALID = 0,   /* every check passed */
    CPEX_MANIFEST_INVALID,     /* report.detail says what is wrong */
    CPEX_MANIFEST_OTHER_MAJOR, /* the header was read; another major: the rest was not */
    CPEX_MANIFEST_NOMEM        /* out of memory while copying */
} cpex__manifest_verdict;

typedef struct cpex__manifest_report {
    int header;           /* struct_size and abi_version could be read */
    uint32_t struct_size; /* as declared (when header) */
    uint32_t abi_version; /* as declared (when header) */
    /* INVALID: what is wrong, a phrase that completes "the manifest is
       invalid: ...", e.g. "entry 0 is NULL", "its entry list points outside
       the library". */
    char detail[512];
} cpex__manifest_report;

/**
 * Read the manifest `sym` (found in the library of `im`; NULL `im`: trusted
 * memory) for a host of ABI `host_abi`. Fills `rep` always. When `out` is
 * given it receives a copy on VALID, and on INVALID once the manifest
 * struct itself was read (then holding the entries read before the
 * problem; else NULL) — free it with cpex__manifest_copy_free; it is NULL
 * on OTHER_MAJOR and NOMEM. With `out` NULL nothing is allocated.
 */
cpex__manifest_verdict cpex__manifest_read(const cpex__image *im, const cpex__image_sym *sym,
                                           uint32_t host_abi, cpex__manifest_copy **out,
                                           cpex__manifest_report *rep);

/**
 * Read and check the manifest of the library at `path` (for messages), as
 * cpex__manifest_read does, and apply the version rule (which wins over a
 * layout problem: the operator needs the versions first). Returns CPEX_OK
 * and, when `out` is given, the validated copy; else CPEX_E_LOAD with one
 * item in `err` (or CPEX_E_NOMEM) and *out NULL.
 */
cpex_status cpex__manifest_load(const cpex__image *im, const cpex__image_sym *sym,
                                uint32_t host_abi, const char *path, cpex__manifest_copy **out,
                                cpex_error *err);

/**
 * Validate a manifest `m` in trusted process memory (a test's or the
 * fuzzer's), as cpex__manifest_load does, without copying it.
 * `object_size` is the size of the data symbol when known, else 0; a
 * struct_size beyond it is refused. Returns CPEX_OK, or CPEX_E_LOAD with
 * one item in `err`.
 */
cpex_status cpex__manifest_validate(const cpex_manifest *m, uint32_t host_abi, const char *path,
                                    size_t object_size, cpex_error *err);

/* The functions below trust `m`: a copy from cpex__manifest_read /
   cpex__manifest_load, or a manifest cpex__manifest_validate accepted. */

/** The entry named `entry` ("" for the default) of a validated manifest, or NULL. */
const cpex_manifest_entry *cpex__manifest_find(const cpex_manifest *m, const char *entry);

/** Number of named (non-default) entries of a validated manifest. */
size_t cpex__manifest_named_count(const cpex_manifest *m);

/**
 * The entry names of a validated manifest as "[allow, deny]" (the default
 * entry shown as "(default)"). Owned by the caller (cpex__free); NULL on OOM.
 */
char *cpex__manifest_entry_list(const cpex_manifest *m);

#endif
