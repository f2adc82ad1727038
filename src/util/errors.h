/*
 * errors.h — internal helpers to fill a cpex_error (public type in
 * cpex/error.h).
 */
#ifndef CPEX_UTIL_ERRORS_H
#define CPEX_UTIL_ERRORS_H

#include "cpex/error.h"

/** Where a problem is. Any field may be NULL / 0. */
typedef struct cpex__where {
    const char *file;
    int line;
    int column;
    const char *plugin;
    const char *key;
} cpex__where;

/**
 * Append one item to `err` (NULL, or never initialized: nothing happens). The message is
 * formatted, then prefixed with "<file>:<line>:<col>: " and
 * "plugin '<p>': " from `where` when those are set. Returns `code` so a
 * caller can `return cpex__error_add(...)`. If memory runs out the item is
 * still counted with code CPEX_E_NOMEM where possible.
 */
cpex_status cpex__error_add(cpex_error *err, cpex_status code, const cpex__where *where,
                            const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/** Move every item of `from` into `to` (from becomes empty). */
void cpex__error_move(cpex_error *to, cpex_error *from);

/**
 * Move every item of `from` into `to`, filling the file/line/column/plugin
 * of items that lack them from `where` and rebuilding their messages.
 */
void cpex__error_move_with(cpex_error *to, cpex_error *from, const cpex__where *where);

#endif
