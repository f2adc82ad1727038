/* contexts.c — id -> context table, bounded, least recently used out; see contexts.h. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "contexts.h"

typedef struct entry {
    struct entry *chain;       /* next in the hash slot */
    struct entry *newer, *older; /* the recency list */
    size_t hash;
    char *id;
    cpex_context_table *table;
} entry;

struct cli_contexts {
    size_t max, count, evicted;
    size_t nslots;
    entry **slots;
    entry *newest, *oldest;
};

static size_t hash(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ull;
    }
    return (size_t)h;
}

cli_contexts *cli_contexts_new(size_t max)
{
    cli_contexts *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->max = max ? max : 1;
    m->nslots = 64;
    m->slots = calloc(m->nslots, sizeof *m->slots);
    if (!m->slots) {
        free(m);
        return NULL;
    }
    return m;
}

void cli_contexts_free(cli_contexts *m)
{
    if (!m)
        return;
    for (entry *e = m->newest, *next; e; e = next) {
        next = e->older;
        cpex_context_table_free(e->table);
        free(e->id);
        free(e);
    }
    free(m->slots);
    free(m);
}

/* The slot pointer that points at the entry for `id` (or at NULL). */
static entry **find(const cli_contexts *m, const char *id, size_t h)
{
    entry **pp = &m->slots[h % m->nslots];
    while (*pp && ((*pp)->hash != h || strcmp((*pp)->id, id) != 0))
        pp = &(*pp)->chain;
    return pp;
}

static void unlink_recency(cli_contexts *m, entry *e)
{
    if (e->newer)
        e->newer->older = e->older;
    else
        m->newest = e->older;
    if (e->older)
        e->older->newer = e->newer;
    else
        m->oldest = e->newer;
    e->newer = e->older = NULL;
}

/* Remove the entry `*pp` points at from both lists; returns its table. */
static cpex_context_table *remove_at(cli_contexts *m, entry **pp)
{
    entry *e = *pp;
    cpex_context_table *t = e->table;
    *pp = e->chain;
    unlink_recency(m, e);
    free(e->id);
    free(e);
    m->count--;
    return t;
}

cpex_context_table *cli_contexts_take(cli_contexts *m, const char *id)
{
    entry **pp = find(m, id, hash(id));
    return *pp ? remove_at(m, pp) : NULL;
}

bool cli_contexts_has(const cli_contexts *m, const char *id)
{
    return *find(m, id, hash(id)) != NULL;
}

static void grow(cli_contexts *m)
{
    size_t n = m->nslots * 2;
    entry **slots = calloc(n, sizeof *slots);
    if (!slots)
        return; /* longer chains, still correct */
    for (size_t i = 0; i < m->nslots; i++) {
        for (entry *e = m->slots[i], *next; e; e = next) {
            next = e->chain;
            e->chain = slots[e->hash % n];
            slots[e->hash % n] = e;
        }
    }
    free(m->slots);
    m->slots = slots;
    m->nslots = n;
}

bool cli_contexts_put(cli_contexts *m, const char *id, cpex_context_table *table)
{
    size_t h = hash(id);
    /* Replace: a line's result table supersedes what the id held. */
    entry **pp = find(m, id, h);
    if (*pp)
        cpex_context_table_free(remove_at(m, pp));
    entry *e = calloc(1, sizeof *e);
    char *copy = strdup(id);
    if (!e || !copy) {
        free(e);
        free(copy);
        cpex_context_table_free(table);
        return false;
    }
    if (m->count >= m->nslots * 2)
        grow(m);
    e->hash = h;
    e->id = copy;
    e->table = table;
    e->chain = m->slots[h % m->nslots];
    m->slots[h % m->nslots] = e;
    e->older = m->newest;
    if (m->newest)
        m->newest->newer = e;
    m->newest = e;
    if (!m->oldest)
        m->oldest = e;
    m->count++;
    /* Over the maximum: the least recently used id goes, with its table. */
    while (m->count > m->max) {
        entry *old = m->oldest;
        cpex_context_table_free(remove_at(m, find(m, old->id, old->hash)));
        m->evicted++;
    }
    return true;
}

size_t cli_contexts_count(const cli_contexts *m) { return m ? m->count : 0; }

size_t cli_contexts_evicted(const cli_contexts *m) { return m ? m->evicted : 0; }
