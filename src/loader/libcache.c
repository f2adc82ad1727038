/* libcache.c — see libcache.h. A few entries (distinct library paths of
 * recent loads), searched linearly under one lock; entries older than the
 * TTL are dropped as new ones come. */
#include "loader/libcache.h"

#include <pthread.h>
#include <string.h>
#include <time.h>

#include "util/alloc.h"
#include "util/clock.h"

/* Distinct paths kept at most; the oldest goes first. */
#define LIBCACHE_MAX 64

typedef struct entry {
    char *written;
    cpex__libcheck check;
    int64_t at_ns; /* when it was checked (monotonic) */
} entry;

#define MANIFEST_SLOTS 8

typedef struct manifest_slot {
    const void *dl; /* NULL: empty */
    struct stat st;
    cpex__manifest_copy *copy; /* one reference; NULL: the library has none */
} manifest_slot;

struct cpex__libcache {
    pthread_mutex_t lock;
    entry e[LIBCACHE_MAX];
    size_t count;
    manifest_slot man[MANIFEST_SLOTS];
    size_t man_next; /* the slot the next put replaces */
};

cpex__libcache *cpex__libcache_new(void)
{
    cpex__libcache *c = cpex__calloc(1, sizeof *c);
    if (c)
        pthread_mutex_init(&c->lock, NULL);
    return c;
}

void cpex__libcheck_clear(cpex__libcheck *check)
{
    cpex__free(check->resolved);
    cpex__free(check->trust);
    memset(check, 0, sizeof *check);
}

static void drop(cpex__libcache *c, size_t i)
{
    cpex__free(c->e[i].written);
    cpex__libcheck_clear(&c->e[i].check);
    c->e[i] = c->e[--c->count];
}

void cpex__libcache_free(void *cache)
{
    cpex__libcache *c = cache;
    if (!c)
        return;
    while (c->count)
        drop(c, 0);
    for (size_t i = 0; i < MANIFEST_SLOTS; i++)
        cpex__manifest_copy_free(c->man[i].copy);
    pthread_mutex_destroy(&c->lock);
    cpex__free(c);
}

static bool same_time(struct timespec a, struct timespec b)
{
    return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec;
}

static bool same_file(const struct stat *a, const struct stat *b)
{
    return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
           same_time(a->st_mtim, b->st_mtim) && same_time(a->st_ctim, b->st_ctim) &&
           S_ISREG(a->st_mode) && S_ISREG(b->st_mode);
}

static bool copy_check(cpex__libcheck *to, const cpex__libcheck *from)
{
    memset(to, 0, sizeof *to);
    to->resolved = cpex__strdup(from->resolved);
    to->trust = from->trust ? cpex__strdup(from->trust) : NULL;
    to->st = from->st;
    memcpy(to->sha256, from->sha256, sizeof to->sha256);
    if (!to->resolved || (from->trust && !to->trust)) {
        cpex__libcheck_clear(to);
        return false;
    }
    return true;
}

bool cpex__libcache_get(cpex__libcache *c, const char *written, cpex__libcheck *out)
{
    if (!c || !written)
        return false;
    int64_t now = cpex__clock_ns(false);
    bool found = false;
    pthread_mutex_lock(&c->lock);
    for (size_t i = 0; i < c->count; i++) {
        if (now - c->e[i].at_ns >= CPEX__LIBCACHE_TTL_NS) {
            drop(c, i--);
            continue;
        }
        if (!found && strcmp(c->e[i].written, written) == 0)
            found = copy_check(out, &c->e[i].check);
    }
    pthread_mutex_unlock(&c->lock);
    if (!found)
        return false;
    /* The same file, unchanged, still at that path (links followed). */
    struct stat now_st;
    if (stat(written, &now_st) != 0 || !same_file(&now_st, &out->st)) {
        cpex__libcheck_clear(out);
        return false;
    }
    return true;
}

void cpex__libcache_put(cpex__libcache *c, const char *written, const cpex__libcheck *check)
{
    if (!c || !written || !check->resolved)
        return;
    entry n = {cpex__strdup(written), {0}, cpex__clock_ns(false)};
    if (!n.written || !copy_check(&n.check, check)) {
        cpex__free(n.written);
        return;
    }
    pthread_mutex_lock(&c->lock);
    for (size_t i = 0; i < c->count; i++)
        if (strcmp(c->e[i].written, written) == 0) {
            drop(c, i);
            break;
        }
    if (c->count == LIBCACHE_MAX) { /* the oldest goes */
        size_t old = 0;
        for (size_t i = 1; i < c->count; i++)
            if (c->e[i].at_ns < c->e[old].at_ns)
                old = i;
        drop(c, old);
    }
    c->e[c->count++] = n;
    pthread_mutex_unlock(&c->lock);
}

bool cpex__libcache_manifest_get(cpex__libcache *c, const void *dl, const struct stat *st,
                                 cpex__manifest_copy **out)
{
    *out = NULL;
    if (!c || !dl)
        return false;
    bool found = false;
    pthread_mutex_lock(&c->lock);
    for (size_t i = 0; i < MANIFEST_SLOTS && !found; i++) {
        manifest_slot *s = &c->man[i];
        if (s->dl == dl && same_file(&s->st, st)) {
            *out = cpex__manifest_copy_ref(s->copy);
            found = true;
        }
    }
    pthread_mutex_unlock(&c->lock);
    return found;
}

void cpex__libcache_manifest_put(cpex__libcache *c, const void *dl, const struct stat *st,
                                 cpex__manifest_copy *copy)
{
    if (!c || !dl)
        return;
    cpex__manifest_copy *old = NULL;
    pthread_mutex_lock(&c->lock);
    size_t i = 0;
    while (i < MANIFEST_SLOTS && c->man[i].dl != dl)
        i++;
    if (i == MANIFEST_SLOTS) {
        i = c->man_next;
        c->man_next = (c->man_next + 1) % MANIFEST_SLOTS;
    }
    old = c->man[i].copy;
    c->man[i].dl = dl;
    c->man[i].st = *st;
    c->man[i].copy = cpex__manifest_copy_ref(copy);
    pthread_mutex_unlock(&c->lock);
    cpex__manifest_copy_free(old);
}
