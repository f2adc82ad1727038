/*
 * registry.c — immutable registry snapshots: hooks with their handlers
 * grouped by phase and sorted by priority, found by one hash lookup.
 */
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "util/alloc.h"

static inline uint64_t load64(const char *p)
{
    uint64_t w;
    memcpy(&w, p, 8);
    return w;
}

uint64_t cpex__hash_name(const char *name, size_t len)
{
    /* Runs on every invoke. Eight bytes per multiply and the last eight
       bytes read once (overlapping): a 20-byte hook name costs three
       multiplies, where byte-wise FNV-1a chained twenty (~15 ns). */
    uint64_t h = 0x9e3779b97f4a7c15ull ^ (uint64_t)len;
    uint64_t w = 0;
    if (len >= 8) {
        for (size_t i = 0; i + 8 < len; i += 8) {
            h = (h ^ load64(name + i)) * 0xff51afd7ed558ccdull;
            h ^= h >> 32;
        }
        w = load64(name + len - 8);
    } else {
        for (size_t i = 0; i < len; i++)
            w |= (uint64_t)(unsigned char)name[i] << (8 * i);
    }
    h = (h ^ w) * 0xc4ceb9fe1a85ec53ull;
    return h ^ (h >> 29);
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

static cpex__hook *find_or_add_hook(cpex__snapshot *s, size_t *cap, const char *name)
{
    for (size_t i = 0; i < s->hook_count; i++)
        if (strcmp(s->hooks[i].name, name) == 0)
            return &s->hooks[i];
    if (s->hook_count == *cap) {
        size_t ncap = *cap ? *cap * 2 : 8;
        cpex__hook *n = cpex__realloc(s->hooks, ncap * sizeof *n);
        if (!n)
            return NULL;
        s->hooks = n;
        *cap = ncap;
    }
    cpex__hook *h = &s->hooks[s->hook_count];
    memset(h, 0, sizeof *h);
    h->name = cpex__strdup(name);
    if (!h->name)
        return NULL;
    s->hook_count++;
    h->name_len = strlen(name);
    h->hash = cpex__hash_name(name, h->name_len);
    return h;
}

static bool add_entry(cpex__hook *h, cpex__plugin *p, cpex_handler_fn fn)
{
    cpex__hook_entry *n = cpex__realloc(h->entries, (h->count + 1) * sizeof *n);
    if (!n)
        return false;
    h->entries = n;
    n[h->count].plugin = p;
    n[h->count].fn = fn;
    h->count++;
    return true;
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

static void finish_hook(cpex__hook *h, const cpex__binding *bindings, size_t binding_count)
{
    if (h->count > 1)
        qsort(h->entries, h->count, sizeof *h->entries, entry_cmp);
    size_t i = 0;
    for (uint32_t phase = 0; phase <= CPEX_PHASES; phase++) {
        h->phase_start[phase] = i;
        while (i < h->count && h->entries[i].plugin->mode == phase)
            i++;
    }
    for (size_t b = 0; b < binding_count; b++)
        if (strcmp(bindings[b].hook, h->name) == 0)
            h->payload_type = bindings[b].type; /* borrowed from the manager */
    h->payload_type_len = h->payload_type ? strlen(h->payload_type) : 0;
}

cpex__snapshot *cpex__snapshot_build(cpex__plugin *const *plugins, size_t count,
                                   const cpex__binding *bindings, size_t binding_count,
                                   const cpex__type_slot *types, size_t type_count)
{
    cpex__snapshot *s = cpex__calloc(1, sizeof *s);
    if (!s)
        return NULL;
    size_t hook_cap = 0;
    if (count) {
        s->plugins = cpex__calloc(count, sizeof *s->plugins);
        if (!s->plugins)
            goto fail;
    }
    for (size_t i = 0; i < count; i++) {
        cpex__plugin *p = plugins[i];
        s->plugins[s->plugin_count++] = cpex__plugin_ref(p);
        if (p->mode == CPEX_MODE_DISABLED)
            continue; /* registered, initialized and shut down, but never run */
        for (size_t k = 0; k < p->handler_count; k++) {
            cpex__hook *h = find_or_add_hook(s, &hook_cap, p->handlers[k].hook);
            if (!h || !add_entry(h, p, p->handlers[k].fn))
                goto fail;
        }
    }
    for (size_t i = 0; i < s->hook_count; i++)
        finish_hook(&s->hooks[i], bindings, binding_count);
    if (!build_table(s))
        goto fail;
    if (type_count) {
        s->types = cpex__calloc(type_count, sizeof *s->types);
        if (!s->types)
            goto fail;
        memcpy(s->types, types, type_count * sizeof *types);
        s->type_count = type_count;
    }
    return s;
fail:
    cpex__snapshot_free(s);
    return NULL;
}

void cpex__snapshot_free(cpex__snapshot *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->hook_count; i++) {
        cpex__free(s->hooks[i].name);
        cpex__free(s->hooks[i].entries);
    }
    cpex__free(s->hooks);
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
        if (hook->hash == h && hook->name_len == len && memcmp(hook->name, name, len) == 0)
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
