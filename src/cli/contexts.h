/*
 * contexts.h — context tables by the requests' "context" id, kept from one
 * request to the next (a pre hook's request to its post hook's): the lines
 * of `cpex run`, the POSTs of `cpex serve`.
 *
 * The map is bounded twice:
 *   - by count: it holds at most `max` ids, and storing one more drops the
 *     least recently used one (the id whose last use is the oldest; taking
 *     and storing again is a use);
 *   - by age (when `ttl` > 0): an id not used for `ttl` seconds has
 *     expired. It is dropped when met (take, has), and by
 *     cli_contexts_expire, which a server calls now and then so that
 *     abandoned ids go even when no request comes.
 * A dropped or expired id used again starts with no table, as a new
 * request would. A hash map with a recency list: each operation is O(1) on
 * average, however many ids pass; the expired ids are always the oldest
 * end of the recency list, so finding them costs only what is dropped.
 *
 * Thread-safe: every function takes the map's lock (a server calls them
 * from its request threads and its housekeeping thread). Two requests with
 * the same id at once: the first take gets the table, the second gets
 * none; the last put wins.
 */
#ifndef CPEX_CLI_CONTEXTS_H
#define CPEX_CLI_CONTEXTS_H

#include <stdbool.h>
#include <stddef.h>

#include <cpex/cpex.h>

/** The default of --max-contexts. */
#define CLI_CONTEXTS_DEFAULT_MAX 10000

typedef struct cli_contexts cli_contexts;

/**
 * A map that holds at most `max` ids (at least 1), each for at most `ttl`
 * seconds after its last use (0: no limit). NULL on OOM.
 */
cli_contexts *cli_contexts_new(size_t max, double ttl);
/** Free every table still held, and the map. NULL is allowed. */
void cli_contexts_free(cli_contexts *map);
/**
 * Take the table stored under `id` out of the map (NULL when none, or when
 * the id has expired: its table is freed); the caller owns it.
 */
cpex_context_table *cli_contexts_take(cli_contexts *map, const char *id);
/**
 * Store `table` under `id` (taken over; freed on failure) as the most
 * recently used id, replacing what the id held; drops the expired ids and
 * the least recently used ids beyond the maximum. False on OOM.
 */
bool cli_contexts_put(cli_contexts *map, const char *id, cpex_context_table *table);
/** Whether `id` holds a table that has not expired (does not count as a use). */
bool cli_contexts_has(const cli_contexts *map, const char *id);
/** Drop every expired id now; returns how many went. */
size_t cli_contexts_expire(cli_contexts *map);
/** Number of ids holding a table (expired ones not dropped yet included). */
size_t cli_contexts_count(const cli_contexts *map);
/** Number of ids dropped to stay within the maximum, so far. */
size_t cli_contexts_evicted(const cli_contexts *map);
/** Number of ids dropped because they expired, so far. */
size_t cli_contexts_expired(const cli_contexts *map);
/**
 * Replace the clock (seconds, CLOCK_MONOTONIC by default): tests step
 * time instead of sleeping. Call before any other use.
 */
void cli_contexts_set_clock(cli_contexts *map, double (*now)(void));

#endif
