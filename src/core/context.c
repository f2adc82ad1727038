/*
 * context.c — the context table threaded from one invoke to the next
 * (public API in cpex/context.h; internals in core.h).
 */
#include <string.h>

#include "core/core.h"
#include "cpex/context.h"
#include "util/alloc.h"

cpex_context_table *cpex_context_table_new(void)
{
    return cpex__calloc(1, sizeof(cpex_context_table));
}

void cpex_context_table_free(cpex_context_table *t)
{
    if (!t)
        return;
    json_decref(t->global);
    for (size_t i = 0; i < t->count; i++) {
        cpex__free(t->locals[i].plugin_name);
        json_decref(t->locals[i].state);
    }
    cpex__free(t->locals);
    cpex__free(t);
}

const json_t *cpex_context_table_global(const cpex_context_table *t, const char *key)
{
    if (!t || !t->global || !key)
        return NULL;
    return json_object_get(t->global, key);
}

const json_t *cpex_context_table_local(const cpex_context_table *t, const char *plugin,
                                       const char *key)
{
    if (!t || !plugin || !key)
        return NULL;
    for (size_t i = 0; i < t->count; i++)
        if (strcmp(t->locals[i].plugin_name, plugin) == 0)
            return json_object_get(t->locals[i].state, key);
    return NULL;
}

json_t *cpex__ctx_global_state(cpex_context_table *t, bool create)
{
    if (!t)
        return NULL;
    if (!t->global && create)
        t->global = json_object();
    return t->global;
}

json_t *cpex__ctx_local_state(cpex_context_table *t, const cpex__plugin *p, bool create)
{
    if (!t)
        return NULL;
    for (size_t i = 0; i < t->count; i++)
        if (t->locals[i].plugin_id == p->id)
            return t->locals[i].state;
    if (!create)
        return NULL;
    if (t->count == t->cap) {
        size_t ncap = t->cap ? t->cap * 2 : 4;
        cpex__ctx_local *n = cpex__realloc(t->locals, ncap * sizeof *n);
        if (!n)
            return NULL;
        t->locals = n;
        t->cap = ncap;
    }
    cpex__ctx_local *l = &t->locals[t->count];
    l->plugin_id = p->id;
    l->plugin_name = cpex__strdup(p->name);
    l->state = json_object();
    if (!l->plugin_name || !l->state) {
        cpex__free(l->plugin_name);
        json_decref(l->state);
        return NULL;
    }
    t->count++;
    return l->state;
}
