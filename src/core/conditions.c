/*
 * conditions.c — per-plugin `conditions:` when routing is off (CPEX
 * reference §1.9): a plugin with conditions runs when any one of them
 * matches; within one condition every field given must match, and a field
 * whose value the request does not carry does not match.
 *
 * Where each field's value comes from:
 *   tools / prompts / resources  meta entity name, when the entity type is
 *                                tool / prompt / resource
 *   user_patterns                security subject id, against globs
 *   server_ids, tenant_ids,      the custom extension values "server_id",
 *   agents, content_types        "tenant_id", "agent_id", "content_type"
 *                                (CPEX reads its MCP, claims and agent
 *                                slots, which libcpex does not have)
 *
 * Conditions are checked on every invoke (nothing cached), only for hooks
 * where some plugin has them: the other hooks take the unrouted path.
 */
#include "core/routing.h"

#include <string.h>

#include "model/extensions_internal.h"
#include "util/alloc.h"

static bool in_set(char *const *set, const char *value, size_t len)
{
    for (size_t i = 0; set && set[i]; i++)
        if (strlen(set[i]) == len && memcmp(set[i], value, len) == 0)
            return true;
    return false;
}

static bool custom_in(char *const *set, const cpex_extensions *ext, const char *key)
{
    const json_t *v = ext ? cpex_extensions_custom(ext, key) : NULL;
    return v && json_is_string(v) && in_set(set, json_string_value(v), json_string_length(v));
}

static bool entity_in(char *const *set, const cpex_extensions *ext, const char *type)
{
    cpex_str t = ext ? cpex__extensions_get_str(ext, CPEX_EXT_ENTITY_TYPE) : (cpex_str){NULL, 0};
    cpex_str n = ext ? cpex__extensions_get_str(ext, CPEX_EXT_ENTITY_NAME) : (cpex_str){NULL, 0};
    if (!t.ptr || !n.ptr || t.len != strlen(type) || memcmp(t.ptr, type, t.len) != 0)
        return false;
    return in_set(set, n.ptr, n.len);
}

static bool user_matches(char *const *patterns, const cpex_extensions *ext)
{
    cpex_str id = ext ? cpex__extensions_get_str(ext, CPEX_EXT_SUBJECT_ID) : (cpex_str){NULL, 0};
    if (!id.ptr)
        return false;
    for (size_t i = 0; patterns[i]; i++)
        if (cpex__glob_match(patterns[i], id.ptr, id.len))
            return true;
    return false;
}

static bool one_matches(const cpex__cond *c, const cpex_extensions *ext)
{
    char *const *const *f = (char *const *const *)c->field;
    if (f[CPEX__C_SERVER_IDS] && !custom_in(f[CPEX__C_SERVER_IDS], ext, "server_id"))
        return false;
    if (f[CPEX__C_TENANT_IDS] && !custom_in(f[CPEX__C_TENANT_IDS], ext, "tenant_id"))
        return false;
    if (f[CPEX__C_TOOLS] && !entity_in(f[CPEX__C_TOOLS], ext, "tool"))
        return false;
    if (f[CPEX__C_PROMPTS] && !entity_in(f[CPEX__C_PROMPTS], ext, "prompt"))
        return false;
    if (f[CPEX__C_RESOURCES] && !entity_in(f[CPEX__C_RESOURCES], ext, "resource"))
        return false;
    if (f[CPEX__C_AGENTS] && !custom_in(f[CPEX__C_AGENTS], ext, "agent_id"))
        return false;
    if (f[CPEX__C_USER_PATTERNS] && !user_matches(f[CPEX__C_USER_PATTERNS], ext))
        return false;
    if (f[CPEX__C_CONTENT_TYPES] && !custom_in(f[CPEX__C_CONTENT_TYPES], ext, "content_type"))
        return false;
    return true;
}

bool cpex__conds_match(const cpex__conds *c, const cpex_extensions *ext)
{
    if (!c || c->count == 0)
        return true;
    for (size_t i = 0; i < c->count; i++)
        if (one_matches(&c->items[i], ext))
            return true;
    return false;
}

const cpex__hook *cpex__conditions_plan(const cpex__route_state *rs, const cpex__snapshot *snap,
                                        const cpex__hook *h, const cpex_extensions *ext,
                                        cpex__hook *plan, cpex__hook_entry *storage,
                                        uint32_t *ids_storage, size_t cap, void **owned)
{
    *owned = NULL;
    size_t idx = (size_t)(h - snap->hooks);
    const cpex__conds **conds = idx < rs->hook_count ? rs->hook_conds[idx] : NULL;
    if (!conds)
        return h;
    cpex__hook_entry *out = storage;
    uint32_t *ids = ids_storage;
    if (h->count > cap) {
        out = cpex__malloc(h->count * (sizeof *out + sizeof *ids));
        if (!out)
            return NULL;
        ids = (uint32_t *)(void *)(out + h->count);
        *owned = out;
    }
    size_t n = 0;
    for (size_t i = 0; i < h->count; i++)
        if (cpex__conds_match(conds[i], ext)) {
            if (h->metric_ids)
                ids[n] = h->metric_ids[i];
            out[n++] = h->entries[i]; /* the hook's order is kept: a filter */
        }
    cpex__plan_init(plan, h, out, n, ids, true);
    cpex__plan_phases(plan);
    return plan;
}
