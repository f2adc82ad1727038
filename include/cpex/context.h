/*
 * cpex/context.h — the context table a host threads from one invoke to the
 * next of the same request (for example from cmf.tool_pre_invoke to
 * cmf.tool_post_invoke).
 *
 * It holds, per plugin, the local state that plugin stored (key -> JSON)
 * and the global state shared by the plugins of an invoke. Local state is
 * keyed by the plugin's registration, so a table is only meaningful with
 * the manager that produced it.
 */
#ifndef CPEX_CONTEXT_H
#define CPEX_CONTEXT_H

#include "cpex/export.h"

#include <stddef.h>

#include <jansson.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Opaque context table. */
typedef struct cpex_context_table cpex_context_table;

/** A new empty table. NULL on OOM. */
CPEX_API cpex_context_table *cpex_context_table_new(void);

/** Free a table and everything in it. NULL is allowed. */
CPEX_API void cpex_context_table_free(cpex_context_table *table);

/** A global value, or NULL. Borrowed; valid until the table changes. */
CPEX_API const json_t *cpex_context_table_global(const cpex_context_table *table, const char *key);

/**
 * A local value stored by the plugin the operator named `plugin`, or NULL.
 * Borrowed; valid until the table changes.
 */
CPEX_API const json_t *cpex_context_table_local(const cpex_context_table *table, const char *plugin,
                                                const char *key);

#ifdef __cplusplus
}
#endif

#endif /* CPEX_CONTEXT_H */
