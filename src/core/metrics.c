/*
 * metrics.c — counters that threads never contend on (observe.h).
 *
 * Every thread that counts for a manager has a shard of its own: blocks of
 * counter slots, one slot per label set (a plugin on a hook, a sink on a
 * hook, a hook), written only by that thread with plain loads and stores
 * (relaxed atomics, so a reader never sees a torn value; no lock prefix, no
 * fence, no shared cache line). A reader sums the shards. An invoke finds
 * its shard through a one-entry thread-local cache keyed by the metrics'
 * process-unique id: one compare.
 *
 * Shards are made on a thread's first count and live in two lists: the
 * metrics' (for readers) and the thread's (so that, when the thread exits,
 * its counts are folded into the metrics' retired shard and its memory
 * freed: a host that makes a thread per request does not grow without
 * bound). Both lists change only under one process-wide lock, taken on a
 * thread's first count for a manager, at thread exit, by readers and when
 * a metrics object is freed; never on the counting path.
 *
 * Label sets are kept by name, not by plugin instance: a plugin reloaded
 * under the same name keeps counting into the same series.
 */
#include <stdlib.h>
#include <string.h>

#include "core/observe.h"
#include "util/alloc.h"

typedef struct cpex__mthread {
    cpex__mshard *shards; /* this thread's, of every live metrics object */
} cpex__mthread;

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t g_key_once = PTHREAD_ONCE_INIT;
static pthread_key_t g_key;
static _Atomic uint64_t g_next_uid = 1;

_Thread_local cpex__mcache cpex__mcache_tl;
static _Thread_local cpex__mthread *tl_thread;

static void free_shard(cpex__mshard *sh)
{
    for (size_t b = 0; b < CPEX__MBLOCKS; b++)
        cpex__free(atomic_load_explicit(&sh->blocks[b], memory_order_relaxed));
    cpex__free(sh);
}

/* Add `from`'s counts into `into` (g_lock held; no thread writes either). */
static void fold(cpex__mshard *into, cpex__mshard *from)
{
    for (size_t b = 0; b < CPEX__MBLOCKS; b++) {
        cpex__mslot *src = atomic_load_explicit(&from->blocks[b], memory_order_relaxed);
        if (!src)
            continue;
        cpex__mslot *dst = atomic_load_explicit(&into->blocks[b], memory_order_relaxed);
        if (!dst) {
            /* Adopt the block whole: nothing to add. */
            atomic_store_explicit(&into->blocks[b], src, memory_order_release);
            atomic_store_explicit(&from->blocks[b], NULL, memory_order_relaxed);
            continue;
        }
        for (size_t i = 0; i < CPEX__MBLOCK_SLOTS; i++) {
            for (size_t c = 0; c < CPEX__MC_COUNT; c++)
                cpex__mc_add(&dst[i].c[c],
                             atomic_load_explicit(&src[i].c[c], memory_order_relaxed));
            for (size_t k = 0; k < CPEX_STATS_BUCKETS; k++)
                cpex__mc_add(&dst[i].b[k],
                             atomic_load_explicit(&src[i].b[k], memory_order_relaxed));
        }
    }
}

static void unlink_from_metrics(cpex__mshard *sh)
{
    cpex__mshard **pp = &sh->metrics->shards;
    while (*pp && *pp != sh)
        pp = &(*pp)->next;
    if (*pp)
        *pp = sh->next;
}

/* A thread exits: its counts move to the retired shards, its memory goes. */
static void thread_exit(void *arg)
{
    cpex__mthread *t = arg;
    pthread_mutex_lock(&g_lock);
    while (t->shards) {
        cpex__mshard *sh = t->shards;
        t->shards = sh->thread_next;
        unlink_from_metrics(sh);
        fold(sh->metrics->retired, sh);
        free_shard(sh);
    }
    pthread_mutex_unlock(&g_lock);
    if (tl_thread == t)
        tl_thread = NULL;
    cpex__mcache_tl.id = 0;
    cpex__mcache_tl.shard = NULL;
    cpex__free(t);
}

static _Atomic bool g_key_made;

static void make_key(void)
{
    if (pthread_key_create(&g_key, thread_exit) == 0)
        atomic_store(&g_key_made, true);
}

/* A host that dlcloses libcpex must not have threads run thread_exit, gone
 * with the library, when they end: the key goes with it (a thread that
 * counted keeps its few bytes). */
__attribute__((destructor)) static void drop_key(void)
{
    if (atomic_load(&g_key_made))
        pthread_key_delete(g_key);
}

cpex__metrics *cpex__metrics_new(void)
{
    pthread_once(&g_key_once, make_key);
    cpex__metrics *m = cpex__calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->retired = cpex__calloc(1, sizeof *m->retired);
    m->table = cpex__calloc(64, sizeof *m->table);
    if (!m->retired || !m->table) {
        cpex__free(m->retired);
        cpex__free(m->table);
        cpex__free(m);
        return NULL;
    }
    m->retired->metrics = m;
    m->mask = 63;
    m->uid = atomic_fetch_add(&g_next_uid, 1);
    pthread_mutex_init(&m->lock, NULL);
    return m;
}

void cpex__metrics_free(cpex__metrics *m)
{
    if (!m)
        return;
    /* No thread counts into `m` any more (the hub's last reference is
     * gone): take every shard out of its thread's list and free it. */
    pthread_mutex_lock(&g_lock);
    while (m->shards) {
        cpex__mshard *sh = m->shards;
        m->shards = sh->next;
        cpex__mshard **pp = &sh->thread->shards;
        while (*pp && *pp != sh)
            pp = &(*pp)->thread_next;
        if (*pp)
            *pp = sh->thread_next;
        free_shard(sh);
    }
    pthread_mutex_unlock(&g_lock);
    free_shard(m->retired);
    for (size_t i = 0; i < m->count; i++) {
        cpex__free(m->labels[i].plugin);
        cpex__free(m->labels[i].hook);
    }
    cpex__free(m->labels);
    cpex__free(m->table);
    pthread_mutex_destroy(&m->lock);
    cpex__free(m);
}

cpex__mshard *cpex__metrics_shard_slow(cpex__metrics *m)
{
    pthread_mutex_lock(&g_lock);
    if (!tl_thread) {
        tl_thread = cpex__calloc(1, sizeof *tl_thread);
        if (!tl_thread || pthread_setspecific(g_key, tl_thread) != 0) {
            cpex__free(tl_thread);
            tl_thread = NULL;
            pthread_mutex_unlock(&g_lock);
            return NULL;
        }
    }
    cpex__mshard *sh = tl_thread->shards;
    while (sh && sh->metrics != m)
        sh = sh->thread_next;
    if (!sh && (sh = cpex__calloc(1, sizeof *sh))) {
        sh->thread = tl_thread;
        sh->metrics = m;
        sh->thread_next = tl_thread->shards;
        tl_thread->shards = sh;
        sh->next = m->shards;
        m->shards = sh;
    }
    pthread_mutex_unlock(&g_lock);
    if (sh) {
        cpex__mcache_tl.id = m->uid;
        cpex__mcache_tl.shard = sh;
    }
    return sh;
}

cpex__mslot *cpex__mshard_grow(cpex__mshard *sh, uint32_t id)
{
    /* Only the owning thread adds blocks; readers see them through the
     * release store. */
    cpex__mslot *blk = cpex__calloc(CPEX__MBLOCK_SLOTS, sizeof *blk);
    if (!blk)
        return NULL;
    atomic_store_explicit(&sh->blocks[id / CPEX__MBLOCK_SLOTS], blk, memory_order_release);
    return &blk[id % CPEX__MBLOCK_SLOTS];
}

/* ------------------------------------------------------------------ */
/* Labels                                                              */
/* ------------------------------------------------------------------ */

static uint64_t label_hash(int kind, const char *plugin, const char *hook)
{
    uint64_t h = 1469598103934665603ull ^ (uint64_t)kind;
    for (const char *s = plugin; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    h = (h ^ 0xff) * 1099511628211ull;
    for (const char *s = hook; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h ^ (h >> 31);
}

static bool label_is(const cpex__mlabel *l, int kind, const char *plugin, const char *hook)
{
    return l->kind == kind && strcmp(l->plugin, plugin) == 0 && strcmp(l->hook, hook) == 0;
}

static bool grow_table(cpex__metrics *m)
{
    size_t size = (m->mask + 1) * 2;
    uint32_t *t = cpex__calloc(size, sizeof *t);
    if (!t)
        return false;
    for (size_t i = 0; i < m->count; i++) {
        const cpex__mlabel *l = &m->labels[i];
        size_t pos = (size_t)label_hash(l->kind, l->plugin, l->hook) & (size - 1);
        while (t[pos])
            pos = (pos + 1) & (size - 1);
        t[pos] = (uint32_t)(i + 1);
    }
    cpex__free(m->table);
    m->table = t;
    m->mask = size - 1;
    return true;
}

uint32_t cpex__metrics_id(cpex__metrics *m, int kind, const char *plugin, const char *hook)
{
    if (!plugin)
        plugin = "";
    if (!hook)
        hook = "";
    pthread_mutex_lock(&m->lock);
    uint32_t id = CPEX__NO_METRIC;
    size_t pos = (size_t)label_hash(kind, plugin, hook) & m->mask;
    while (m->table[pos]) {
        if (label_is(&m->labels[m->table[pos] - 1], kind, plugin, hook)) {
            id = m->table[pos] - 1;
            goto out;
        }
        pos = (pos + 1) & m->mask;
    }
    if (m->count >= CPEX__MAX_METRIC_IDS)
        goto out;
    cpex__mlabel *n = cpex__grow(m->labels, m->count, &m->cap, sizeof *n, 32);
    if (!n)
        goto out;
    m->labels = n;
    cpex__mlabel *l = &m->labels[m->count];
    l->kind = kind;
    l->plugin = cpex__strdup(plugin);
    l->hook = cpex__strdup(hook);
    if (!l->plugin || !l->hook) {
        cpex__free(l->plugin);
        cpex__free(l->hook);
        goto out;
    }
    id = (uint32_t)m->count++;
    if (m->count * 2 > m->mask + 1 && grow_table(m))
        goto out; /* the grown table holds it */
    if (m->count > m->mask) {
        /* No room left and no memory to grow: not counted. */
        m->count--;
        cpex__free(l->plugin);
        cpex__free(l->hook);
        id = CPEX__NO_METRIC;
        goto out;
    }
    pos = (size_t)label_hash(kind, plugin, hook) & m->mask;
    while (m->table[pos])
        pos = (pos + 1) & m->mask;
    m->table[pos] = id + 1;
out:
    pthread_mutex_unlock(&m->lock);
    return id;
}

/* ------------------------------------------------------------------ */
/* Reading                                                             */
/* ------------------------------------------------------------------ */

static void add_shard(cpex__msum *sums, size_t count, cpex__mshard *sh)
{
    for (size_t b = 0; b * CPEX__MBLOCK_SLOTS < count; b++) {
        cpex__mslot *blk = atomic_load_explicit(&sh->blocks[b], memory_order_acquire);
        if (!blk)
            continue;
        for (size_t i = 0; i < CPEX__MBLOCK_SLOTS && b * CPEX__MBLOCK_SLOTS + i < count; i++) {
            cpex__msum *s = &sums[b * CPEX__MBLOCK_SLOTS + i];
            for (size_t c = 0; c < CPEX__MC_COUNT; c++)
                s->c[c] += atomic_load_explicit(&blk[i].c[c], memory_order_relaxed);
            for (size_t k = 0; k < CPEX_STATS_BUCKETS; k++)
                s->b[k] += atomic_load_explicit(&blk[i].b[k], memory_order_relaxed);
        }
    }
}

bool cpex__metrics_read(cpex__metrics *m, cpex__mlabel **labels, cpex__msum **sums, size_t *count)
{
    *labels = NULL;
    *sums = NULL;
    *count = 0;
    pthread_mutex_lock(&m->lock);
    size_t n = m->count;
    cpex__mlabel *l = cpex__calloc(n ? n : 1, sizeof *l);
    cpex__msum *s = cpex__calloc(n ? n : 1, sizeof *s);
    bool ok = l && s;
    for (size_t i = 0; ok && i < n; i++) {
        l[i].kind = m->labels[i].kind;
        l[i].plugin = cpex__strdup(m->labels[i].plugin);
        l[i].hook = cpex__strdup(m->labels[i].hook);
        ok = l[i].plugin && l[i].hook;
    }
    pthread_mutex_unlock(&m->lock);
    if (!ok) {
        cpex__metrics_read_free(l, s, n);
        return false;
    }
    pthread_mutex_lock(&g_lock);
    for (cpex__mshard *sh = m->shards; sh; sh = sh->next)
        add_shard(s, n, sh);
    add_shard(s, n, m->retired);
    pthread_mutex_unlock(&g_lock);
    *labels = l;
    *sums = s;
    *count = n;
    return true;
}

void cpex__metrics_read_free(cpex__mlabel *labels, cpex__msum *sums, size_t count)
{
    for (size_t i = 0; labels && i < count; i++) {
        cpex__free(labels[i].plugin);
        cpex__free(labels[i].hook);
    }
    cpex__free(labels);
    cpex__free(sums);
}
