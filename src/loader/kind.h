/*
 * kind.h — the kind URL of a dynamic plugin (loader layer).
 *
 *     <scheme>:<path>[?entry=<name>][#<handler>]
 *
 * Parsing order, and why:
 *   1. The scheme is what stands before the FIRST ':' — the manager
 *      dispatches on exactly that, and it keeps Windows drive letters whole
 *      (`lib:C:\plugins\p.dll` has path `C:\plugins\p.dll`).
 *   2. The fragment is split off first, at the first '#': a hook name may
 *      contain '?' and must not be mistaken for a query.
 *   3. The query is split off the remainder at the first '?'.
 *
 * Consequences, documented for operators:
 *   - A library path cannot contain '?' or '#': there is no escaping
 *     (rename or symlink such a file).
 *   - An empty query (`lib:/x.so?`) is accepted and means "no entry".
 *   - The path is taken verbatim: no percent-decoding, no trimming.
 *
 * Rejected, each with its own message: no scheme, empty path, empty
 * fragment (`#` with nothing after; Rust accepts it and fails later),
 * empty entry value (`?entry=`), repeated entry (`?entry=a&entry=b`),
 * other parameters (`?foo=1`, `?entry=a&x=1`), a query without '=', and an
 * entry that is not a C identifier (checked here, before any symbol
 * lookup, because it becomes part of a symbol name).
 */
#ifndef CPEX_LOADER_KIND_H
#define CPEX_LOADER_KIND_H

#include <stddef.h>

#include "cpex/error.h"

/** Longest entry name accepted (the symbol name must stay reasonable). */
#define CPEX_ENTRY_NAME_MAX 200

/** A parsed kind. Every string is owned (cpex__malloc); optional ones may be NULL. */
typedef struct cpex__kind {
    char *scheme;  /* never NULL after a successful parse; non-empty */
    char *path;    /* never NULL; non-empty; verbatim */
    char *entry;   /* NULL: no ?entry= (the default entry point) */
    char *handler; /* NULL: no #fragment (keep every handler); else non-empty */
} cpex__kind;

/**
 * Parse `text`. On success returns CPEX_OK and fills `out` (release with
 * cpex__kind_cleanup). On failure returns CPEX_E_CONFIG (or CPEX_E_NOMEM),
 * adds one item to `err` that quotes the kind and says what to write
 * instead, and leaves `out` zeroed.
 */
cpex_status cpex__kind_parse(const char *text, cpex__kind *out, cpex_error *err);

/** Free what `kind` holds and zero it. NULL is allowed. */
void cpex__kind_cleanup(cpex__kind *kind);

/**
 * Check that `name` is a C identifier ([A-Za-z_][A-Za-z0-9_]*, at most
 * CPEX_ENTRY_NAME_MAX characters). Returns 1 if it is; else 0 and, if `why`
 * is given, a reason such as "must start with a letter or underscore (got
 * '1')" (NUL-terminated, truncated to `cap`).
 */
int cpex__entry_name_valid(const char *name, char *why, size_t cap);

#endif
