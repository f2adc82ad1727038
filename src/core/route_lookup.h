/*
 * route_lookup.h — the route cache hit, inline in the invoke path (core
 * layer, internal; routing.h has the rest).
 *
 * The steady state of a routed gateway is a cached plan for a key without
 * runtime tags naming groups: one read of the meta slot, one hash of the
 * entity name, one probe. Inlined into invoke.c so that it costs no call
 * of its own; everything else goes to cpex__route_lookup (route_cache.c).
 */
#ifndef CPEX_CORE_ROUTE_LOOKUP_H
#define CPEX_CORE_ROUTE_LOOKUP_H

#include "core/hash.h"
#include "core/routing.h"
#include "model/extensions_internal.h"

static inline uint64_t cpex__route_mix(uint64_t h, uint64_t v)
{
    return (h ^ v) * 0x9e3779b97f4a7c15ull;
}

/* The four entity types routes know, as 1..4 (no hashing); 0 for others. */
static inline uint32_t cpex__route_type_id(cpex_str t)
{
    switch (t.len) {
    case 3: return cpex__bytes_eq(t.ptr, "llm", 3) ? 4 : 0;
    case 4: return cpex__bytes_eq(t.ptr, "tool", 4) ? 1 : 0;
    case 6: return cpex__bytes_eq(t.ptr, "prompt", 6) ? 3 : 0;
    case 8: return cpex__bytes_eq(t.ptr, "resource", 8) ? 2 : 0;
    default: return 0;
    }
}

/* The key's hash without its groups (those are mixed in after, in order). */
static inline uint64_t cpex__route_base_hash(uint32_t hook_id, uint32_t type_id,
                                             const cpex__ext_meta *m)
{
    uint64_t h = cpex__hash_bytes(m->name.ptr, m->name.len) + ((uint64_t)hook_id << 32) +
                 (uint64_t)type_id * 0xff51afd7ed558ccdull;
    if (!type_id)
        h = cpex__route_mix(h, cpex__hash_bytes(m->type.ptr, m->type.len));
    if (m->scope.ptr)
        h = cpex__route_mix(h, cpex__hash_bytes(m->scope.ptr, m->scope.len) ^ 0x5c09e7ull);
    return h;
}

/* The small parts of a key, packed for one compare. */
static inline uint64_t cpex__route_tag(uint32_t hook_id, uint32_t type_id, bool has_scope,
                                       size_t group_count)
{
    return (uint64_t)hook_id | (uint64_t)(type_id & 0xff) << 32 | (uint64_t)has_scope << 40 |
           (uint64_t)(group_count & 0xffff) << 48;
}

static inline bool cpex__route_same_str(const char *a, size_t alen, cpex_str b)
{
    return alen == b.len && cpex__bytes_eq(a, b.ptr, alen);
}

/**
 * The cached plan of an invoke of `h` with `ext` (routing on): `h` itself
 * when the invoke names no entity, the plan when it is in the cache and
 * the key has no runtime tag that may name a group; else NULL (take
 * cpex__route_lookup). No allocation, no lock.
 */
static inline const cpex__hook *cpex__route_cached(cpex__route_state *rs, const cpex__hook *h,
                                                   const cpex_extensions *ext)
{
    if (!ext)
        return h;
    cpex__ext_meta meta;
    cpex__extensions_meta(ext, &meta);
    if (!meta.type.ptr || !meta.name.ptr)
        return h;
    if (meta.tag_count && rs->has_groups)
        return NULL;
    uint32_t type_id = cpex__route_type_id(meta.type);
    uint64_t hash = cpex__route_base_hash(h->id, type_id, &meta);
    uint64_t tag = cpex__route_tag(h->id, type_id, meta.scope.ptr != NULL, 0);
    _Atomic(cpex__route_entry *) *slots = atomic_load_explicit(&rs->slots, memory_order_acquire);
    if (!slots)
        return NULL;
    for (size_t pos = (size_t)hash & rs->slot_mask;; pos = (pos + 1) & rs->slot_mask) {
        const cpex__route_entry *e = atomic_load_explicit(&slots[pos], memory_order_acquire);
        if (!e)
            return NULL;
        if (e->hash == hash && e->tag == tag &&
            cpex__route_same_str(e->name, e->name_len, meta.name) &&
            (type_id || cpex__route_same_str(e->type, e->type_len, meta.type)) &&
            (!e->has_scope || cpex__route_same_str(e->scope, e->scope_len, meta.scope)))
            return &e->plan;
    }
}

/**
 * What an invoke of `h` with `ext` runs, routing on: cpex__route_cached,
 * else the plan built (and cached when there is room; *owned then may hold
 * a plan to free after the invoke). NULL on OOM.
 */
const cpex__hook *cpex__route_lookup(cpex__route_state *rs, const cpex__hook *h,
                                     const cpex_extensions *ext, void **owned);

#endif
