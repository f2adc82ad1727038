/* hook_names.c — see hook_names.h. */
#include "core/hook_names.h"

#include <string.h>

#include "core/core.h"
#include "util/alloc.h"

void cpex__hook_names_init(cpex__hook_names *names, const void *owner)
{
    memset(names, 0, sizeof *names);
    names->owner = owner;
}

void cpex__hook_names_free(cpex__hook_names *names)
{
    for (size_t i = 0; i < names->count; i++) {
        cpex__free(names->by_id[i]->payload_type);
        cpex__free(names->by_id[i]);
    }
    cpex__free(names->by_id);
    cpex__free(names->table);
    memset(names, 0, sizeof *names);
}

/* Every alias starts "cmf.p" (the invoke path tests the fifth byte before
   it calls cpex__hook_alias_of). */
static const struct hook_alias {
    const char *alias;
    const char *canonical;
} hook_aliases[] = {
    {"cmf.prompt_pre_invoke", "cmf.prompt_pre_fetch"},
    {"cmf.prompt_post_invoke", "cmf.prompt_post_fetch"},
};

const char *cpex__hook_alias_of(const char *name, size_t len)
{
    if (!name || len < 4 || memcmp(name, "cmf.", 4) != 0)
        return NULL; /* the usual case costs one compare */
    for (size_t i = 0; i < sizeof hook_aliases / sizeof hook_aliases[0]; i++)
        if (strlen(hook_aliases[i].alias) == len && memcmp(hook_aliases[i].alias, name, len) == 0)
            return hook_aliases[i].canonical;
    return NULL;
}

const char *cpex__hook_canonical(const char *name)
{
    const char *c = name ? cpex__hook_alias_of(name, strlen(name)) : NULL;
    return c ? c : name;
}

bool cpex__hook_same(const char *a, const char *b)
{
    if (!a || !b)
        return false;
    return strcmp(cpex__hook_canonical(a), cpex__hook_canonical(b)) == 0;
}

cpex__hook_name *cpex__hook_names_find(const cpex__hook_names *names, const char *name, size_t len)
{
    const char *canonical = cpex__hook_alias_of(name, len);
    if (canonical) {
        name = canonical;
        len = strlen(canonical);
    }
    if (!names->table)
        return NULL;
    uint64_t h = cpex__hash_name(name, len);
    for (size_t pos = (size_t)h & names->mask;; pos = (pos + 1) & names->mask) {
        uint32_t slot = names->table[pos];
        if (!slot)
            return NULL;
        cpex__hook_name *e = names->by_id[slot - 1];
        if (e->hash == h && e->len == len && memcmp(e->name, name, len) == 0)
            return e;
    }
}

/* Room for one more name: the id array and a table at most half full. */
static bool grow(cpex__hook_names *names)
{
    if (names->count == names->cap) {
        size_t cap = names->cap ? names->cap * 2 : 16;
        cpex__hook_name **n = cpex__realloc(names->by_id, cap * sizeof *n);
        if (!n)
            return false;
        names->by_id = n;
        names->cap = cap;
    }
    size_t slots = names->table ? names->mask + 1 : 0;
    if ((names->count + 1) * 2 <= slots)
        return true;
    size_t size = slots ? slots * 2 : 32;
    uint32_t *table = cpex__calloc(size, sizeof *table);
    if (!table)
        return false;
    for (size_t i = 0; i < names->count; i++) {
        size_t pos = (size_t)names->by_id[i]->hash & (size - 1);
        while (table[pos])
            pos = (pos + 1) & (size - 1);
        table[pos] = (uint32_t)(i + 1);
    }
    cpex__free(names->table);
    names->table = table;
    names->mask = size - 1;
    return true;
}

cpex__hook_name *cpex__hook_names_intern(cpex__hook_names *names, const char *name, size_t len)
{
    const char *canonical = cpex__hook_alias_of(name, len);
    if (canonical) {
        name = canonical;
        len = strlen(canonical);
    }
    cpex__hook_name *e = cpex__hook_names_find(names, name, len);
    if (e)
        return e;
    if (len > UINT32_MAX - 1 || names->count >= UINT32_MAX - 1 || !grow(names))
        return NULL;
    e = cpex__malloc(sizeof *e + len + 1);
    if (!e)
        return NULL;
    e->owner = names->owner;
    e->id = (uint32_t)names->count;
    e->len = (uint32_t)len;
    e->hash = cpex__hash_name(name, len);
    e->payload_type = NULL;
    e->metric_id = UINT32_MAX;
    atomic_init(&e->empty_in, CPEX__NEVER_EMPTY);
    memcpy(e->name, name, len);
    e->name[len] = '\0';
    names->by_id[names->count++] = e;
    size_t pos = (size_t)e->hash & names->mask;
    while (names->table[pos])
        pos = (pos + 1) & names->mask;
    names->table[pos] = e->id + 1;
    return e;
}

bool cpex__hook_name_bind(cpex__hook_name *entry, const char *type)
{
    if (entry->payload_type)
        return true;
    entry->payload_type = cpex__strdup(type);
    return entry->payload_type != NULL;
}
