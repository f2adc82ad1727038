/*
 * contexts.h — the context tables of `cpex run`, by the request lines'
 * "context" id, kept from one line to the next (a pre hook's line to its
 * post hook's line) and freed at the end.
 */
#ifndef CPEX_CLI_CONTEXTS_H
#define CPEX_CLI_CONTEXTS_H

#include <stdbool.h>
#include <stddef.h>

#include <cpex/cpex.h>

typedef struct cli_contexts cli_contexts;

cli_contexts *cli_contexts_new(void);
/** Free every table still held, and the map. NULL is allowed. */
void cli_contexts_free(cli_contexts *map);
/** Take the table stored under `id` out of the map (NULL when none); the caller owns it. */
cpex_context_table *cli_contexts_take(cli_contexts *map, const char *id);
/** Store `table` under `id` (taken over; freed on failure). False on OOM. */
bool cli_contexts_put(cli_contexts *map, const char *id, cpex_context_table *table);
/** Number of ids holding a table. */
size_t cli_contexts_count(const cli_contexts *map);

#endif
