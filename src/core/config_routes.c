/*
 * config_routes.c — read the routes of a configuration (see
 * routing_config.h): `routes:` and the two routing settings; after the
 * whole file, the checks that need all of it; freeing what was read; and
 * how a route's matcher matches a name. The other routing sections have
 * files of their own: groups and global (config_groups.c), per-plugin
 * conditions (config_conditions.c), and what they all share
 * (config_route_common.c, config_routes_internal.h).
 *
 * The YAML shape is CPEX's (reference §1.2). Where CPEX silently drops
 * something, libcpex says so: unknown keys are errors with a did-you-mean;
 * keys CPEX knows that libcpex does not act on (`when`, `authentication`,
 * APL's keys, `meta.properties`) are accepted with a warning; the legacy
 * `identity:` key is refused with CPEX's rename message in every mode.
 */
#include "core/config_routes_internal.h"

#include <stdio.h>
#include <string.h>

#include "core/yaml_scalar.h"
#include "core/yaml_typed.h"
#include "util/alloc.h"
#include "util/strv.h"

static const char *const entity_names[CPEX__ENT_COUNT] = {"tool", "resource", "prompt", "llm"};

const char *cpex__entity_name(int entity)
{
    return entity >= 0 && entity < CPEX__ENT_COUNT ? entity_names[entity] : NULL;
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
/* Routes                                                              */
/* ------------------------------------------------------------------ */

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
        int idx = cpex__rcfg_mapping_key(diag, k, scope, "a route", route_keys, R_COUNT, first);
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
        case R_PLUGINS: cpex__rref_list_read(diag, k, rv, scope, &rt->plugins); break;
        case R_AUTHENTICATION: cpex__rcfg_warn_ignored(diag, k, scope, key); break;
        case R_IDENTITY: cpex__rcfg_report_identity(diag, k, scope); break;
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
    cpex__rref_list_free(&rt->plugins);
}

void cpex__rcfg_routes(cpex__ydiag *diag, cpex__config *cfg, const cpex__ynode *v)
{
    cpex__rcfg *r =
        cpex__rcfg_section(diag, cfg, v, CPEX__YN_SEQ, "routes", "a list of routes (- tool: ...)");
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
/* After the file                                                      */
/* ------------------------------------------------------------------ */

void cpex__rcfg_finish(cpex__ydiag *diag, cpex__config *cfg)
{
    cpex__rcfg *r = cfg->routing;
    if (!r)
        return;
    cpex__rcfg_merge_groups(r);
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
        cpex__rgroup_free(&r->groups[i]);
    cpex__free(r->groups);
    for (size_t i = 0; i < r->default_count; i++)
        cpex__rgroup_free(&r->defaults[i]);
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
