/* contexts.c — id -> context table, a chained hash map; see contexts.h. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "contexts.h"

typedef struct entry {
    struct entry *next;
    char *id;
    cpex_context_table *table;
} entry;

struct cli_contexts {
    size_t nslots;
    size_t count;
    entry **slots;
};

/* A request file may hold very many ids: a fixed table with chains that
   grows by doubling keeps each line O(1). */
static size_t hash(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ull;
    }
    return (size_t)h;
}

cli_contexts *cli_contexts_new(void)
{
    cli_contexts *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
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
    for (size_t i = 0; i < m->nslots; i++) {
        entry *e = m->slots[i];
        while (e) {
            entry *next = e->next;
            cpex_context_table_free(e->table);
            free(e->id);
            free(e);
            e = next;
        }
    }
    free(m->slots);
    free(m);
}

cpex_context_table *cli_contexts_take(cli_contexts *m, const char *id)
{
    entry **pp = &m->slots[hash(id) % m->nslots];
    for (; *pp; pp = &(*pp)->next) {
        if (strcmp((*pp)->id, id) == 0) {
            entry *e = *pp;
            cpex_context_table *t = e->table;
            *pp = e->next;
            free(e->id);
            free(e);
            m->count--;
            return t;
        }
    }
    return NULL;
}

static void grow(cli_contexts *m)
{
    size_t n = m->nslots * 2;
    entry **slots = calloc(n, sizeof *slots);
    if (!slots)
        return; /* longer chains, still correct */
    for (size_t i = 0; i < m->nslots; i++) {
        entry *e = m->slots[i];
        while (e) {
            entry *next = e->next;
            size_t s = hash(e->id) % n;
            e->next = slots[s];
            slots[s] = e;
            e = next;
        }
    }
    free(m->slots);
    m->slots = slots;
    m->nslots = n;
}

bool cli_contexts_put(cli_contexts *m, const char *id, cpex_context_table *table)
{
    /* Replace: a line's result table supersedes what the id held. */
    cpex_context_table_free(cli_contexts_take(m, id));
    entry *e = malloc(sizeof *e);
    char *copy = strdup(id);
    if (!e || !copy) {
        free(e);
        free(copy);
        cpex_context_table_free(table);
        return false;
    }
    if (m->count >= m->nslots * 2)
        grow(m);
    size_t s = hash(id) % m->nslots;
    e->id = copy;
    e->table = table;
    e->next = m->slots[s];
    m->slots[s] = e;
    m->count++;
    return true;
}

size_t cli_contexts_count(const cli_contexts *m) { return m ? m->count : 0; }
