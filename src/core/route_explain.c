/*
 * route_explain.c — cpex_manager_explain_route (cpex/reload.h): what an
 * invoke with a given entity would run on each hook, and why. Resolves
 * exactly as an invoke does (route_resolve.c), without the cache.
 */
#include <stdio.h>
#include <string.h>

#include "core/routing.h"
#include "cpex/reload.h"
#include "model/extensions_internal.h"
#include "util/alloc.h"

static json_t *str_or_null(cpex_str s) { return s.ptr ? json_stringn(s.ptr, s.len) : json_null(); }

static json_t *entity_json(const cpex_extensions *ext)
{
    cpex_str none = {NULL, 0};
    json_t *tags = json_array();
    size_t n = ext ? cpex_extensions_count(ext, CPEX_EXT_TAGS) : 0;
    for (size_t i = 0; i < n; i++)
        json_array_append_new(tags, json_string(cpex_extensions_item(ext, CPEX_EXT_TAGS, i)));
    return json_pack(
        "{s:o, s:o, s:o, s:o}", "type",
        str_or_null(ext ? cpex__extensions_get_str(ext, CPEX_EXT_ENTITY_TYPE) : none), "name",
        str_or_null(ext ? cpex__extensions_get_str(ext, CPEX_EXT_ENTITY_NAME) : none), "scope",
        str_or_null(ext ? cpex__extensions_get_str(ext, CPEX_EXT_SCOPE) : none), "tags", tags);
}

static json_t *plugin_json(const cpex__hook_entry *e, const char *from, bool override)
{
    return json_pack("{s:s, s:s, s:i, s:s, s:b, s:b}", "name", e->plugin->name, "phase",
                     cpex_mode_name(e->plugin->mode), "priority", (int)e->plugin->priority, "from",
                     from, "override", override, "disabled",
                     atomic_load(&e->plugin->disabled) != 0);
}

static json_t *route_json(const cpex__policy *p, int index, int score)
{
    const cpex__rroute *rt = &p->cfg->routes[index];
    char matcher[600];
    const char *entity = cpex__entity_name(rt->entity);
    if (rt->kind == CPEX__MATCH_LIST) {
        int o = snprintf(matcher, sizeof matcher, "%s: [", entity ? entity : "?");
        for (size_t i = 0; i < rt->name_count && o > 0 && (size_t)o < sizeof matcher; i++)
            o += snprintf(matcher + o, sizeof matcher - (size_t)o, "%s%s", i ? ", " : "",
                          rt->names[i]);
        if (o > 0 && (size_t)o < sizeof matcher)
            snprintf(matcher + o, sizeof matcher - (size_t)o, "]");
    } else {
        snprintf(matcher, sizeof matcher, "%s: %s", entity ? entity : "?",
                 rt->pattern ? rt->pattern : "?");
    }
    return json_pack("{s:i, s:i, s:s, s:i, s:s?, s:s?}", "index", (int)rt->index, "line",
                     rt->pos.line, "matcher", matcher, "specificity", score, "scope", rt->scope,
                     "when", rt->when);
}

/* Every entry of the hook, `from` the same reason. */
static json_t *all_entries(const cpex__hook *h, const char *from)
{
    json_t *a = json_array();
    for (size_t i = 0; i < h->count; i++)
        json_array_append_new(a, plugin_json(&h->entries[i], from, false));
    return a;
}

static json_t *explain_hook(const cpex__snapshot *s, const cpex__hook *h,
                            const cpex_extensions *ext)
{
    json_t *hj = json_pack("{s:s}", "hook", h->name);
    const cpex__route_state *rs = s->routing;
    if (!rs) {
        json_object_set_new(hj, "plugins", all_entries(h, "every plugin of the hook (no routing)"));
        return hj;
    }
    const cpex__policy *p = rs->policy;
    if (!p->enabled) {
        json_t *run = json_array(), *skipped = json_array();
        size_t idx = (size_t)(h - s->hooks);
        const cpex__conds **conds = idx < rs->hook_count ? rs->hook_conds[idx] : NULL;
        for (size_t i = 0; i < h->count; i++) {
            bool has = conds && conds[i];
            bool ok = !has || cpex__conds_match(conds[i], ext);
            json_array_append_new(
                ok ? run : skipped,
                plugin_json(&h->entries[i],
                            has ? (ok ? "its conditions match" : "its conditions do not match")
                                : "no conditions (runs on every invoke)",
                            false));
        }
        json_object_set_new(hj, "plugins", run);
        json_object_set_new(hj, "skipped", skipped);
        json_object_set_new(hj, "note",
                            json_string("routing is off: each plugin's conditions decide"));
        return hj;
    }
    cpex__route_key key;
    if (!cpex__route_key_make(p, h, ext, &key)) {
        json_object_set_new(hj, "route", json_null());
        json_object_set_new(hj, "plugins", all_entries(h, "no entity: every plugin of the hook"));
        json_object_set_new(hj, "note",
                            json_string("the invoke names no entity (meta entity type "
                                        "and name), so every plugin of the hook runs"));
        return hj;
    }
    cpex__resolution r;
    if (!cpex__resolve(p, &key, &r)) {
        cpex__resolution_free(&r);
        json_decref(hj);
        return NULL;
    }
    json_object_set_new(hj, "route", r.route >= 0 ? route_json(p, r.route, r.score) : json_null());
    json_t *groups = json_array();
    for (size_t i = 0; i < r.group_count; i++)
        json_array_append_new(groups, json_string(r.groups[i]));
    json_object_set_new(hj, "groups", groups);
    size_t n = cpex__resolution_entries(&r, h, NULL, 0);
    cpex__hook_entry *entries = n ? cpex__calloc(n, sizeof *entries) : NULL;
    json_t *plugins = json_array();
    if (n && entries) {
        cpex__resolution_entries(&r, h, entries, n);
        for (size_t i = 0; i < n; i++) {
            const char *from = "?";
            bool override = false;
            for (size_t k = 0; k < r.count; k++) {
                const cpex__resolved *it = &r.items[k];
                if (strcmp(it->name, entries[i].plugin->name) != 0)
                    continue;
                from = it->from;
                override = it->instance != NULL;
            }
            char route_from[64];
            if (strcmp(from, "route") == 0) {
                snprintf(route_from, sizeof route_from, "route %d", r.route);
                from = route_from;
            }
            json_array_append_new(plugins, plugin_json(&entries[i], from, override));
        }
    }
    cpex__free(entries);
    json_object_set_new(hj, "plugins", plugins);
    if (r.route < 0)
        json_object_set_new(hj, "note",
                            json_string("no route matches this entity: only the "
                                        "`all` group and the entity type's defaults "
                                        "apply (runtime tags join groups only "
                                        "through a matching route)"));
    cpex__resolution_free(&r);
    return hj;
}

json_t *cpex_manager_explain_route(cpex_manager *m, const char *hook, const cpex_extensions *ext,
                                   cpex_error *err)
{
    if (!m) {
        cpex__error_add(err, CPEX_E_INVALID, NULL, "explain_route: manager required");
        return NULL;
    }
    cpex__mgr_sync(m);
    cpex__rcu_ticket t = cpex__rcu_enter(&m->rcu);
    const cpex__snapshot *s = atomic_load(&m->snapshot);
    const cpex__policy *p = s->routing ? s->routing->policy : NULL;
    json_t *doc = json_pack("{s:I, s:b, s:s?, s:o}", "generation", (json_int_t)s->generation,
                            "routing_enabled", p && p->enabled, "source", p ? p->source : NULL,
                            "entity", entity_json(ext));
    json_t *hooks = json_array();
    bool ok = doc && hooks;
    if (ok && hook) {
        const cpex__hook *h =
            cpex__snapshot_find(s, cpex__hook_canonical(hook), strlen(cpex__hook_canonical(hook)));
        if (h) {
            json_t *hj = explain_hook(s, h, ext);
            ok = hj && json_array_append_new(hooks, hj) == 0;
        } else {
            json_array_append_new(hooks,
                                  json_pack("{s:s, s:[], s:s}", "hook", cpex__hook_canonical(hook),
                                            "plugins", "note", "no plugin serves this hook"));
        }
    }
    for (size_t i = 0; ok && !hook && i < s->hook_count; i++) {
        json_t *hj = explain_hook(s, &s->hooks[i], ext);
        ok = hj && json_array_append_new(hooks, hj) == 0;
    }
    cpex__rcu_exit(t);
    if (!ok) {
        json_decref(doc);
        json_decref(hooks);
        cpex__error_add(err, CPEX_E_NOMEM, NULL, "out of memory explaining the routing");
        return NULL;
    }
    json_object_set_new(doc, "hooks", hooks);
    return doc;
}
