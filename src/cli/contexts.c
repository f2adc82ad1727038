/* contexts.c — id -> context table, bounded by count and by age; see contexts.h. */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "contexts.h"

typedef struct entry {
    struct entry *chain;         /* next in the hash slot */
    struct entry *newer, *older; /* the recency list */
    size_t hash;
    double used; /* clock of the last use */
    char *id;
    cpex_context_table *table;
} entry;

struct cli_contexts {
    pthread_mutex_t lock; /* guards everything below */
    size_t max, count, evicted, expired;
    double ttl; /* seconds; 0: no limit */
    double (*now)(void);
    size_t nslots;
    entry **slots;
    entry *newest, *oldest;
};

static double monotonic_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static size_t hash(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ull;
    }
    return (size_t)h;
}

cli_contexts *cli_contexts_new(size_t max, double ttl)
{
    cli_contexts *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->max = max ? max : 1;
    m->ttl = ttl > 0 ? ttl : 0;
    m->now = monotonic_now;
    m->nslots = 64;
    m->slots = calloc(m->nslots, sizeof *m->slots);
    if (!m->slots || pthread_mutex_init(&m->lock, NULL) != 0) {
        free(m->slots);
        free(m);
        return NULL;
    }
    return m;
}

void cli_contexts_set_clock(cli_contexts *m, double (*now)(void))
{
    m->now = now ? now : monotonic_now;
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
    pthread_mutex_destroy(&m->lock);
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

static bool is_expired(const cli_contexts *m, const entry *e, double now)
{
    return m->ttl > 0 && now - e->used > m->ttl;
}

/* Drop the expired ids: all at the old end of the recency list, since a
   use moves an id to the new end. Lock held. */
static size_t drop_expired(cli_contexts *m, double now)
{
    size_t n = 0;
    while (m->oldest && is_expired(m, m->oldest, now)) {
        entry *old = m->oldest;
        cpex_context_table_free(remove_at(m, find(m, old->id, old->hash)));
        n++;
    }
    m->expired += n;
    return n;
}

cpex_context_table *cli_contexts_take(cli_contexts *m, const char *id)
{
    pthread_mutex_lock(&m->lock);
    double now = m->ttl > 0 ? m->now() : 0;
    drop_expired(m, now);
    entry **pp = find(m, id, hash(id));
    cpex_context_table *t = *pp ? remove_at(m, pp) : NULL;
    pthread_mutex_unlock(&m->lock);
    return t;
}

bool cli_contexts_has(const cli_contexts *cm, const char *id)
{
    cli_contexts *m = (cli_contexts *)cm; /* the lock only */
    pthread_mutex_lock(&m->lock);
    entry *e = *find(m, id, hash(id));
    bool held = e && !is_expired(m, e, m->ttl > 0 ? m->now() : 0);
    pthread_mutex_unlock(&m->lock);
    return held;
}

size_t cli_contexts_expire(cli_contexts *m)
{
    if (!m || m->ttl <= 0)
        return 0;
    pthread_mutex_lock(&m->lock);
    size_t n = drop_expired(m, m->now());
    pthread_mutex_unlock(&m->lock);
    return n;
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
    entry *e = calloc(1, sizeof *e);
    char *copy = strdup(id);
    if (!e || !copy) {
        free(e);
        free(copy);
        cpex_context_table_free(table);
        return false;
    }
    pthread_mutex_lock(&m->lock);
    double now = m->ttl > 0 ? m->now() : 0;
    drop_expired(m, now);
    /* Replace: a request's result table supersedes what the id held. */
    entry **pp = find(m, id, h);
    cpex_context_table *replaced = *pp ? remove_at(m, pp) : NULL;
    if (m->count >= m->nslots * 2)
        grow(m);
    e->hash = h;
    e->id = copy;
    e->table = table;
    e->used = now;
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
    pthread_mutex_unlock(&m->lock);
    cpex_context_table_free(replaced);
    return true;
}

/* The counters, read under the lock (another thread may be changing them). */
static size_t read_counter(const cli_contexts *cm, const size_t *field)
{
    if (!cm)
        return 0;
    cli_contexts *m = (cli_contexts *)cm;
    pthread_mutex_lock(&m->lock);
    size_t v = *field;
    pthread_mutex_unlock(&m->lock);
    return v;
}

size_t cli_contexts_count(const cli_contexts *m) { return read_counter(m, m ? &m->count : NULL); }

size_t cli_contexts_evicted(const cli_contexts *m)
{
    return read_counter(m, m ? &m->evicted : NULL);
}

size_t cli_contexts_expired(const cli_contexts *m)
{
    return read_counter(m, m ? &m->expired : NULL);
}
