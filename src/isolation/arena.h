/*
 * arena.h — memory for decoded views (a CMF message read from the
 * transport is a tree of small structs): bump allocation from chunks,
 * released all at once. JSON values handed to the arena are released with
 * it. A worker keeps one arena per channel and resets it after each call,
 * so a steady stream of calls allocates nothing.
 */
#ifndef CPEX_ISOLATION_ARENA_H
#define CPEX_ISOLATION_ARENA_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

typedef struct cpex__iso_chunk cpex__iso_chunk;

typedef struct cpex__iso_arena {
    cpex__iso_chunk *chunks; /* newest first; the oldest is kept by reset */
    json_t **owned;
    size_t owned_count, owned_cap;
} cpex__iso_arena;

/** Zeroed memory, 16-byte aligned, valid until reset; NULL on OOM. */
void *cpex__iso_arena_alloc(cpex__iso_arena *a, size_t size);
/** Release `v` with the arena. False on OOM (then `v` is released now). */
bool cpex__iso_arena_own(cpex__iso_arena *a, json_t *v);
/** Release everything but the first chunk. */
void cpex__iso_arena_reset(cpex__iso_arena *a);
/** Release everything. */
void cpex__iso_arena_free(cpex__iso_arena *a);

#endif
