/*
 * route_cache.c — route keys, plans and the per-snapshot route cache
 * (routing.h).
 *
 * A hit is: read the extensions' meta record (its strings and the
 * entity's hash, made when the meta slot was set), fold in the hook and
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
#include "core/route_lookup.h"

#include <string.h>

#include "model/extensions_internal.h"
#include "util/alloc.h"


/* ------------------------------------------------------------------ */
/* Keys                                                                */
/* ------------------------------------------------------------------ */

static bool key_from_meta(const cpex__policy *p, const cpex__hook *hook, const cpex_extensions *ext,
                          const cpex__ext_meta *meta, cpex__route_key *key)
{
    uint32_t hook_id = hook->id;
    key->type = meta->type;
    key->name = meta->name;
    key->scope = meta->scope;
    key->hook_id = hook_id;
    key->type_id = meta->type_id;
    key->group_count = 0;
    key->uncacheable = false;
    uint64_t h = cpex__route_base_hash(hook, meta);
    /* Only tags that name a group can change the plan (decision 3): the
     * others stay out of the key, so per-request tags cannot flood it. */
    if (p->table && meta->tag_count) {
        for (size_t i = 0; i < meta->tag_count; i++) {
            cpex_str t = cpex__extensions_item_str(ext, CPEX_EXT_TAGS, i);
            int g = cpex__policy_group(p, t.ptr, t.len, cpex__hash_bytes(t.ptr, t.len));
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
            h = cpex__route_mix(h, key->groups[i] + 1);
    }
    key->hash = h;
    return true;
}

bool cpex__route_key_make(const cpex__policy *p, const cpex__hook *h, const cpex_extensions *ext,
                          cpex__route_key *key)
{
    if (!ext)
        return false;
    const cpex__ext_meta *meta = cpex__extensions_meta_of(ext);
    if (!meta->keyed)
        return false;
    return key_from_meta(p, h, ext, meta, key);
}

static inline bool entry_matches(const cpex__route_entry *e, const cpex__route_key *k)
{
    if (e->hash != k->hash || e->hook_id != k->hook_id || e->group_count != k->group_count ||
        e->type_id != k->type_id || e->has_scope != (k->scope.ptr != NULL))
        return false;
    if (!cpex__route_same_str(e->name, e->name_len, k->name) ||
        (!e->type_id && !cpex__route_same_str(e->type, e->type_len, k->type)))
        return false;
    if (e->has_scope && !cpex__route_same_str(e->scope, e->scope_len, k->scope))
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
    size_t ids = n * sizeof(uint32_t); /* the plan's metric ids (observe.h), then the groups */
    head += ids;
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
    e->tag = cpex__route_tag(
        key->hook_id, cpex__ext_meta_small(key->type_id, key->scope.ptr != NULL, key->name.len),
        key->group_count);
    cpex__hash_words(key->name.ptr, key->name.len, &e->name_w0, &e->name_w1);
    e->hook_id = key->hook_id;
    e->type_id = key->type_id;
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
    cpex__plan_init(&e->plan, h, e->entries, n, (uint32_t *)(void *)((char *)e + head - ids),
                    false);
    cpex__plan_phases(&e->plan);
    return e;
}

void cpex__route_plan_free(void *owned)
{
    cpex__route_entry *e = owned;
    if (e)
        cpex__plan_release(&e->plan);
    cpex__free(e);
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

const cpex__hook *cpex__route_lookup(cpex__route_state *rs, const cpex__hook *h,
                                     const cpex_extensions *ext, void **owned)
{
    *owned = NULL;
    const cpex__hook *plan = cpex__route_cached(rs, h, ext);
    if (plan)
        return plan; /* cached, or no entity (h) */
    const cpex__ext_meta *m = cpex__extensions_meta_of(ext);
    if (m->plain || !rs->has_groups) {
        /* No tag that may name a group, but a key the words do not say
         * whole (or tags): the probe that compares strings. */
        const cpex__route_entry *e = cpex__route_probe(rs, h, m, false);
        if (e)
            return &e->plan;
    }
    /* A miss, or a key with tags: the whole key, then the generic path. */
    cpex__route_key key;
    key_from_meta(rs->policy, h, ext, cpex__extensions_meta_of(ext), &key);
    return cpex__route_plan(rs, h, &key, owned);
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
    rs->enabled = policy->enabled;
    rs->has_groups = policy->table != NULL;
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
        cpex__route_plan_free(atomic_load_explicit(&slots[i], memory_order_relaxed));
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
