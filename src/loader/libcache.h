/*
 * libcache.h — what the checks of a plugin library found, reused for a
 * moment by the next plugins of the same file (loader layer).
 *
 * A configuration commonly loads many plugins from one library (one per
 * entry, or the same filter with different settings). The checks of
 * admit.h cost about sixteen system calls per plugin (the canonical path,
 * the file, every directory above it); for the second and later plugins
 * of a path the answer is the same as long as the file is. So a `lib:`
 * factory keeps, per path as written, what the full check found, and a
 * later plugin of that path reuses it when:
 *
 *   - the full check is less than CPEX__LIBCACHE_TTL_NS old, and
 *   - the path still names the very same file, unchanged: one stat, which
 *     follows links as the loader would, compared on device, inode, size
 *     and modification and change times (a file cannot be rewritten
 *     without moving its change time).
 *
 * What it does not see again in that moment is a change of the
 * directories' owners or modes (the trust finding) — the same window a
 * load has between its check and its dlopen anyway.
 */
#ifndef CPEX_LOADER_LIBCACHE_H
#define CPEX_LOADER_LIBCACHE_H

#include <stdbool.h>
#include <sys/stat.h>

#include "loader/manifest.h"
#include "util/sha256.h"

/** How long a full check is reused (2 s). */
#define CPEX__LIBCACHE_TTL_NS 2000000000LL

typedef struct cpex__libcache cpex__libcache;

/** What a full check of one library found. */
typedef struct cpex__libcheck {
    char *resolved;                    /* the canonical path (owned) */
    struct stat st;                    /* the file when it was checked */
    char *trust;                       /* who could replace it (owned), NULL: nobody */
    char sha256[CPEX__SHA256_HEX + 1]; /* its hash, "" when it was not computed */
} cpex__libcheck;

/** A new, empty cache; NULL on OOM (then callers check every time). */
cpex__libcache *cpex__libcache_new(void);
/** Free it (a cpex_factory's destroy; NULL is fine). */
void cpex__libcache_free(void *cache);

/**
 * The check of `written` (the path as the operator wrote it, made
 * absolute), when it is recent and the file is the same (see above): true
 * and `out` filled with copies (release with cpex__libcheck_clear). False
 * otherwise (also for a NULL cache or on OOM): check in full.
 */
bool cpex__libcache_get(cpex__libcache *cache, const char *written, cpex__libcheck *out);

/** Remember the full check of `written` (copied; OOM only forgets). */
void cpex__libcache_put(cpex__libcache *cache, const char *written, const cpex__libcheck *check);

/** Release what a cpex__libcheck owns. */
void cpex__libcheck_clear(cpex__libcheck *check);

/*
 * The manifest of a loaded library, read once per library handle: a
 * configuration of many plugins from one library reads and validates it
 * once. Kept per dlopen handle and the file it was opened from (`st`, as
 * cpex__libcheck has it), so a handle value reused for another file after
 * an unload never matches. A copy is host memory and never changes.
 */

/** True when the manifest of handle `dl` (file `st`) was read before: *out
 *  is a new reference to it (cpex__manifest_copy_free), or NULL when the
 *  library has none. */
bool cpex__libcache_manifest_get(cpex__libcache *cache, const void *dl, const struct stat *st,
                                 cpex__manifest_copy **out);
/** Remember the manifest read from `dl` (`copy`, NULL: none; a reference is taken). */
void cpex__libcache_manifest_put(cpex__libcache *cache, const void *dl, const struct stat *st,
                                 cpex__manifest_copy *copy);

#endif
