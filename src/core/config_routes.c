/*
 * config_routes.c — read the routing sections of a configuration (see
 * routing_config.h): routes, global.policies, global.defaults, top-level
 * groups, per-plugin conditions and the two routing settings.
 *
 * The YAML shape is CPEX's (reference §1.2). Where CPEX silently drops
 * something, libcpex says so: unknown keys are errors with a did-you-mean;
 * keys CPEX knows that libcpex does not act on (`when`, `authentication`,
 * APL's keys, `meta.properties`) are accepted with a warning; the legacy
 * `identity:` key is refused with CPEX's rename message in every mode.
 */
#include "core/routing_config.h"

#include <stdio.h>
#include <string.h>

#include "core/yaml_scalar.h"
#include "core/yaml_typed.h"
#include "util/alloc.h"
#include "util/strv.h"

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static const char *const entity_names[CPEX__ENT_COUNT] = {"tool", "resource", "prompt", "llm"};

const char *cpex__entity_name(int entity)
{
    return entity >= 0 && entity < CPEX__ENT_COUNT ? entity_names[entity] : NULL;
}

/* Keys APL (CPEX's policy language) reads inside routes, groups and
 * global: accepted with a warning, as the top-level `apl:` is. */
static const char *const apl_keys[] = {
    "apl",    "authorization", "pre_invocation", "post_invocation", "args",
    "result", "pdp",           "session_store",  "response"};

static bool is_apl_key(const char *key)
{
    return cpex__ykey_index(key, apl_keys, COUNT(apl_keys)) >= 0;
}

cpex__rcfg *cpex__rcfg_of(cpex__ydiag *diag, cpex__config *cfg)
{
    if (!cfg->routing) {
        cfg->routing = cpex__calloc(1, sizeof *cfg->routing);
        if (!cfg->routing) {
            diag->nomem = true;
            return NULL;
        }
        cfg->routing->cache_max = CPEX__ROUTE_CACHE_DEFAULT;
    }
    return cfg->routing;
}

/* The routing a section of the file adds to, when its value `v` is there
 * and of node type `type` (else reported: "'<key>' must be <what>, got
 * ..."); NULL when there is nothing to read. */
static cpex__rcfg *section(cpex__ydiag *diag, cpex__config *cfg, const cpex__ynode *v, int type,
                           const char *key, const char *what)
{
    cpex__rcfg *r = cpex__rcfg_of(diag, cfg);
    if (!r)
        return NULL;
    r->present = true;
    if (cpex__yis_null(v))
        return NULL;
    if (v->type != type) {
        cpex__yreport(diag, v, key, "'%s' must be %s, got %s", key, what, cpex__ydescribe(v));
        return NULL;
    }
    return r;
}

/* ------------------------------------------------------------------ */
/* Settings                                                            */
/* ------------------------------------------------------------------ */

void cpex__rcfg_setting(cpex__ydiag *diag, cpex__config *cfg, int which, const cpex__ynode *v)
{
    cpex__rcfg *r = cpex__rcfg_of(diag, cfg);
    if (!r)
        return;
    r->present = true;
    if (which == 0) {
        cpex__ywant_bool(diag, v, "plugin_settings.routing_enabled", &r->enabled);
        return;
    }
    cpex__yval val = cpex__yresolve(v);
    if (v->type != CPEX__YN_SCALAR || val.kind != CPEX__YV_INT || val.bad || val.i < 0 ||
        (unsigned long long)val.i > CPEX__ROUTE_CACHE_MAX) {
        cpex__yreport(diag, v, "plugin_settings.route_cache_max_entries",
                      "'plugin_settings.route_cache_max_entries' must be a whole number from 0 "
                      "(no cache) to %u, got %s%s",
                      CPEX__ROUTE_CACHE_MAX,
                      v->type == CPEX__YN_SCALAR && val.kind == CPEX__YV_INT
                          ? "a number out of range"
                          : cpex__ydescribe(v),
                      cpex__yunquote_hint(v, CPEX__YV_INT));
        return;
    }
    r->cache_max = (size_t)val.i;
}

/* ------------------------------------------------------------------ */
/* Shared pieces                                                       */
/* ------------------------------------------------------------------ */

/* The legacy key, refused in every mode with CPEX's message. */
static void report_identity(cpex__ydiag *diag, const cpex__ynode *k, const char *scope)
{
    cpex__yreport(diag, k, "identity",
                  "in `%s`: config field `identity` was renamed to `authentication` — update "
                  "your config",
                  scope);
}

/* A key CPEX knows and libcpex does not act on. */
static void warn_ignored(cpex__ydiag *diag, const cpex__ynode *k, const char *scope,
                         const char *key)
{
    if (is_apl_key(key))
        cpex__config_warn(diag, k,
                          "'%s' in %s is an APL key (CPEX's policy language), which libcpex does "
                          "not implement; it is ignored",
                          key, scope);
    else if (strcmp(key, "authentication") == 0)
        cpex__config_warn(diag, k,
                          "'authentication' in %s is accepted for CPEX compatibility but not "
                          "implemented: identity.resolve is routed like every other hook "
                          "(by plugins:), not by authentication steps",
                          scope);
    else
        cpex__config_warn(diag, k, "'%s' in %s is accepted but has no effect in libcpex", key,
                          scope);
}

/* Key node `k` of a mapping in `scope`: its index among `keys`, or -1 when
 * it is to be skipped (not a plain name, unknown — an error with a
 * did-you-mean, or for APL's keys a warning — or repeated), or -2 when the
 * value budget is gone (stop reading the mapping). */
static int mapping_key(cpex__ydiag *diag, const cpex__ynode *k, const char *scope, const char *what,
                       const char *const *keys, size_t count, int *first)
{
    if (!cpex__ybudget(diag, k, NULL))
        return -2;
    char where[64];
    snprintf(where, sizeof where, "of %s", what);
    const char *key = cpex__ykey_text(diag, k, where);
    if (!key)
        return -1;
    int idx = cpex__ykey_index(key, keys, count);
    if (idx < 0) {
        char unknown[64];
        snprintf(unknown, sizeof unknown, "key of %s", what);
        if (is_apl_key(key))
            warn_ignored(diag, k, scope, key);
        else
            cpex__yreport_unknown(diag, k, key, unknown, key, keys, count, "valid keys");
        return -1;
    }
    return cpex__yrepeated(diag, k, first, idx, key) ? -1 : idx;
}

/* A string or a list of strings, as a NULL-terminated vector (NULL on error). */
static char **string_or_list(cpex__ydiag *diag, const cpex__ynode *v, const char *key, size_t *n,
                             const char *example)
{
    *n = 0;
    if (v->type == CPEX__YN_SCALAR && !cpex__yis_null(v)) {
        const char *s = cpex__ywant_string(diag, v, key, true);
        if (!s)
            return NULL;
        const char *one[1] = {s};
        char **out = cpex__strv_copy(one, 1);
        if (!out)
            diag->nomem = true;
        else
            *n = 1;
        return out;
    }
    if (v->type != CPEX__YN_SEQ) {
        cpex__yreport(diag, v, key, "'%s' must be a name or a list of names, got %s; e.g. %s: %s",
                      key, cpex__ydescribe(v), key, example);
        return NULL;
    }
    return cpex__ywant_string_list(diag, v, key, n, example);
}

static void ref_list_free(cpex__rref_list *l)
{
    for (size_t i = 0; i < l->count; i++) {
        cpex__free(l->items[i].name);
        json_decref(l->items[i].override);
    }
    cpex__free(l->items);
    l->items = NULL;
    l->count = 0;
}

/* One `name: {config: {...}}` item of a plugins list into `ref`. */
static bool override_item(cpex__ydiag *diag, const cpex__ynode *item, const char *scope,
                          cpex__rref *ref)
{
    if (item->count != 2) {
        cpex__yreport(diag, item, "plugins",
                      "in %s: an override item of 'plugins' must have exactly one key, the "
                      "plugin's name (name: {config: {...}}), got %s",
                      scope, item->count == 0 ? "none" : "several");
        return false;
    }
    const cpex__ynode *k = item->kids[0], *v = item->kids[1];
    const char *name = cpex__ywant_string(diag, k, "plugins", true);
    if (!name)
        return false;
    if (!(ref->name = cpex__strdup(name))) {
        diag->nomem = true;
        return false;
    }
    ref->pos = k->pos;
    if (cpex__yis_null(v))
        return true; /* `name:` alone is a bare reference */
    if (v->type != CPEX__YN_MAP) {
        cpex__yreport(diag, v, "plugins",
                      "in %s: the override of plugin '%.200s' must be a mapping like "
                      "{config: {...}}, got %s",
                      scope, name, cpex__ydescribe(v));
        return false;
    }
    bool seen = false;
    for (size_t i = 0; i + 1 < v->count; i += 2) {
        const cpex__ynode *ok = v->kids[i], *ov = v->kids[i + 1];
        const char *okey = cpex__ykey_text(diag, ok, "of an override");
        if (!okey)
            continue;
        if (strcmp(okey, "config") == 0) {
            if (seen) {
                cpex__yreport(diag, ok, "config",
                              "duplicate key 'config' in the override of "
                              "plugin '%.200s'; keep one",
                              name);
                continue;
            }
            seen = true;
            ref->override = cpex__yto_json(diag, ok, ov, "config");
            if (!ref->override && !diag->nomem)
                return false;
        } else {
            cpex__config_warn(diag, ok,
                              "in %s: '%s' in the override of plugin '%.200s' is ignored; an "
                              "override sets only 'config' (as in CPEX)",
                              scope, okey, name);
        }
    }
    return true;
}

/* A `plugins:` value of a route or group into `out`. */
static void ref_list(cpex__ydiag *diag, const cpex__ynode *k, const cpex__ynode *v,
                     const char *scope, cpex__rref_list *out)
{
    if (cpex__yis_null(v))
        return;
    if (v->type == CPEX__YN_MAP) {
        /* CPEX reads this as APL's per-plugin overrides and activates nothing. */
        cpex__config_warn(diag, k,
                          "in %s: 'plugins' is a mapping, CPEX's form for APL per-plugin "
                          "overrides; libcpex does not implement APL, so it activates no plugin "
                          "(write a list to activate plugins)",
                          scope);
        return;
    }
    if (v->type != CPEX__YN_SEQ) {
        cpex__yreport(diag, v, "plugins",
                      "in %s: `plugins:` must be a sequence (activation list) or a mapping (APL "
                      "per-plugin overrides), got %s",
                      scope, cpex__ydescribe(v));
        return;
    }
    out->items = cpex__calloc(v->count ? v->count : 1, sizeof *out->items);
    if (!out->items) {
        diag->nomem = true;
        return;
    }
    for (size_t i = 0; i < v->count && !diag->nomem; i++) {
        const cpex__ynode *it = v->kids[i];
        if (!cpex__ybudget(diag, it, "plugins"))
            break;
        cpex__rref *ref = &out->items[out->count];
        memset(ref, 0, sizeof *ref);
        bool ok;
        if (it->type == CPEX__YN_MAP) {
            ok = override_item(diag, it, scope, ref);
        } else {
            const char *name = cpex__ywant_string(diag, it, "plugins", true);
            ok = name && (ref->name = cpex__strdup(name)) != NULL;
            if (name && !ref->name)
                diag->nomem = true;
            ref->pos = it->pos;
        }
        if (ok) {
            out->count++;
        } else {
            cpex__free(ref->name);
            json_decref(ref->override);
            memset(ref, 0, sizeof *ref);
        }
    }
}

/* ------------------------------------------------------------------ */
/* Groups                                                              */
/* ------------------------------------------------------------------ */

enum { G_DESCRIPTION, G_METADATA, G_PLUGINS, G_AUTHENTICATION, G_IDENTITY, G_COUNT };
static const char *const group_keys[G_COUNT] = {"description", "metadata", "plugins",
                                                "authentication", "identity"};

/* One group (the value `v` of key `k`) into `g`. */
static void read_group(cpex__ydiag *diag, const cpex__ynode *k, const cpex__ynode *v,
                       const char *where, cpex__rgroup *g)
{
    g->pos = k->pos;
    if (cpex__yis_null(v))
        return;
    if (v->type != CPEX__YN_MAP) {
        cpex__yreport(diag, v, where, "`%s` must be a mapping (plugins:, description:), got %s",
                      where, cpex__ydescribe(v));
        return;
    }
    int first[G_COUNT] = {0};
    for (size_t i = 0; i + 1 < v->count; i += 2) {
        const cpex__ynode *gk = v->kids[i], *gv = v->kids[i + 1];
        int idx = mapping_key(diag, gk, where, "a group", group_keys, G_COUNT, first);
        if (idx == -2)
            return;
        const char *key = idx >= 0 ? group_keys[idx] : NULL;
        switch (idx) {
        case G_DESCRIPTION:
            if (!cpex__yis_null(gv))
                cpex__ywant_string(diag, gv, key, false);
            break;
        case G_METADATA:
            if (!cpex__yis_null(gv) && gv->type != CPEX__YN_MAP)
                cpex__yreport(diag, gv, key, "'metadata' must be a mapping, got %s",
                              cpex__ydescribe(gv));
            break;
        case G_PLUGINS:
            ref_list_free(&g->plugins);
            ref_list(diag, gk, gv, where, &g->plugins);
            break;
        case G_AUTHENTICATION: warn_ignored(diag, gk, where, key); break;
        case G_IDENTITY: report_identity(diag, gk, where); break;
        }
    }
}

static void group_free(cpex__rgroup *g)
{
    cpex__free(g->name);
    cpex__free(g->where);
    ref_list_free(&g->plugins);
}

/* A map name -> group (`prefix` "groups", "global.policies" or
 * "global.defaults") appended to *groups. */
static void read_group_map(cpex__ydiag *diag, const cpex__ynode *v, const char *prefix,
                           cpex__rgroup **groups, size_t *count)
{
    if (cpex__yis_null(v))
        return;
    if (v->type != CPEX__YN_MAP) {
        cpex__yreport(diag, v, prefix, "'%s' must be a mapping of names to groups, got %s", prefix,
                      cpex__ydescribe(v));
        return;
    }
    size_t add = v->count / 2;
    cpex__rgroup *n = cpex__realloc(*groups, (*count + add + 1) * sizeof *n);
    if (!n) {
        diag->nomem = true;
        return;
    }
    *groups = n;
    for (size_t i = 0; i + 1 < v->count && !diag->nomem; i += 2) {
        const cpex__ynode *k = v->kids[i];
        if (!cpex__ybudget(diag, k, NULL))
            return;
        const char *name = cpex__ykey_text(diag, k, prefix);
        if (!name)
            continue;
        if (!*name) {
            cpex__yreport(diag, k, prefix, "a group in '%s' has an empty name", prefix);
            continue;
        }
        bool dup = false;
        for (size_t j = 0; j < *count && !dup; j++)
            dup = strcmp(n[j].name, name) == 0 && strncmp(n[j].where, prefix, strlen(prefix)) == 0;
        if (dup) {
            cpex__yreport(diag, k, prefix, "'%.200s' is defined twice in '%s'; keep one", name,
                          prefix);
            continue;
        }
        cpex__rgroup *g = &n[*count];
        memset(g, 0, sizeof *g);
        g->name = cpex__strdup(name);
        g->where = cpex__asprintf("%s.%s", prefix, name);
        if (!g->name || !g->where) {
            group_free(g);
            diag->nomem = true;
            return;
        }
        read_group(diag, k, v->kids[i + 1], g->where, g);
        (*count)++;
    }
}

void cpex__rcfg_groups(cpex__ydiag *diag, cpex__config *cfg, const cpex__ynode *v)
{
    cpex__rcfg *r = cpex__rcfg_of(diag, cfg);
    if (!r)
        return;
    r->present = true;
    read_group_map(diag, v, "groups", &r->groups, &r->group_count);
}

enum { GL_POLICIES, GL_DEFAULTS, GL_AUTHENTICATION, GL_IDENTITY, GL_COUNT };
static const char *const global_keys[GL_COUNT] = {"policies", "defaults", "authentication",
                                                  "identity"};

void cpex__rcfg_global(cpex__ydiag *diag, cpex__config *cfg, const cpex__ynode *v)
{
    cpex__rcfg *r =
        section(diag, cfg, v, CPEX__YN_MAP, "global", "a mapping (policies:, defaults:)");
    if (!r)
        return;
    int first[GL_COUNT] = {0};
    for (size_t i = 0; i + 1 < v->count; i += 2) {
        const cpex__ynode *k = v->kids[i], *gv = v->kids[i + 1];
        int idx = mapping_key(diag, k, "global", "'global'", global_keys, GL_COUNT, first);
        if (idx == -2)
            return;
        const char *key = idx >= 0 ? global_keys[idx] : NULL;
        switch (idx) {
        case GL_POLICIES:
            read_group_map(diag, gv, "global.policies", &r->groups, &r->group_count);
            break;
        case GL_DEFAULTS:
            read_group_map(diag, gv, "global.defaults", &r->defaults, &r->default_count);
            break;
        case GL_AUTHENTICATION: warn_ignored(diag, k, "global", key); break;
        case GL_IDENTITY: report_identity(diag, k, "global"); break;
        }
    }
}

/* ------------------------------------------------------------------ */
/* Routes                                                              */
/* ------------------------------------------------------------------ */

enum {
    R_TOOL,
    R_RESOURCE,
    R_PROMPT,
    R_LLM, /* in CPEX__ENT_* order */
    R_META,
    R_GROUPS,
    R_WHEN,
    R_PLUGINS,
    R_AUTHENTICATION,
    R_IDENTITY,
    R_COUNT
};
static const char *const route_keys[R_COUNT] = {
    "tool", "resource", "prompt",         "llm",      "meta", "groups",
    "when", "plugins",  "authentication", "identity",
};

static void read_matcher(cpex__ydiag *diag, const cpex__ynode *v, const char *key, cpex__rroute *rt,
                         int entity)
{
    rt->matchers++;
    if (rt->matchers > 1)
        return; /* reported by cpex__rcfg_finish when routing is on */
    rt->entity = entity;
    if (v->type == CPEX__YN_SEQ) {
        rt->kind = CPEX__MATCH_LIST;
        rt->names = cpex__ywant_string_list(diag, v, key, &rt->name_count, "[a, b]");
        if (rt->names && rt->name_count == 0)
            cpex__yreport(diag, v, key, "'%s' is an empty list; name at least one %s", key, key);
        rt->specificity = 500;
        return;
    }
    const char *s = cpex__ywant_string(diag, v, key, true);
    if (!s)
        return;
    if (!(rt->pattern = cpex__strdup(s))) {
        diag->nomem = true;
        return;
    }
    if (strcmp(s, "*") == 0) {
        rt->kind = CPEX__MATCH_ANY;
        rt->specificity = 0;
    } else if (strchr(s, '*')) {
        rt->kind = CPEX__MATCH_GLOB;
        rt->specificity = 300;
    } else {
        /* As CPEX: a name with '?' still glob-matches but scores as an exact name. */
        rt->kind = strchr(s, '?') ? CPEX__MATCH_GLOB : CPEX__MATCH_EXACT;
        rt->specificity = 1000;
    }
}

enum { M_TAGS, M_SCOPE, M_PROPERTIES, M_COUNT };
static const char *const meta_keys[M_COUNT] = {"tags", "scope", "properties"};

static void read_meta(cpex__ydiag *diag, const cpex__ynode *v, const char *scope, cpex__rroute *rt)
{
    if (cpex__yis_null(v))
        return;
    if (v->type != CPEX__YN_MAP) {
        cpex__yreport(diag, v, "meta", "in %s: 'meta' must be a mapping (tags:, scope:), got %s",
                      scope, cpex__ydescribe(v));
        return;
    }
    int first[M_COUNT] = {0};
    for (size_t i = 0; i + 1 < v->count; i += 2) {
        const cpex__ynode *k = v->kids[i], *mv = v->kids[i + 1];
        const char *key = cpex__ykey_text(diag, k, "of 'meta'");
        if (!key)
            continue;
        int idx = cpex__ykey_index(key, meta_keys, M_COUNT);
        if (idx < 0) {
            cpex__yreport_unknown(diag, k, key, "key of 'meta'", key, meta_keys, M_COUNT,
                                  "valid keys");
            continue;
        }
        if (cpex__yrepeated(diag, k, first, idx, key))
            continue;
        if (idx == M_TAGS) {
            size_t n = 0;
            char **tags = cpex__ywant_string_list(diag, mv, "meta.tags", &n, "pii, hr");
            if (tags) {
                cpex_strv_free(rt->tags);
                rt->tags = tags;
                rt->tag_count = n;
            }
        } else if (idx == M_SCOPE) {
            const char *s = cpex__ywant_string(diag, mv, "meta.scope", true);
            if (s && !(rt->scope = cpex__strdup(s)))
                diag->nomem = true;
        } else if (!cpex__yis_null(mv) && mv->type != CPEX__YN_MAP) {
            cpex__yreport(diag, mv, "meta.properties",
                          "'meta.properties' must be a mapping, got %s", cpex__ydescribe(mv));
        }
    }
}

static void read_route_groups(cpex__ydiag *diag, const cpex__ynode *v, cpex__rroute *rt)
{
    char **g = string_or_list(diag, v, "groups", &rt->group_count, "[pii, finance]");
    if (!g)
        return;
    cpex_strv_free(rt->groups);
    rt->groups = g;
    cpex__free(rt->group_pos);
    rt->group_pos = cpex__calloc(rt->group_count ? rt->group_count : 1, sizeof *rt->group_pos);
    if (!rt->group_pos) {
        diag->nomem = true;
        return;
    }
    /* Positions for "joins unknown group" (the items in order; the scalar form is one). */
    size_t j = 0;
    for (size_t i = 0; v->type == CPEX__YN_SEQ && i < v->count && j < rt->group_count; i++)
        if (v->kids[i]->type == CPEX__YN_SCALAR && v->kids[i]->len)
            rt->group_pos[j++] = v->kids[i]->pos;
    for (; j < rt->group_count; j++)
        rt->group_pos[j] = v->pos;
}

static void read_route(cpex__ydiag *diag, const cpex__ynode *v, cpex__rroute *rt)
{
    rt->pos = v->pos;
    rt->entity = -1;
    char scope[32];
    snprintf(scope, sizeof scope, "routes[%zu]", rt->index);
    if (v->type != CPEX__YN_MAP) {
        cpex__yreport(diag, v, "routes",
                      "route %zu must be a mapping (tool:, plugins: ...), got %s", rt->index,
                      cpex__ydescribe(v));
        return;
    }
    int first[R_COUNT] = {0};
    for (size_t i = 0; i + 1 < v->count; i += 2) {
        const cpex__ynode *k = v->kids[i], *rv = v->kids[i + 1];
        int idx = mapping_key(diag, k, scope, "a route", route_keys, R_COUNT, first);
        if (idx == -2)
            return;
        const char *key = idx >= 0 ? route_keys[idx] : NULL;
        switch (idx) {
        case R_TOOL:
        case R_RESOURCE:
        case R_PROMPT:
        case R_LLM: read_matcher(diag, rv, key, rt, idx); break;
        case R_META: read_meta(diag, rv, scope, rt); break;
        case R_GROUPS: read_route_groups(diag, rv, rt); break;
        case R_WHEN: {
            const char *s = cpex__ywant_string(diag, rv, "when", true);
            if (s && !(rt->when = cpex__strdup(s)))
                diag->nomem = true;
            if (s)
                cpex__config_warn(diag, k,
                                  "route %zu: 'when' is not evaluated by libcpex (nor by CPEX); "
                                  "the route's plugins always run when it matches",
                                  rt->index);
            break;
        }
        case R_PLUGINS: ref_list(diag, k, rv, scope, &rt->plugins); break;
        case R_AUTHENTICATION: warn_ignored(diag, k, scope, key); break;
        case R_IDENTITY: report_identity(diag, k, scope); break;
        }
    }
    if (rt->when)
        rt->specificity += 10;
    if (!rt->tags)
        rt->tags = cpex__strv_empty();
    if (!rt->groups)
        rt->groups = cpex__strv_empty();
    if (!rt->tags || !rt->groups)
        diag->nomem = true;
}

static void route_free(cpex__rroute *rt)
{
    cpex__free(rt->pattern);
    cpex_strv_free(rt->names);
    cpex__free(rt->scope);
    cpex_strv_free(rt->tags);
    cpex_strv_free(rt->groups);
    cpex__free(rt->group_pos);
    cpex__free(rt->when);
    ref_list_free(&rt->plugins);
}

void cpex__rcfg_routes(cpex__ydiag *diag, cpex__config *cfg, const cpex__ynode *v)
{
    cpex__rcfg *r = section(diag, cfg, v, CPEX__YN_SEQ, "routes", "a list of routes (- tool: ...)");
    if (!r)
        return;
    r->routes = cpex__calloc(v->count ? v->count : 1, sizeof *r->routes);
    if (!r->routes) {
        diag->nomem = true;
        return;
    }
    for (size_t i = 0; i < v->count && !diag->nomem; i++) {
        if (!cpex__ybudget(diag, v->kids[i], NULL))
            break;
        cpex__rroute *rt = &r->routes[r->route_count++];
        rt->index = i;
        read_route(diag, v->kids[i], rt);
    }
}

/* ------------------------------------------------------------------ */
/* Conditions                                                          */
/* ------------------------------------------------------------------ */

static const char *const cond_keys[CPEX__C_COUNT] = {
    "server_ids", "tenant_ids", "tools",         "prompts",
    "resources",  "agents",     "user_patterns", "content_types",
};

void cpex__conds_free(cpex__conds *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->count; i++)
        for (int f = 0; f < CPEX__C_COUNT; f++)
            cpex_strv_free(c->items[i].field[f]);
    cpex__free(c->items);
    c->items = NULL;
    c->count = 0;
}

void cpex__rcfg_conditions(cpex__ydiag *diag, cpex__config *cfg, cpex__conds *out,
                           const cpex__ynode *v)
{
    if (!section(diag, cfg, v, CPEX__YN_SEQ, "conditions", "a list of conditions (- tools: [...])"))
        return;
    out->items = cpex__calloc(v->count ? v->count : 1, sizeof *out->items);
    if (!out->items) {
        diag->nomem = true;
        return;
    }
    for (size_t i = 0; i < v->count; i++) {
        const cpex__ynode *c = v->kids[i];
        if (!cpex__ybudget(diag, c, NULL))
            return;
        if (c->type != CPEX__YN_MAP) {
            cpex__yreport(diag, c, "conditions",
                          "each condition must be a mapping (tools:, user_patterns: ...), got %s",
                          cpex__ydescribe(c));
            continue;
        }
        cpex__cond *cond = &out->items[out->count++];
        int first[CPEX__C_COUNT] = {0};
        for (size_t j = 0; j + 1 < c->count; j += 2) {
            const cpex__ynode *k = c->kids[j], *cv = c->kids[j + 1];
            const char *key = cpex__ykey_text(diag, k, "of a condition");
            if (!key)
                continue;
            int idx = cpex__ykey_index(key, cond_keys, CPEX__C_COUNT);
            if (idx < 0) {
                cpex__yreport_unknown(diag, k, key, "condition field", key, cond_keys,
                                      CPEX__C_COUNT, "valid fields");
                continue;
            }
            if (cpex__yrepeated(diag, k, first, idx, key))
                continue;
            size_t n = 0;
            char **vals = cpex__ywant_string_list(diag, cv, key, &n, "a, b");
            if (!vals) {
                if (!cpex__yis_null(cv) || diag->nomem)
                    continue;
                /* An explicit null is an absent field. */
                continue;
            }
            cond->field[idx] = vals;
            if (idx == CPEX__C_SERVER_IDS || idx == CPEX__C_TENANT_IDS || idx == CPEX__C_AGENTS ||
                idx == CPEX__C_CONTENT_TYPES) {
                static const char *const custom_key[CPEX__C_COUNT] = {
                    [CPEX__C_SERVER_IDS] = "server_id",
                    [CPEX__C_TENANT_IDS] = "tenant_id",
                    [CPEX__C_AGENTS] = "agent_id",
                    [CPEX__C_CONTENT_TYPES] = "content_type"};
                cpex__config_warn(diag, k,
                                  "condition field '%s' reads the custom extension value '%s' "
                                  "(libcpex has no MCP, agent or claims slot for it); a request "
                                  "without that value does not match this condition",
                                  key, custom_key[idx]);
            }
        }
    }
}

/* ------------------------------------------------------------------ */
/* After the file                                                      */
/* ------------------------------------------------------------------ */

/* Top-level `groups:` win over `global.policies` of the same name (no
 * warning, as CPEX); the loser is dropped. Then groups are ordered by
 * where they are defined: the order tags apply them in (decision 2). */
static void merge_groups(cpex__rcfg *r)
{
    /* First mark the beaten ones (every entry still intact), then drop them. */
    for (size_t i = 0; i < r->group_count; i++) {
        cpex__rgroup *g = &r->groups[i];
        if (strncmp(g->where, "global.policies.", 16) != 0)
            continue;
        for (size_t j = 0; j < r->group_count; j++)
            if (strncmp(r->groups[j].where, "groups.", 7) == 0 &&
                strcmp(r->groups[j].name, g->name) == 0)
                g->pos.line = -1; /* beaten by a top-level group */
    }
    size_t n = 0;
    for (size_t i = 0; i < r->group_count; i++) {
        if (r->groups[i].pos.line == -1)
            group_free(&r->groups[i]);
        else
            r->groups[n++] = r->groups[i];
    }
    r->group_count = n;
    /* Insertion sort by position: files hold few groups. */
    for (size_t i = 1; i < n; i++) {
        cpex__rgroup g = r->groups[i];
        size_t j = i;
        while (j > 0 && (r->groups[j - 1].pos.line > g.pos.line ||
                         (r->groups[j - 1].pos.line == g.pos.line &&
                          r->groups[j - 1].pos.column > g.pos.column))) {
            r->groups[j] = r->groups[j - 1];
            j--;
        }
        r->groups[j] = g;
    }
}

void cpex__rcfg_finish(cpex__ydiag *diag, cpex__config *cfg)
{
    cpex__rcfg *r = cfg->routing;
    if (!r)
        return;
    merge_groups(r);
    if (!r->enabled) {
        if (r->route_count || r->group_count || r->default_count)
            cpex__config_warn(diag, NULL,
                              "plugin_settings.routing_enabled is not true: 'routes', 'global' "
                              "and 'groups' are kept but select nothing; every plugin runs on "
                              "its hooks, filtered by its own 'conditions'");
        return;
    }
    for (size_t i = 0; i < cfg->plugin_count; i++)
        if (cfg->plugins[i].conditions && cfg->plugins[i].conditions->count) {
            cpex__ynode at;
            memset(&at, 0, sizeof at);
            at.pos = cfg->plugins[i].conditions_pos;
            cpex__config_warn(diag, &at,
                              "plugin '%.200s': 'conditions' are ignored because "
                              "routing_enabled is true (routes and groups choose the plugins)",
                              cfg->plugins[i].name ? cfg->plugins[i].name : "?");
        }
    for (size_t i = 0; i < r->route_count; i++) {
        cpex__rroute *rt = &r->routes[i];
        if (rt->matchers == 0)
            cpex__yreport(diag, NULL, "routes",
                          "route %zu has no entity matcher (need tool, resource, prompt, or llm)",
                          rt->index);
        else if (rt->matchers > 1)
            cpex__yreport(diag, NULL, "routes",
                          "route %zu has multiple entity matchers (need exactly one)", rt->index);
        for (size_t g = 0; g < rt->group_count; g++) {
            bool known = false;
            for (size_t j = 0; j < r->group_count && !known; j++)
                known = strcmp(r->groups[j].name, rt->groups[g]) == 0;
            if (!known) {
                cpex__ynode at;
                memset(&at, 0, sizeof at);
                at.pos = rt->group_pos ? rt->group_pos[g] : rt->pos;
                cpex__yreport(diag, &at, "groups", "route %zu joins unknown group '%.200s'",
                              rt->index, rt->groups[g]);
            }
        }
    }
}

void cpex__rcfg_free(cpex__rcfg *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->route_count; i++)
        route_free(&r->routes[i]);
    cpex__free(r->routes);
    for (size_t i = 0; i < r->group_count; i++)
        group_free(&r->groups[i]);
    cpex__free(r->groups);
    for (size_t i = 0; i < r->default_count; i++)
        group_free(&r->defaults[i]);
    cpex__free(r->defaults);
    cpex__free(r);
}

/* ------------------------------------------------------------------ */
/* Matching                                                            */
/* ------------------------------------------------------------------ */

/* Bytes of the UTF-8 character at s (1 for a stray byte), within n. */
static size_t char_len(const unsigned char *s, size_t n)
{
    size_t l = s[0] < 0x80         ? 1
               : (s[0] >> 5) == 6  ? 2
               : (s[0] >> 4) == 14 ? 3
               : (s[0] >> 3) == 30 ? 4
                                   : 1;
    return l <= n ? l : 1;
}

bool cpex__glob_match(const char *pattern, const char *text, size_t n)
{
    /* The classic two-pointer walk: on a mismatch, go back to just after
     * the last '*' and let it swallow one more character. Linear for the
     * patterns routes use, O(pattern * text) at worst; no recursion. */
    const unsigned char *p = (const unsigned char *)pattern;
    const unsigned char *t = (const unsigned char *)text, *end = t + n;
    const unsigned char *star = NULL, *resume = NULL;
    while (t < end) {
        if (*p == '*') {
            while (*p == '*')
                p++;
            if (!*p)
                return true;
            star = p;
            resume = t;
        } else if (*p && (*p == '?' || *p == *t)) {
            size_t step = *p == '?' ? char_len(t, (size_t)(end - t)) : 1;
            p++;
            t += step;
        } else if (star) {
            p = star;
            resume += char_len(resume, (size_t)(end - resume));
            t = resume;
        } else {
            return false;
        }
    }
    while (*p == '*')
        p++;
    return *p == '\0';
}

bool cpex__rroute_matches(const cpex__rroute *rt, const char *name, size_t len)
{
    switch (rt->kind) {
    case CPEX__MATCH_ANY: return true;
    case CPEX__MATCH_GLOB: return cpex__glob_match(rt->pattern, name, len);
    case CPEX__MATCH_EXACT:
        return strlen(rt->pattern) == len && memcmp(rt->pattern, name, len) == 0;
    case CPEX__MATCH_LIST:
        for (size_t i = 0; i < rt->name_count; i++)
            if (strlen(rt->names[i]) == len && memcmp(rt->names[i], name, len) == 0)
                return true;
        return false;
    }
    return false;
}
