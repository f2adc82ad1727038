/*
 * state_memory.c — the memory state backend: one store per manager, in
 * its process.
 *
 * Keys are spread over SHARDS shards by a hash seeded per store (callers
 * choose keys, so an unseeded hash would let them pile keys into one
 * chain); each shard is a chained hash table with its own mutex, so
 * threads working on different keys meet only when their keys share a
 * shard, and then for a lookup and a copy. Expiry is lazy (an expired key
 * is dropped when it is next touched) plus a cheap sweep: every write
 * looks at the next SWEEP_STEP buckets of its shard, and a store that is
 * full sweeps every shard once before it refuses a write.
 *
 * Memory is bounded by max_keys and max_bytes (keys, values, members and
 * the entries' own size); a write past them is CPEX_HOST_ENOMEM — nothing
 * is evicted, since an evicted rate-limit counter would hand out a fresh
 * budget.
 *
 * Values are stored as Redis does: text, a 64-bit counter (text that
 * state_incr parsed becomes one; state_get prints it), or a set of members
 * (kept sorted, so a lookup is a binary search).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "core/state.h"
#include "util/alloc.h"
#include "util/clock.h"

#define SHARDS 64u
#define SWEEP_STEP 2u
#define MIN_BUCKETS 8u
#define NEED_ROOM (-100) /* internal: retry after sweeping every shard */

enum { T_TEXT, T_INT, T_SET };

typedef struct blob {
    size_t len;
    char bytes[]; /* len bytes and a NUL */
} blob;

typedef struct entry {
    struct entry *next;
    uint64_t hash;
    int64_t expires; /* CLOCK_MONOTONIC ns; 0: never */
    uint32_t type;
    size_t bytes; /* what it counts against max_bytes */
    union {
        blob *text;
        int64_t num;
        struct {
            blob **items; /* sorted by (len, bytes) */
            size_t count, cap;
        } set;
    } v;
    size_t key_len;
    char key[];
} entry;

typedef struct shard {
    pthread_mutex_t lock;
    entry **buckets;
    size_t mask; /* bucket count - 1; buckets NULL until the first write */
    size_t count;
    size_t cursor; /* where the next sweep step looks */
    char pad[64];  /* keep neighbouring shards' locks off one cache line */
} shard;

typedef struct mem_backend {
    cpex__state_backend base;
    uint64_t seed;
    _Atomic uint64_t keys, bytes;
    shard shards[SHARDS];
} mem_backend;

static inline uint64_t load64(const char *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

/* A seeded multiply-xorshift hash, eight bytes per round. */
static uint64_t hash_key(uint64_t seed, const char *k, size_t n)
{
    uint64_t h = seed ^ (0x9e3779b97f4a7c15ull * (uint64_t)(n + 1));
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        h = (h ^ load64(k + i)) * 0xff51afd7ed558ccdull;
        h ^= h >> 29;
    }
    uint64_t w = 0;
    if (i < n)
        memcpy(&w, k + i, n - i);
    h = (h ^ w) * 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 32;
    h *= 0xff51afd7ed558ccdull;
    return h ^ (h >> 29);
}

static shard *shard_of(mem_backend *mb, uint64_t h) { return &mb->shards[h >> 58]; }

static int64_t now_ns(void) { return cpex__clock_ns(false); }

static bool expired(const entry *e, int64_t now) { return e->expires && now >= e->expires; }

static int64_t expiry_of(int64_t ttl_ms, int64_t now)
{
    return ttl_ms > 0 ? cpex__deadline_add(now, ttl_ms * 1000000) : 0;
}

static int64_t ttl_left_ms(const entry *e, int64_t now)
{
    if (!e->expires)
        return -1;
    int64_t left = e->expires - now;
    return left <= 0 ? 0 : (left + 999999) / 1000000;
}

static blob *blob_new(const void *bytes, size_t len)
{
    blob *b = cpex__malloc(sizeof *b + len + 1);
    if (!b)
        return NULL;
    b->len = len;
    if (len)
        memcpy(b->bytes, bytes, len);
    b->bytes[len] = '\0';
    return b;
}

static size_t blob_size(size_t len) { return sizeof(blob) + len + 1; }

/* Free an entry's value (not the entry). */
static void value_free(entry *e)
{
    if (e->type == T_TEXT) {
        cpex__free(e->v.text);
    } else if (e->type == T_SET) {
        for (size_t i = 0; i < e->v.set.count; i++)
            cpex__free(e->v.set.items[i]);
        cpex__free(e->v.set.items);
    }
}

static void entry_free(mem_backend *mb, shard *s, entry *e)
{
    atomic_fetch_sub_explicit(&mb->bytes, e->bytes, memory_order_relaxed);
    atomic_fetch_sub_explicit(&mb->keys, 1, memory_order_relaxed);
    s->count--;
    value_free(e);
    cpex__free(e);
}

/* Room for `more` bytes and, with new_key, one more key; false when full. */
static bool reserve(mem_backend *mb, size_t more, bool new_key)
{
    if (new_key && atomic_fetch_add(&mb->keys, 1) >= mb->base.opts.max_keys) {
        atomic_fetch_sub(&mb->keys, 1);
        return false;
    }
    if (atomic_fetch_add(&mb->bytes, more) + more > mb->base.opts.max_bytes) {
        atomic_fetch_sub(&mb->bytes, more);
        if (new_key)
            atomic_fetch_sub(&mb->keys, 1);
        return false;
    }
    return true;
}

static void unreserve(mem_backend *mb, size_t more, bool new_key)
{
    atomic_fetch_sub(&mb->bytes, more);
    if (new_key)
        atomic_fetch_sub(&mb->keys, 1);
}

/* Drop the expired entries of one bucket chain. */
static void sweep_bucket(mem_backend *mb, shard *s, size_t i, int64_t now)
{
    entry **pp = &s->buckets[i];
    while (*pp) {
        entry *e = *pp;
        if (expired(e, now)) {
            *pp = e->next;
            entry_free(mb, s, e);
        } else {
            pp = &e->next;
        }
    }
}

static void sweep_step(mem_backend *mb, shard *s, int64_t now)
{
    if (!s->buckets)
        return;
    for (unsigned i = 0; i < SWEEP_STEP; i++) {
        sweep_bucket(mb, s, s->cursor & s->mask, now);
        s->cursor++;
    }
}

static void sweep_all(mem_backend *mb)
{
    int64_t now = now_ns();
    for (unsigned i = 0; i < SHARDS; i++) {
        shard *s = &mb->shards[i];
        pthread_mutex_lock(&s->lock);
        for (size_t b = 0; s->buckets && b <= s->mask; b++)
            sweep_bucket(mb, s, b, now);
        pthread_mutex_unlock(&s->lock);
    }
}

/* The live entry for a key (an expired one is dropped), or NULL. */
static entry *find(mem_backend *mb, shard *s, const char *key, size_t klen, uint64_t h, int64_t now)
{
    if (!s->buckets)
        return NULL;
    entry **pp = &s->buckets[h & s->mask];
    for (; *pp; pp = &(*pp)->next) {
        entry *e = *pp;
        if (e->hash == h && e->key_len == klen && memcmp(e->key, key, klen) == 0) {
            if (expired(e, now)) {
                *pp = e->next;
                entry_free(mb, s, e);
                return NULL;
            }
            return e;
        }
    }
    return NULL;
}

static void unlink_entry(shard *s, entry *target)
{
    entry **pp = &s->buckets[target->hash & s->mask];
    while (*pp != target)
        pp = &(*pp)->next;
    *pp = target->next;
}

/* Double the bucket array when the shard is fuller than its buckets (best effort). */
static void maybe_grow(shard *s)
{
    if (s->buckets && s->count <= s->mask + 1)
        return;
    size_t n = s->buckets ? (s->mask + 1) * 2 : MIN_BUCKETS;
    entry **nb = cpex__calloc(n, sizeof *nb);
    if (!nb)
        return; /* chains just get longer */
    for (size_t i = 0; s->buckets && i <= s->mask; i++) {
        entry *e = s->buckets[i];
        while (e) {
            entry *next = e->next;
            e->next = nb[e->hash & (n - 1)];
            nb[e->hash & (n - 1)] = e;
            e = next;
        }
    }
    cpex__free(s->buckets);
    s->buckets = nb;
    s->mask = n - 1;
}

/* A new entry (the caller reserved its size and key); NULL on OOM. */
static entry *insert(shard *s, const char *key, size_t klen, uint64_t h, size_t bytes)
{
    maybe_grow(s);
    if (!s->buckets)
        return NULL;
    entry *e = cpex__calloc(1, sizeof *e + klen);
    if (!e)
        return NULL;
    e->hash = h;
    e->key_len = klen;
    memcpy(e->key, key, klen);
    e->bytes = bytes;
    e->next = s->buckets[h & s->mask];
    s->buckets[h & s->mask] = e;
    s->count++;
    return e;
}

static size_t entry_size(size_t klen) { return sizeof(entry) + klen; }

static int32_t full(cpex__state_err *e, const mem_backend *mb)
{
    snprintf(e->text, sizeof e->text,
             "the memory state store is full (max_keys %" PRIu64 ", max_bytes %" PRIu64 ")",
             mb->base.opts.max_keys, mb->base.opts.max_bytes);
    return CPEX_HOST_ENOMEM;
}

/* Run op once; when it needs room, sweep every shard and run it again. */
#define WITH_ROOM(call)                                                                            \
    do {                                                                                           \
        int32_t rc_ = (call);                                                                      \
        if (rc_ == NEED_ROOM) {                                                                    \
            sweep_all(mb);                                                                         \
            rc_ = (call);                                                                          \
            if (rc_ == NEED_ROOM)                                                                  \
                rc_ = full(e, mb);                                                                 \
        }                                                                                          \
        return rc_;                                                                                \
    } while (0)

/* ------------------------------------------------------------------ */
/* Operations                                                          */
/* ------------------------------------------------------------------ */

static int32_t m_get(cpex__state_backend *b, const char *key, size_t klen, int64_t deadline,
                     char **value, size_t *len, cpex__state_err *e)
{
    (void)deadline;
    (void)e;
    mem_backend *mb = (mem_backend *)b;
    uint64_t h = hash_key(mb->seed, key, klen);
    shard *s = shard_of(mb, h);
    int32_t rc = CPEX_HOST_OK;
    pthread_mutex_lock(&s->lock);
    entry *en = find(mb, s, key, klen, h, now_ns());
    if (!en) {
        rc = CPEX_HOST_ENOTFOUND;
    } else if (en->type == T_TEXT) {
        *len = en->v.text->len;
        *value = cpex__malloc(*len + 1);
        if (*value)
            memcpy(*value, en->v.text->bytes, *len + 1);
        else
            rc = CPEX_HOST_ENOMEM;
    } else if (en->type == T_INT) {
        char buf[24];
        int n = snprintf(buf, sizeof buf, "%" PRId64, en->v.num);
        *value = cpex__strndup(buf, (size_t)n);
        *len = (size_t)n;
        if (!*value)
            rc = CPEX_HOST_ENOMEM;
    } else {
        rc = CPEX_HOST_ETYPE;
    }
    pthread_mutex_unlock(&s->lock);
    return rc;
}

static int32_t set_once(mem_backend *mb, const char *key, size_t klen, const void *value,
                        size_t len, int64_t ttl_ms)
{
    uint64_t h = hash_key(mb->seed, key, klen);
    shard *s = shard_of(mb, h);
    int64_t now = now_ns();
    size_t size = entry_size(klen) + blob_size(len);
    pthread_mutex_lock(&s->lock);
    sweep_step(mb, s, now);
    entry *old = find(mb, s, key, klen, h, now);
    /* Reserve the whole new size first: the old value goes only once the new one is in. */
    if (!reserve(mb, size, old == NULL)) {
        pthread_mutex_unlock(&s->lock);
        return NEED_ROOM;
    }
    blob *text = blob_new(value, len);
    entry *en = old;
    if (text && !en)
        en = insert(s, key, klen, h, 0);
    if (!text || !en) {
        cpex__free(text);
        unreserve(mb, size, old == NULL);
        pthread_mutex_unlock(&s->lock);
        return CPEX_HOST_ENOMEM;
    }
    if (old) {
        value_free(old);
        atomic_fetch_sub(&mb->bytes, old->bytes);
    }
    en->type = T_TEXT;
    en->v.text = text;
    en->bytes = size;
    en->expires = expiry_of(ttl_ms, now);
    pthread_mutex_unlock(&s->lock);
    return CPEX_HOST_OK;
}

static int32_t m_set(cpex__state_backend *b, const char *key, size_t klen, const void *value,
                     size_t len, int64_t ttl_ms, int64_t deadline, cpex__state_err *e)
{
    (void)deadline;
    mem_backend *mb = (mem_backend *)b;
    WITH_ROOM(set_once(mb, key, klen, value, len, ttl_ms));
}

/* Text as a 64-bit integer, as strictly as Redis reads it ("-12", no '+', no spaces,
   no leading zeros). */
static bool parse_int(const blob *t, int64_t *out)
{
    const char *p = t->bytes, *end = t->bytes + t->len;
    bool neg = false;
    if (p == end || t->len > 20)
        return false;
    if (*p == '-') {
        neg = true;
        if (++p == end)
            return false;
    }
    if (*p == '0' && (end - p > 1 || neg))
        return false;
    uint64_t v = 0;
    for (; p < end; p++) {
        if (*p < '0' || *p > '9')
            return false;
        uint64_t d = (uint64_t)(*p - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    if (neg ? v > (uint64_t)INT64_MAX + 1 : v > (uint64_t)INT64_MAX)
        return false;
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return true;
}

static int32_t incr_once(mem_backend *mb, const char *key, size_t klen, int64_t delta,
                         int64_t ttl_ms, int64_t *value, int64_t *left, cpex__state_err *e)
{
    uint64_t h = hash_key(mb->seed, key, klen);
    shard *s = shard_of(mb, h);
    int64_t now = now_ns();
    int32_t rc = CPEX_HOST_OK;
    pthread_mutex_lock(&s->lock);
    sweep_step(mb, s, now);
    entry *en = find(mb, s, key, klen, h, now);
    if (!en) {
        size_t size = entry_size(klen);
        if (!reserve(mb, size, true)) {
            pthread_mutex_unlock(&s->lock);
            return NEED_ROOM;
        }
        en = insert(s, key, klen, h, size);
        if (!en) {
            unreserve(mb, size, true);
            pthread_mutex_unlock(&s->lock);
            return CPEX_HOST_ENOMEM;
        }
        en->type = T_INT;
        en->v.num = 0;
        en->expires = expiry_of(ttl_ms, now);
    }
    int64_t cur = 0;
    if (en->type == T_INT) {
        cur = en->v.num;
    } else if (en->type != T_TEXT || !parse_int(en->v.text, &cur)) {
        snprintf(e->text, sizeof e->text, "the key holds %s, not a counter",
                 en->type == T_SET ? "a set" : "text that is not a 64-bit integer");
        rc = CPEX_HOST_ETYPE;
        goto out;
    }
    if ((delta > 0 && cur > INT64_MAX - delta) || (delta < 0 && cur < INT64_MIN - delta)) {
        snprintf(e->text, sizeof e->text, "the increment would overflow a 64-bit counter");
        rc = CPEX_HOST_EINVAL;
        goto out;
    }
    if (en->type == T_TEXT) {
        size_t was = en->bytes;
        cpex__free(en->v.text);
        en->type = T_INT;
        en->bytes = entry_size(klen);
        atomic_fetch_sub(&mb->bytes, was - en->bytes);
    }
    en->v.num = cur + delta;
    if (value)
        *value = en->v.num;
    if (left)
        *left = ttl_left_ms(en, now);
out:
    pthread_mutex_unlock(&s->lock);
    return rc;
}

static int32_t m_incr(cpex__state_backend *b, const char *key, size_t klen, int64_t delta,
                      int64_t ttl_ms, int64_t deadline, int64_t *value, int64_t *left,
                      cpex__state_err *e)
{
    (void)deadline;
    mem_backend *mb = (mem_backend *)b;
    WITH_ROOM(incr_once(mb, key, klen, delta, ttl_ms, value, left, e));
}

static int32_t m_del(cpex__state_backend *b, const char *key, size_t klen, int64_t deadline,
                     cpex__state_err *e)
{
    (void)deadline;
    (void)e;
    mem_backend *mb = (mem_backend *)b;
    uint64_t h = hash_key(mb->seed, key, klen);
    shard *s = shard_of(mb, h);
    pthread_mutex_lock(&s->lock);
    entry *en = find(mb, s, key, klen, h, now_ns());
    if (en) {
        unlink_entry(s, en);
        entry_free(mb, s, en);
    }
    pthread_mutex_unlock(&s->lock);
    return en ? CPEX_HOST_OK : CPEX_HOST_ENOTFOUND;
}

/* Order of set members: by length, then bytes. */
static int member_cmp(const blob *m, const void *bytes, size_t len)
{
    if (m->len != len)
        return m->len < len ? -1 : 1;
    return len ? memcmp(m->bytes, bytes, len) : 0;
}

/* Where `bytes` is or would go in the sorted members; *found says which. */
static size_t member_pos(const entry *en, const void *bytes, size_t len, bool *found)
{
    size_t lo = 0, hi = en->v.set.count;
    *found = false;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = member_cmp(en->v.set.items[mid], bytes, len);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static int32_t add_once(mem_backend *mb, const char *key, size_t klen, const void *member,
                        size_t len, int64_t ttl_ms, cpex__state_err *e)
{
    uint64_t h = hash_key(mb->seed, key, klen);
    shard *s = shard_of(mb, h);
    int64_t now = now_ns();
    pthread_mutex_lock(&s->lock);
    sweep_step(mb, s, now);
    entry *en = find(mb, s, key, klen, h, now);
    if (en && en->type != T_SET) {
        pthread_mutex_unlock(&s->lock);
        snprintf(e->text, sizeof e->text, "the key holds %s, not a set",
                 en->type == T_INT ? "a counter" : "text");
        return CPEX_HOST_ETYPE;
    }
    bool found = false;
    size_t pos = en ? member_pos(en, member, len, &found) : 0;
    if (!found) {
        bool grow = !en || en->v.set.count == en->v.set.cap;
        size_t old_cap = en ? en->v.set.cap : 0;
        size_t cap = grow ? (old_cap ? old_cap * 2 : 4) : old_cap;
        size_t more =
            blob_size(len) + (cap - old_cap) * sizeof(blob *) + (en ? 0 : entry_size(klen));
        if (!reserve(mb, more, en == NULL)) {
            pthread_mutex_unlock(&s->lock);
            return NEED_ROOM;
        }
        /* Everything that can fail first, so a failure changes nothing. */
        blob *m = blob_new(member, len);
        blob **items = en ? en->v.set.items : NULL;
        if (m && grow) {
            blob **bigger = cpex__realloc(items, cap * sizeof *items);
            if (bigger)
                items = bigger;
            else
                cap = old_cap; /* the old array (if any) is untouched */
        }
        entry *fresh = m && cap > old_cap && !en ? insert(s, key, klen, h, 0) : NULL;
        if (!m || (grow && cap == old_cap) || (!en && !fresh)) {
            if (!en && cap > old_cap)
                cpex__free(items);
            else if (en && cap > old_cap) {
                en->v.set.items = items; /* keep the bigger array: it is valid */
                en->v.set.cap = cap;
                en->bytes += (cap - old_cap) * sizeof(blob *);
                more -= (cap - old_cap) * sizeof(blob *);
            }
            cpex__free(m);
            unreserve(mb, more, en == NULL);
            pthread_mutex_unlock(&s->lock);
            return CPEX_HOST_ENOMEM;
        }
        if (!en) {
            en = fresh;
            en->type = T_SET;
        }
        en->v.set.items = items;
        en->v.set.cap = cap;
        memmove(&items[pos + 1], &items[pos], (en->v.set.count - pos) * sizeof *items);
        items[pos] = m;
        en->v.set.count++;
        en->bytes += more;
    }
    if (ttl_ms > 0)
        en->expires = expiry_of(ttl_ms, now);
    pthread_mutex_unlock(&s->lock);
    return CPEX_HOST_OK;
}

static int32_t m_set_add(cpex__state_backend *b, const char *key, size_t klen, const void *member,
                         size_t len, int64_t ttl_ms, int64_t deadline, cpex__state_err *e)
{
    (void)deadline;
    mem_backend *mb = (mem_backend *)b;
    WITH_ROOM(add_once(mb, key, klen, member, len, ttl_ms, e));
}

static int32_t m_set_members(cpex__state_backend *b, const char *key, size_t klen, int64_t deadline,
                             cpex_str **members, size_t *count, cpex__state_err *e)
{
    (void)deadline;
    mem_backend *mb = (mem_backend *)b;
    uint64_t h = hash_key(mb->seed, key, klen);
    shard *s = shard_of(mb, h);
    int32_t rc = CPEX_HOST_OK;
    pthread_mutex_lock(&s->lock);
    entry *en = find(mb, s, key, klen, h, now_ns());
    if (en && en->type != T_SET) {
        snprintf(e->text, sizeof e->text, "the key holds %s, not a set",
                 en->type == T_INT ? "a counter" : "text");
        rc = CPEX_HOST_ETYPE;
    } else if (en && en->v.set.count) {
        size_t n = en->v.set.count, total = n * sizeof(cpex_str);
        for (size_t i = 0; i < n; i++)
            total += en->v.set.items[i]->len + 1;
        cpex_str *out = cpex__malloc(total);
        if (!out) {
            rc = CPEX_HOST_ENOMEM;
        } else {
            char *w = (char *)(out + n);
            for (size_t i = 0; i < n; i++) {
                const blob *m = en->v.set.items[i];
                memcpy(w, m->bytes, m->len + 1);
                out[i].ptr = w;
                out[i].len = m->len;
                w += m->len + 1;
            }
            *members = out;
            *count = n;
        }
    }
    pthread_mutex_unlock(&s->lock);
    return rc;
}

static int32_t m_ping(cpex__state_backend *b, int64_t deadline, cpex__state_err *e)
{
    (void)b;
    (void)deadline;
    (void)e;
    return CPEX_HOST_OK;
}

static uint64_t m_keys(cpex__state_backend *b) { return atomic_load(&((mem_backend *)b)->keys); }

static void m_free(cpex__state_backend *b)
{
    mem_backend *mb = (mem_backend *)b;
    for (unsigned i = 0; i < SHARDS; i++) {
        shard *s = &mb->shards[i];
        for (size_t k = 0; s->buckets && k <= s->mask; k++) {
            entry *en = s->buckets[k];
            while (en) {
                entry *next = en->next;
                value_free(en);
                cpex__free(en);
                en = next;
            }
        }
        cpex__free(s->buckets);
        pthread_mutex_destroy(&s->lock);
    }
    cpex__state_base_cleanup(b);
    cpex__free(mb);
}

static const cpex__state_ops memory_ops = {
    m_get, m_set, m_incr, m_del, m_set_add, m_set_members, m_ping, m_keys, m_free,
};

int cpex__state_memory_new(const cpex_state_options *o, const cpex__log_sink *log,
                           cpex__state_backend **out, char *why, size_t why_cap)
{
    if (o->max_keys > CPEX__STATE_MAX_KEYS_MAX || o->max_bytes < CPEX__STATE_MAX_BYTES_MIN ||
        o->max_bytes > CPEX__STATE_MAX_BYTES_MAX) {
        snprintf(why, why_cap,
                 "memory state: max_keys is 1 to %" PRIu64 " and max_bytes %" PRIu64 " to %" PRIu64
                 " (got %" PRIu64 " and %" PRIu64 ")",
                 CPEX__STATE_MAX_KEYS_MAX, CPEX__STATE_MAX_BYTES_MIN, CPEX__STATE_MAX_BYTES_MAX,
                 o->max_keys, o->max_bytes);
        return CPEX_E_INVALID;
    }
    mem_backend *mb = cpex__calloc(1, sizeof *mb);
    if (!mb) {
        snprintf(why, why_cap, "out of memory");
        return CPEX_E_NOMEM;
    }
    for (unsigned i = 0; i < SHARDS; i++)
        pthread_mutex_init(&mb->shards[i].lock, NULL);
    atomic_init(&mb->keys, 0);
    atomic_init(&mb->bytes, 0);
    if (getrandom(&mb->seed, sizeof mb->seed, GRND_NONBLOCK) != (ssize_t)sizeof mb->seed)
        mb->seed = (uint64_t)cpex__now_ns() ^ (uint64_t)(uintptr_t)mb;
    if (!cpex__state_base_init(&mb->base, &memory_ops, o, log)) {
        m_free(&mb->base);
        snprintf(why, why_cap, "out of memory");
        return CPEX_E_NOMEM;
    }
    mb->base.description =
        cpex__asprintf("memory (this process; at most %" PRIu64 " keys, %" PRIu64 " bytes)",
                       o->max_keys, o->max_bytes);
    if (!mb->base.description) {
        m_free(&mb->base);
        snprintf(why, why_cap, "out of memory");
        return CPEX_E_NOMEM;
    }
    *out = &mb->base;
    return CPEX_OK;
}
