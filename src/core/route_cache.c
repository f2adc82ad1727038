/*
 * route_cache.c — route keys, plans and the per-snapshot route cache
 * (routing.h).
 *
 * A hit is: read three strings of the extensions (no copy), hash them and
 * the runtime tags that name groups, load slots with acquire until the
 * entry whose key is equal, and hand its plan to the executor. No lock,
 * no allocation, no write to shared memory.
 *
 * A miss resolves and builds the plan in one allocation, then publishes it
 * with a compare-and-swap into an empty slot. The table never fills past
 * half (its size is at least twice route_cache_max_entries), so a probe
 * always ends; past the bound, plans are still built and run, just not
 * kept (one warning per snapshot, as CPEX's).
 */
#include "core/routing.h"

#include <string.h>

#include "model/extensions_internal.h"
#include "util/alloc.h"

struct cpex__route_entry {
    uint64_t hash;
    uint32_t hook_id;
    uint32_t group_count;
    bool has_scope;
    size_t type_len, name_len, scope_len;
    const char *type, *name, *scope; /* in the entry's own storage */
    const uint32_t *groups;
    cpex__hook plan;
    cpex__hook_entry entries[]; /* then the groups, then the strings */
};

/* ------------------------------------------------------------------ */
/* Keys                                                                */
/* ------------------------------------------------------------------ */

static inline uint64_t mix(uint64_t h, uint64_t v)
{
    h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
    return h;
}

bool cpex__route_key_make(const cpex__policy *p, uint32_t hook_id, const cpex_extensions *ext,
                          cpex__route_key *key)
{
    if (!ext)
        return false;
    key->type = cpex__extensions_get_str(ext, CPEX_EXT_ENTITY_TYPE);
    key->name = cpex__extensions_get_str(ext, CPEX_EXT_ENTITY_NAME);
    if (!key->type.ptr || !key->name.ptr)
        return false;
    key->scope = cpex__extensions_get_str(ext, CPEX_EXT_SCOPE);
    key->hook_id = hook_id;
    key->group_count = 0;
    key->uncacheable = false;
    uint64_t h = mix((uint64_t)hook_id * 0xff51afd7ed558ccdull,
                     cpex__hash_name(key->type.ptr, key->type.len));
    h = mix(h, cpex__hash_name(key->name.ptr, key->name.len));
    if (key->scope.ptr)
        h = mix(h, cpex__hash_name(key->scope.ptr, key->scope.len) ^ 0x5c09e7ull);
    /* Only tags that name a group can change the plan (decision 3): the
     * others stay out of the key, so per-request tags cannot flood it. */
    if (p->table) {
        size_t n = cpex_extensions_count(ext, CPEX_EXT_TAGS);
        for (size_t i = 0; i < n; i++) {
            cpex_str t = cpex__extensions_item_str(ext, CPEX_EXT_TAGS, i);
            int g = cpex__policy_group(p, t.ptr, t.len, cpex__hash_name(t.ptr, t.len));
            if (g < 0 || g == p->all_group)
                continue;
            size_t at = key->group_count;
            while (at > 0 && key->groups[at - 1] > (uint32_t)g)
                at--;
            if (at > 0 && key->groups[at - 1] == (uint32_t)g)
                continue;
            if (key->group_count == CPEX__KEY_MAX_GROUPS) {
                key->uncacheable = true;
                continue;
            }
            memmove(key->groups + at + 1, key->groups + at,
                    (key->group_count - at) * sizeof key->groups[0]);
            key->groups[at] = (uint32_t)g;
            key->group_count++;
        }
        for (size_t i = 0; i < key->group_count; i++)
            h = mix(h, key->groups[i] + 1);
    }
    key->hash = h;
    return true;
}

static inline bool same_str(const char *a, size_t alen, cpex_str b)
{
    return alen == b.len && memcmp(a, b.ptr, alen) == 0;
}

static inline bool entry_matches(const cpex__route_entry *e, const cpex__route_key *k)
{
    if (e->hash != k->hash || e->hook_id != k->hook_id || e->group_count != k->group_count ||
        e->has_scope != (k->scope.ptr != NULL))
        return false;
    if (!same_str(e->name, e->name_len, k->name) || !same_str(e->type, e->type_len, k->type))
        return false;
    if (e->has_scope && !same_str(e->scope, e->scope_len, k->scope))
        return false;
    for (uint32_t i = 0; i < e->group_count; i++)
        if (e->groups[i] != k->groups[i])
            return false;
    return true;
}

/* ------------------------------------------------------------------ */
/* Plans                                                               */
/* ------------------------------------------------------------------ */

/* Resolve `key` and build its plan over `h` in one allocation. */
static cpex__route_entry *build_entry(const cpex__policy *p, const cpex__hook *h,
                                      const cpex__route_key *key)
{
    cpex__resolution r;
    if (!cpex__resolve(p, key, &r)) {
        cpex__resolution_free(&r);
        return NULL;
    }
    size_t n = cpex__resolution_entries(&r, h, NULL, 0);
    size_t head = sizeof(cpex__route_entry) + n * sizeof(cpex__hook_entry);
    size_t groups = key->group_count * sizeof(uint32_t);
    size_t strings = key->type.len + key->name.len + (key->scope.ptr ? key->scope.len : 0) + 3;
    cpex__route_entry *e = cpex__malloc(head + groups + strings);
    if (!e) {
        cpex__resolution_free(&r);
        return NULL;
    }
    cpex__resolution_entries(&r, h, e->entries, n);
    cpex__resolution_free(&r);
    e->hash = key->hash;
    e->hook_id = key->hook_id;
    e->group_count = (uint32_t)key->group_count;
    uint32_t *g = (uint32_t *)(void *)((char *)e + head);
    if (groups)
        memcpy(g, key->groups, groups);
    e->groups = g;
    char *s = (char *)e + head + groups;
    memcpy(s, key->type.ptr, key->type.len);
    s[key->type.len] = '\0';
    e->type = s;
    e->type_len = key->type.len;
    s += key->type.len + 1;
    memcpy(s, key->name.ptr, key->name.len);
    s[key->name.len] = '\0';
    e->name = s;
    e->name_len = key->name.len;
    s += key->name.len + 1;
    e->has_scope = key->scope.ptr != NULL;
    e->scope_len = e->has_scope ? key->scope.len : 0;
    if (e->has_scope)
        memcpy(s, key->scope.ptr, key->scope.len);
    s[e->scope_len] = '\0';
    e->scope = s;
    /* The plan has the hook's identity and only the chosen entries. */
    e->plan = *h;
    e->plan.count = n;
    e->plan.entries = e->entries;
    cpex__plan_phases(&e->plan);
    return e;
}

void cpex__route_plan_free(void *owned)
{
    cpex__free(owned);
}

/* The slot table, made once (the first miss of a snapshot). */
static _Atomic(cpex__route_entry *) *slots_of(cpex__route_state *rs)
{
    _Atomic(cpex__route_entry *) *slots = atomic_load_explicit(&rs->slots, memory_order_acquire);
    if (slots)
        return slots;
    pthread_mutex_lock(&rs->make_lock);
    slots = atomic_load_explicit(&rs->slots, memory_order_relaxed);
    if (!slots) {
        slots = cpex__calloc(rs->slot_mask + 1, sizeof *slots);
        if (slots) {
            for (size_t i = 0; i <= rs->slot_mask; i++)
                atomic_init(&slots[i], NULL);
            atomic_store_explicit(&rs->slots, slots, memory_order_release);
        }
    }
    pthread_mutex_unlock(&rs->make_lock);
    return slots;
}

const cpex__hook *cpex__route_plan(cpex__route_state *rs, const cpex__hook *h,
                                   const cpex__route_key *key, void **owned)
{
    *owned = NULL;
    _Atomic(cpex__route_entry *) *slots = atomic_load_explicit(&rs->slots, memory_order_acquire);
    if (slots && !key->uncacheable) {
        for (size_t pos = (size_t)key->hash & rs->slot_mask;; pos = (pos + 1) & rs->slot_mask) {
            cpex__route_entry *e = atomic_load_explicit(&slots[pos], memory_order_acquire);
            if (!e)
                break;
            if (entry_matches(e, key))
                return &e->plan;
        }
    }
    cpex__route_entry *e = build_entry(rs->policy, h, key);
    if (!e)
        return NULL;
    if (key->uncacheable || rs->policy->cache_max == 0 || !(slots = slots_of(rs))) {
        *owned = e;
        return &e->plan;
    }
    if (atomic_fetch_add_explicit(&rs->used, 1, memory_order_relaxed) >= rs->policy->cache_max) {
        atomic_fetch_sub_explicit(&rs->used, 1, memory_order_relaxed);
        if (!atomic_exchange_explicit(&rs->full_warned, 1, memory_order_relaxed))
            cpex__log(rs->sink, CPEX_LOG_WARN, NULL,
                      "routing cache at capacity (%zu entries): further routes will not be "
                      "cached; increase plugin_settings.route_cache_max_entries or investigate "
                      "entity name growth",
                      rs->policy->cache_max);
        *owned = e;
        return &e->plan;
    }
    for (size_t pos = (size_t)key->hash & rs->slot_mask;; pos = (pos + 1) & rs->slot_mask) {
        cpex__route_entry *cur = NULL;
        if (atomic_compare_exchange_strong_explicit(&slots[pos], &cur, e, memory_order_acq_rel,
                                                    memory_order_acquire))
            return &e->plan;
        if (entry_matches(cur, key)) {
            /* Another invoke cached the same key first: use its plan. */
            atomic_fetch_sub_explicit(&rs->used, 1, memory_order_relaxed);
            cpex__free(e);
            return &cur->plan;
        }
    }
}

/* ------------------------------------------------------------------ */
/* Route state                                                         */
/* ------------------------------------------------------------------ */

/* Routing off: the conditions of each hook's entries (NULL when none has any). */
static bool build_hook_conds(cpex__route_state *rs, const cpex__snapshot *snap)
{
    if (!snap->hook_count)
        return true;
    rs->hook_conds = cpex__calloc(snap->hook_count, sizeof *rs->hook_conds);
    if (!rs->hook_conds)
        return false;
    rs->hook_count = snap->hook_count;
    for (size_t i = 0; i < snap->hook_count; i++) {
        const cpex__hook *h = &snap->hooks[i];
        const cpex__conds **c = NULL;
        for (size_t k = 0; k < h->count; k++) {
            const cpex__conds *one = cpex__policy_conds(rs->policy, h->entries[k].plugin->name);
            if (!one)
                continue;
            if (!c && !(c = cpex__calloc(h->count, sizeof *c)))
                return false;
            c[k] = one;
        }
        rs->hook_conds[i] = c;
    }
    return true;
}

cpex__route_state *cpex__route_state_new(cpex__policy *policy, const cpex__snapshot *snap,
                                         const cpex__log_sink *sink, bool *ok)
{
    *ok = true;
    if (!policy || (!policy->enabled && policy->cond_count == 0))
        return NULL; /* nothing to route: invokes take the unrouted path */
    cpex__route_state *rs = cpex__calloc(1, sizeof *rs);
    if (!rs) {
        *ok = false;
        return NULL;
    }
    rs->policy = cpex__policy_ref(policy);
    rs->sink = sink;
    pthread_mutex_init(&rs->make_lock, NULL);
    atomic_init(&rs->slots, NULL);
    atomic_init(&rs->used, 0);
    atomic_init(&rs->full_warned, 0);
    size_t size = 16;
    while (size < policy->cache_max * 2)
        size *= 2;
    rs->slot_mask = size - 1;
    if (!policy->enabled && !build_hook_conds(rs, snap)) {
        cpex__route_state_free(rs);
        *ok = false;
        return NULL;
    }
    return rs;
}

void cpex__route_state_free(cpex__route_state *rs)
{
    if (!rs)
        return;
    _Atomic(cpex__route_entry *) *slots = atomic_load(&rs->slots);
    for (size_t i = 0; slots && i <= rs->slot_mask; i++)
        cpex__free(atomic_load_explicit(&slots[i], memory_order_relaxed));
    cpex__free(slots);
    for (size_t i = 0; rs->hook_conds && i < rs->hook_count; i++)
        cpex__free((void *)rs->hook_conds[i]);
    cpex__free(rs->hook_conds);
    pthread_mutex_destroy(&rs->make_lock);
    cpex__policy_unref(rs->policy);
    cpex__free(rs);
}

size_t cpex__route_cache_size(const cpex__route_state *rs)
{
    return rs ? atomic_load_explicit(&((cpex__route_state *)rs)->used, memory_order_relaxed) : 0;
}
