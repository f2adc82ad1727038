/*
 * routing_policy.c — a configuration's routing made ready for invokes
 * (routing.h): references checked against the plugins the manager will
 * have, override instances built once, group names hashed for runtime
 * tags, each route's static groups resolved to indices.
 */
#include "core/routing.h"

#include <stdio.h>
#include <string.h>

#include "util/alloc.h"
#include "util/strv.h"

cpex__policy *cpex__policy_ref(cpex__policy *p)
{
    if (p)
        atomic_fetch_add_explicit(&p->refs, 1, memory_order_relaxed);
    return p;
}

void cpex__policy_unref(cpex__policy *p)
{
    if (!p || atomic_fetch_sub_explicit(&p->refs, 1, memory_order_acq_rel) != 1)
        return;
    /* Last reference: no snapshot holds the policy, so no invoke can reach
     * its override instances; background work holds its own references. */
    for (size_t i = p->instance_count; i-- > 0;)
        cpex__plugin_unref(p->instances[i]);
    cpex__free(p->instances);
    if (p->cfg && p->route_groups)
        for (size_t i = 0; i < p->cfg->route_count; i++)
            cpex__free(p->route_groups[i]);
    cpex__free(p->route_groups);
    cpex__free(p->route_group_count);
    cpex__free(p->table);
    cpex__free(p->group_hash);
    for (size_t i = 0; i < p->cond_count; i++) {
        cpex__free(p->conds[i].plugin);
        cpex__conds_free(&p->conds[i].conds);
    }
    cpex__free(p->conds);
    cpex__rcfg_free(p->cfg);
    cpex__free(p->source);
    cpex__free(p);
}

int cpex__policy_group(const cpex__policy *p, const char *name, size_t len, uint64_t hash)
{
    if (!p->table)
        return -1;
    for (size_t pos = (size_t)hash & p->table_mask;; pos = (pos + 1) & p->table_mask) {
        uint32_t slot = p->table[pos];
        if (!slot)
            return -1;
        const char *g = p->cfg->groups[slot - 1].name;
        if (p->group_hash[slot - 1] == hash && strlen(g) == len && memcmp(g, name, len) == 0)
            return (int)(slot - 1);
    }
}

const cpex__conds *cpex__policy_conds(const cpex__policy *p, const char *name)
{
    for (size_t i = 0; p && i < p->cond_count; i++)
        if (strcmp(p->conds[i].plugin, name) == 0)
            return p->conds[i].conds.count ? &p->conds[i].conds : NULL;
    return NULL;
}

/* ------------------------------------------------------------------ */
/* Building                                                            */
/* ------------------------------------------------------------------ */

typedef struct build {
    cpex__policy *p;
    const char *source;
    char *const *known;
    size_t known_count;
    cpex__override_maker make;
    void *make_ctx;
    cpex_error *err;
    bool failed;
} build;

static bool known(const build *b, const char *name)
{
    for (size_t i = 0; i < b->known_count; i++)
        if (strcmp(b->known[i], name) == 0)
            return true;
    return false;
}

/* Check the names of one plugins list and build its overrides. `what`
 * is CPEX's phrase for the list ("route 3", "policy group 'pii'"). */
static void check_refs(build *b, cpex__rref_list *l, const char *what)
{
    for (size_t i = 0; i < l->count; i++) {
        cpex__rref *r = &l->items[i];
        cpex__where w = {b->source, r->pos.line, r->pos.column, NULL, "plugins"};
        if (!known(b, r->name)) {
            cpex__error_add(b->err, CPEX_E_CONFIG, &w,
                            "%s references unknown plugin '%.200s'; list it under plugins: "
                            "(or register it) first",
                            what, r->name);
            b->failed = true;
            continue;
        }
        if (!r->override)
            continue;
        w.plugin = r->name;
        cpex__plugin *inst = b->make(b->make_ctx, r->name, r->override, &w, b->err);
        if (!inst) {
            b->failed = true;
            continue;
        }
        cpex__plugin **n = cpex__realloc(b->p->instances, (b->p->instance_count + 1) * sizeof *n);
        if (!n) {
            cpex__plugin_unref(inst);
            cpex__error_add(b->err, CPEX_E_NOMEM, &w, "out of memory");
            b->failed = true;
            continue;
        }
        b->p->instances = n;
        n[b->p->instance_count++] = inst;
        r->instance = inst;
    }
}

static bool build_group_table(cpex__policy *p)
{
    size_t n = p->cfg->group_count;
    if (!n)
        return true;
    size_t size = 8;
    while (size < n * 2)
        size *= 2;
    p->table = cpex__calloc(size, sizeof *p->table);
    p->group_hash = cpex__calloc(n, sizeof *p->group_hash);
    if (!p->table || !p->group_hash)
        return false;
    p->table_mask = size - 1;
    for (size_t i = 0; i < n; i++) {
        const char *name = p->cfg->groups[i].name;
        p->group_hash[i] = cpex__hash_name(name, strlen(name));
        size_t pos = (size_t)p->group_hash[i] & p->table_mask;
        while (p->table[pos])
            pos = (pos + 1) & p->table_mask;
        p->table[pos] = (uint32_t)(i + 1);
        if (strcmp(name, "all") == 0)
            p->all_group = (int)i;
    }
    return true;
}

/* Each route's meta.tags and groups: as ascending group indices (tags
 * with no group are dropped; `all` always applies anyway). */
static bool build_route_groups(cpex__policy *p)
{
    size_t n = p->cfg->route_count;
    p->route_groups = cpex__calloc(n ? n : 1, sizeof *p->route_groups);
    p->route_group_count = cpex__calloc(n ? n : 1, sizeof *p->route_group_count);
    if (!p->route_groups || !p->route_group_count)
        return false;
    for (size_t i = 0; i < n; i++) {
        const cpex__rroute *rt = &p->cfg->routes[i];
        size_t cap = rt->tag_count + rt->group_count;
        uint32_t *g = cpex__calloc(cap ? cap : 1, sizeof *g);
        if (!g)
            return false;
        p->route_groups[i] = g;
        size_t k = 0;
        for (size_t j = 0; j < cap; j++) {
            const char *name = j < rt->tag_count ? rt->tags[j] : rt->groups[j - rt->tag_count];
            size_t len = strlen(name);
            int idx = cpex__policy_group(p, name, len, cpex__hash_name(name, len));
            if (idx < 0 || idx == p->all_group)
                continue;
            size_t at = k;
            while (at > 0 && g[at - 1] > (uint32_t)idx)
                at--;
            if (at > 0 && g[at - 1] == (uint32_t)idx)
                continue; /* a tag and a groups: entry naming one group apply it once */
            memmove(g + at + 1, g + at, (k - at) * sizeof *g);
            g[at] = (uint32_t)idx;
            k++;
        }
        p->route_group_count[i] = k;
    }
    return true;
}

/* The plugins' conditions move into the policy (routing off only). */
static bool take_conditions(cpex__policy *p, cpex__config *cfg)
{
    size_t n = 0;
    for (size_t i = 0; i < cfg->plugin_count; i++)
        if (cfg->plugins[i].conditions && cfg->plugins[i].name)
            n++;
    if (!n)
        return true;
    p->conds = cpex__calloc(n, sizeof *p->conds);
    if (!p->conds)
        return false;
    for (size_t i = 0; i < cfg->plugin_count; i++) {
        cpex__config_plugin *cp = &cfg->plugins[i];
        if (!cp->conditions || !cp->name)
            continue;
        cpex__plugin_conds *c = &p->conds[p->cond_count];
        if (!(c->plugin = cpex__strdup(cp->name)))
            return false;
        c->conds = *cp->conditions;
        memset(cp->conditions, 0, sizeof *cp->conditions);
        p->cond_count++;
    }
    return true;
}

cpex__policy *cpex__policy_build(cpex__config *cfg, char *const *known_names, size_t known_count,
                                 cpex__override_maker make, void *make_ctx, cpex_error *err)
{
    cpex__where w = {cfg->source, 0, 0, NULL, NULL};
    cpex__policy *p = cpex__calloc(1, sizeof *p);
    if (!p) {
        cpex__error_add(err, CPEX_E_NOMEM, &w, "out of memory");
        return NULL;
    }
    atomic_init(&p->refs, 1);
    p->all_group = -1;
    p->cfg = cfg->routing;
    cfg->routing = NULL;
    if (!p->cfg && !(p->cfg = cpex__calloc(1, sizeof *p->cfg)))
        goto oom;
    p->enabled = p->cfg->enabled;
    p->cache_max = p->cfg->present ? p->cfg->cache_max : CPEX__ROUTE_CACHE_DEFAULT;
    if (!(p->source = cpex__strdup(cfg->source ? cfg->source : "<string>")))
        goto oom;
    if (!build_group_table(p) || !build_route_groups(p))
        goto oom;
    if (!p->enabled) {
        /* Routes, groups and overrides select nothing: no instance is built
         * and no name is checked (CPEX skips the same checks). */
        if (!take_conditions(p, cfg))
            goto oom;
        return p;
    }
    build b = {p, p->source, known_names, known_count, make, make_ctx, err, false};
    char what[600];
    for (size_t i = 0; i < p->cfg->group_count; i++) {
        cpex__rgroup *g = &p->cfg->groups[i];
        snprintf(what, sizeof what, "policy group '%.200s'", g->name);
        check_refs(&b, &g->plugins, what);
    }
    for (size_t i = 0; i < p->cfg->default_count; i++) {
        cpex__rgroup *g = &p->cfg->defaults[i];
        snprintf(what, sizeof what, "default group '%.200s' (%.200s)", g->name, g->where);
        check_refs(&b, &g->plugins, what);
    }
    for (size_t i = 0; i < p->cfg->route_count; i++) {
        snprintf(what, sizeof what, "route %zu", p->cfg->routes[i].index);
        check_refs(&b, &p->cfg->routes[i].plugins, what);
    }
    if (b.failed) {
        cpex__policy_unref(p);
        return NULL;
    }
    return p;
oom:
    cpex__error_add(err, CPEX_E_NOMEM, &w, "out of memory building the routing");
    cpex__policy_unref(p);
    return NULL;
}
