/* arena.c — see arena.h. */
#include "isolation/arena.h"

#include <stdint.h>
#include <string.h>

#include "util/alloc.h"

#define CHUNK_MIN (16u * 1024u)

struct cpex__iso_chunk {
    cpex__iso_chunk *next;
    size_t size, used;
    _Alignas(16) unsigned char mem[];
};

void *cpex__iso_arena_alloc(cpex__iso_arena *a, size_t size)
{
    size = (size + 15u) & ~(size_t)15u;
    cpex__iso_chunk *c = a->chunks;
    if (!c || c->size - c->used < size) {
        if (size > SIZE_MAX / 2)
            return NULL;
        size_t want = size > CHUNK_MIN ? size : CHUNK_MIN;
        cpex__iso_chunk *n = cpex__malloc(sizeof *n + want);
        if (!n)
            return NULL;
        n->size = want;
        n->used = 0;
        n->next = c;
        a->chunks = c = n;
    }
    void *p = c->mem + c->used;
    c->used += size;
    memset(p, 0, size);
    return p;
}

bool cpex__iso_arena_own(cpex__iso_arena *a, json_t *v)
{
    json_t **n = cpex__grow(a->owned, a->owned_count, &a->owned_cap, sizeof *n, 16);
    if (!n) {
        json_decref(v);
        return false;
    }
    a->owned = n;
    a->owned[a->owned_count++] = v;
    return true;
}

void cpex__iso_arena_reset(cpex__iso_arena *a)
{
    for (size_t i = 0; i < a->owned_count; i++)
        json_decref(a->owned[i]);
    a->owned_count = 0;
    cpex__iso_chunk *c = a->chunks;
    while (c && c->next) {
        cpex__iso_chunk *next = c->next;
        cpex__free(c);
        c = next;
    }
    a->chunks = c;
    if (c)
        c->used = 0;
}

void cpex__iso_arena_free(cpex__iso_arena *a)
{
    cpex__iso_arena_reset(a);
    cpex__free(a->chunks);
    cpex__free(a->owned);
    memset(a, 0, sizeof *a);
}
