/*
 * route_lookup.h — the route cache hit, inline in the invoke path (core
 * layer, internal; routing.h has the rest).
 *
 * The steady state of a routed gateway is a cached plan for a key without
 * runtime tags naming groups. The extensions keep their meta slot ready
 * for it (cpex__ext_meta: the entity's strings, type id and hash, computed
 * by the setters when the host or a plugin sets them), so a hit is: a few
 * loads from the extensions, the hook folded into the entity's hash, one
 * probe of the snapshot's table, a compare. Inlined into invoke.c so that
 * it costs no call of its own; everything else goes to cpex__route_lookup
 * (route_cache.c).
 */
#ifndef CPEX_CORE_ROUTE_LOOKUP_H
#define CPEX_CORE_ROUTE_LOOKUP_H

#include "core/routing.h"
#include "model/extensions_internal.h"
#include "util/hash.h"

static inline uint64_t cpex__route_mix(uint64_t h, uint64_t v) { return cpex__hash_mix(h, v); }

/* The key's hash without its groups (those are mixed in after, in order):
 * the entity's hash from the extensions and the hook's (of its name). */
static inline uint64_t cpex__route_base_hash(const cpex__hook *h, const cpex__ext_meta *m)
{
    return m->hash ^ h->hash;
}

/* The small parts of a key, packed for one compare: the hook id, then
 * cpex__ext_meta.small (type id, scope present, name length) with bit 9
 * for "has groups" (their count and list are compared apart). */
static inline uint64_t cpex__route_tag(uint32_t hook_id, uint32_t small, size_t group_count)
{
    return (uint64_t)hook_id | (uint64_t)(small | (uint32_t)(group_count > 0) << 9) << 32;
}

static inline bool cpex__route_same_str(const char *a, size_t alen, cpex_str b)
{
    return alen == b.len && cpex__bytes_eq(a, b.ptr, alen);
}

/**
 * The entry of the cache for an invoke of `h` whose meta record is `m`
 * (keyed, and no runtime tag that may name a group), or NULL. `words`
 * (a constant) when the record's words say it all (m->words_only): then
 * the entry's small parts and name words are the whole compare, with no
 * loop and no call, and the hashes need no compare either. Else the
 * strings are compared as well. Loads with acquire, no lock, no write.
 */
static inline __attribute__((always_inline)) const cpex__route_entry *
cpex__route_probe(cpex__route_state *rs, const cpex__hook *h, const cpex__ext_meta *m, bool words)
{
    _Atomic(cpex__route_entry *) *slots = atomic_load_explicit(&rs->slots, memory_order_acquire);
    if (!slots)
        return NULL;
    uint64_t hash = cpex__route_base_hash(h, m);
    uint64_t tag = (uint64_t)h->id | (uint64_t)m->small << 32; /* cpex__route_tag, no groups */
    for (size_t pos = (size_t)hash & rs->slot_mask;; pos = (pos + 1) & rs->slot_mask) {
        const cpex__route_entry *e = atomic_load_explicit(&slots[pos], memory_order_acquire);
        if (!e)
            return NULL;
        if (e->tag != tag || e->name_w0 != m->name_w0 || e->name_w1 != m->name_w1)
            continue;
        if (words)
            return e;
        if (e->hash == hash &&
            (m->name.len <= 16 || /* the words were its first and last 8 bytes */
             (e->name_len == m->name.len &&
              cpex__bytes_eq(e->name + 8, m->name.ptr + 8, m->name.len - 16))) &&
            (m->type_id || cpex__route_same_str(e->type, e->type_len, m->type)) &&
            (!e->has_scope || cpex__route_same_str(e->scope, e->scope_len, m->scope)))
            return e;
    }
}

/**
 * The cached plan of an invoke of `h` with `ext` (routing on), inline in
 * the invoke: `h` itself when the invoke names no entity, the plan when
 * the record's words say the whole key (no runtime tags, a known entity
 * type, no scope, a name of up to 16 bytes: m->fast) and it is in the
 * cache; else NULL (take cpex__route_lookup, which also compares strings
 * and looks at tags). No allocation, no lock.
 */
static inline __attribute__((always_inline)) const cpex__hook *
cpex__route_cached(cpex__route_state *rs, const cpex__hook *h, const cpex_extensions *ext)
{
    if (!ext)
        return h;
    const cpex__ext_meta *m = cpex__extensions_meta_of(ext);
    if (__builtin_expect(!m->fast, 0))
        return m->keyed ? NULL : h; /* no entity: every plugin of the hook */
    const cpex__route_entry *e = cpex__route_probe(rs, h, m, true);
    return e ? &e->plan : NULL;
}

/**
 * What an invoke of `h` with `ext` runs, routing on: cpex__route_cached,
 * else the plan built (and cached when there is room; *owned then may hold
 * a plan to free after the invoke). NULL on OOM.
 */
const cpex__hook *cpex__route_lookup(cpex__route_state *rs, const cpex__hook *h,
                                     const cpex_extensions *ext, void **owned);

#endif
