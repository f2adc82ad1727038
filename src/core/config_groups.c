/*
 * config_groups.c — read the policy groups of a configuration (see
 * routing_config.h): top-level `groups:`, `global:` with its
 * `policies:` and `defaults:`, and, after the file, merge them: a
 * top-level group beats a global policy of the same name, and groups keep
 * the order they are defined in.
 */
#include "core/config_routes_internal.h"

#include <string.h>

#include "core/yaml_scalar.h"
#include "core/yaml_typed.h"
#include "util/alloc.h"

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
        int idx = cpex__rcfg_mapping_key(diag, gk, where, "a group", group_keys, G_COUNT, first);
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
            cpex__rref_list_free(&g->plugins);
            cpex__rref_list_read(diag, gk, gv, where, &g->plugins);
            break;
        case G_AUTHENTICATION: cpex__rcfg_warn_ignored(diag, gk, where, key); break;
        case G_IDENTITY: cpex__rcfg_report_identity(diag, gk, where); break;
        }
    }
}

void cpex__rgroup_free(cpex__rgroup *g)
{
    cpex__free(g->name);
    cpex__free(g->where);
    cpex__rref_list_free(&g->plugins);
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
            cpex__rgroup_free(g);
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
    cpex__rcfg *r = cpex__rcfg_section(diag, cfg, v, CPEX__YN_MAP, "global",
                                       "a mapping (policies:, defaults:)");
    if (!r)
        return;
    int first[GL_COUNT] = {0};
    for (size_t i = 0; i + 1 < v->count; i += 2) {
        const cpex__ynode *k = v->kids[i], *gv = v->kids[i + 1];
        int idx =
            cpex__rcfg_mapping_key(diag, k, "global", "'global'", global_keys, GL_COUNT, first);
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
        case GL_AUTHENTICATION: cpex__rcfg_warn_ignored(diag, k, "global", key); break;
        case GL_IDENTITY: cpex__rcfg_report_identity(diag, k, "global"); break;
        }
    }
}

/* Top-level `groups:` win over `global.policies` of the same name (no
 * warning, as CPEX); the loser is dropped. Then groups are ordered by
 * where they are defined: the order tags apply them in (decision 2). */
void cpex__rcfg_merge_groups(cpex__rcfg *r)
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
            cpex__rgroup_free(&r->groups[i]);
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
