/*
 * registry.c — immutable registry snapshots: hooks with their handlers
 * grouped by phase and sorted by priority, found by one hash lookup.
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "core/routing.h"
#include "core/observe.h"
#include "util/alloc.h"
#include "util/hash.h"

uint64_t cpex__hash_name(const char *name, size_t len)
{
    return cpex__hash_bytes(name, len); /* runs on every invoke by name (hash.h) */
}

static int entry_cmp(const void *a, const void *b)
{
    const cpex__hook_entry *x = a, *y = b;
    if (x->plugin->mode != y->plugin->mode)
        return x->plugin->mode < y->plugin->mode ? -1 : 1;
    if (x->plugin->priority != y->plugin->priority)
        return x->plugin->priority < y->plugin->priority ? -1 : 1;
    /* Equal priorities keep registration order: seq makes qsort stable. */
    if (x->plugin->seq != y->plugin->seq)
        return x->plugin->seq < y->plugin->seq ? -1 : 1;
    return 0;
}

static bool build_table(cpex__snapshot *s)
{
    size_t size = 8;
    while (size < s->hook_count * 2)
        size *= 2;
    s->table = cpex__calloc(size, sizeof *s->table);
    if (!s->table)
        return false;
    s->table_mask = size - 1;
    for (size_t i = 0; i < s->hook_count; i++) {
        size_t pos = (size_t)s->hooks[i].hash & s->table_mask;
        while (s->table[pos])
            pos = (pos + 1) & s->table_mask;
        s->table[pos] = (uint32_t)(i + 1);
    }
    return true;
}

static void finish_hook(cpex__hook *h)
{
    if (h->count > 1)
        qsort(h->entries, h->count, sizeof *h->entries, entry_cmp);
    size_t i = 0;
    for (uint32_t phase = 0; phase <= CPEX_PHASES; phase++) {
        h->phase_start[phase] = i;
        while (i < h->count && h->entries[i].plugin->mode == phase)
            i++;
    }
}

cpex__snapshot *cpex__snapshot_build(cpex__plugin *const *plugins, size_t count,
                                     const cpex__hook_names *names, const cpex__type_slot *types,
                                     size_t type_count)
{
    cpex__snapshot *s = cpex__calloc(1, sizeof *s);
    if (!s)
        return NULL;
    /* Unique in the process, never 0: what the invoke's name cache keys on
       (a freed snapshot's address may come back; its uid never does). */
    static _Atomic uint64_t last_uid;
    s->uid = atomic_fetch_add_explicit(&last_uid, 1, memory_order_relaxed) + 1;
    size_t ids = names ? names->count : 0;
    size_t *per_id = NULL;    /* handlers per hook id, then each hook's next free entry */
    uint32_t *hook_of = NULL; /* hook id -> index + 1 into s->hooks */
    if (count && !(s->plugins = cpex__calloc(count, sizeof *s->plugins)))
        goto fail;
    if (ids && (!(per_id = cpex__calloc(ids, sizeof *per_id)) ||
                !(hook_of = cpex__calloc(ids, sizeof *hook_of)) ||
                !(s->by_id = cpex__calloc(ids, sizeof *s->by_id))))
        goto fail;
    s->id_count = ids;
    /* One pass to count, one to place: linear in the handlers. */
    size_t total = 0;
    for (size_t i = 0; i < count; i++) {
        cpex__plugin *p = plugins[i];
        s->plugins[s->plugin_count++] = cpex__plugin_ref(p);
        if (p->mode == CPEX_MODE_DISABLED)
            continue; /* registered, initialized and shut down, but never run */
        for (size_t k = 0; k < p->handler_count; k++) {
            if (p->hook_ids[k] >= ids)
                goto fail; /* cannot happen: every handler's hook is interned */
            if (per_id[p->hook_ids[k]]++ == 0)
                s->hook_count++;
            total++;
        }
    }
    cpex__hook_entry *entries = NULL;
    if (s->hook_count && (!(s->hooks = cpex__calloc(s->hook_count, sizeof *s->hooks)) ||
                          !(entries = cpex__malloc(total * sizeof *entries))))
        goto fail;
    size_t next = 0, used = 0;
    for (size_t id = 0; id < ids; id++) {
        if (!per_id[id])
            continue;
        cpex__hook *h = &s->hooks[next];
        const cpex__hook_name *n = names->by_id[id];
        h->name = (char *)n->name; /* borrowed: names live as long as the manager */
        h->name_len = n->len;
        h->hash = n->hash;
        h->id = (uint32_t)id;
        h->payload_type = n->payload_type;
        h->payload_type_len = n->payload_type ? strlen(n->payload_type) : 0;
        h->payload_builtin = !n->payload_type                       ? 0
                             : strcmp(n->payload_type, "cmf") == 0  ? CPEX_PAYLOAD_CMF
                             : strcmp(n->payload_type, "json") == 0 ? CPEX_PAYLOAD_JSON
                                                                    : 0;
        h->entries = entries + used;
        used += per_id[id];
        per_id[id] = 0;
        hook_of[id] = (uint32_t)++next;
    }
    for (size_t i = 0; i < s->plugin_count; i++) {
        cpex__plugin *p = s->plugins[i];
        if (p->mode == CPEX_MODE_DISABLED)
            continue;
        for (size_t k = 0; k < p->handler_count; k++) {
            cpex__hook *h = &s->hooks[hook_of[p->hook_ids[k]] - 1];
            h->entries[h->count].plugin = p;
            h->entries[h->count].fn = p->handlers[k].fn;
            h->count++;
        }
    }
    for (size_t i = 0; i < s->hook_count; i++) {
        finish_hook(&s->hooks[i]);
        s->by_id[s->hooks[i].id] = &s->hooks[i];
    }
    if (!build_table(s))
        goto fail;
    if (type_count) {
        s->types = cpex__calloc(type_count, sizeof *s->types);
        if (!s->types)
            goto fail;
        memcpy(s->types, types, type_count * sizeof *types);
        s->type_count = type_count;
    }
    cpex__free(per_id);
    cpex__free(hook_of);
    return s;
fail:
    cpex__free(per_id);
    cpex__free(hook_of);
    cpex__snapshot_free(s);
    return NULL;
}

void cpex__snapshot_free(cpex__snapshot *s)
{
    if (!s)
        return;
    cpex__route_state_free(s->routing); /* its plans point into the hooks: first */
    cpex__snapshot_obs_free(s);
    if (s->hooks)
        cpex__free(s->hooks[0].entries); /* one array for every hook's entries */
    cpex__free(s->hooks);
    cpex__free(s->by_id);
    cpex__free(s->table);
    cpex__free(s->types);
    for (size_t i = 0; i < s->plugin_count; i++)
        cpex__plugin_unref(s->plugins[i]);
    cpex__free(s->plugins);
    cpex__free(s);
}

const cpex__hook *cpex__snapshot_find(const cpex__snapshot *s, const char *name, size_t len)
{
    if (!s->table)
        return NULL;
    uint64_t h = cpex__hash_name(name, len);
    size_t pos = (size_t)h & s->table_mask;
    for (;;) {
        uint32_t idx = s->table[pos];
        if (!idx)
            return NULL;
        const cpex__hook *hook = &s->hooks[idx - 1];
        if (hook->hash == h && hook->name_len == len && cpex__bytes_eq(hook->name, name, len))
            return hook;
        pos = (pos + 1) & s->table_mask;
    }
}

const cpex__type_slot *cpex__snapshot_type(const cpex__snapshot *s, const char *name, size_t len)
{
    for (size_t i = 0; i < s->type_count; i++)
        if (strlen(s->types[i].name) == len && memcmp(s->types[i].name, name, len) == 0)
            return &s->types[i];
    return NULL;
}
