/*
 * contexts.h — the context tables of `cpex run`, by the request lines'
 * "context" id, kept from one line to the next (a pre hook's line to its
 * post hook's line).
 *
 * The table is bounded: it holds at most `max` ids, and storing one more
 * drops the least recently used one (the id whose last line is the oldest;
 * taking and storing again is a use). A dropped id used again starts with
 * no table, as a new request would. A hash map with a recency list: each
 * operation is O(1) on average, however many ids a run sees.
 */
#ifndef CPEX_CLI_CONTEXTS_H
#define CPEX_CLI_CONTEXTS_H

#include <stdbool.h>
#include <stddef.h>

#include <cpex/cpex.h>

/** The default of --max-contexts. */
#define CLI_CONTEXTS_DEFAULT_MAX 10000

typedef struct cli_contexts cli_contexts;

/** A map that holds at most `max` ids (at least 1). NULL on OOM. */
cli_contexts *cli_contexts_new(size_t max);
/** Free every table still held, and the map. NULL is allowed. */
void cli_contexts_free(cli_contexts *map);
/** Take the table stored under `id` out of the map (NULL when none); the caller owns it. */
cpex_context_table *cli_contexts_take(cli_contexts *map, const char *id);
/**
 * Store `table` under `id` (taken over; freed on failure) as the most
 * recently used id, replacing what the id held; drops the least recently
 * used ids beyond the maximum. False on OOM.
 */
bool cli_contexts_put(cli_contexts *map, const char *id, cpex_context_table *table);
/** Whether `id` holds a table (does not count as a use). */
bool cli_contexts_has(const cli_contexts *map, const char *id);
/** Number of ids holding a table. */
size_t cli_contexts_count(const cli_contexts *map);
/** Number of ids dropped to stay within the maximum, so far. */
size_t cli_contexts_evicted(const cli_contexts *map);

#endif
