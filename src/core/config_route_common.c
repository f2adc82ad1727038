/*
 * config_route_common.c — what the readers of the routing sections share
 * (config_routes_internal.h): the routing a section adds to, the key rules
 * of routes, groups and global (unknown keys with a did-you-mean, APL's
 * keys and `authentication` accepted with a warning, the legacy
 * `identity:` refused with CPEX's rename message) and their `plugins:`
 * lists, with config overrides.
 */
#include "core/config_routes_internal.h"

#include <stdio.h>
#include <string.h>

#include "core/yaml_scalar.h"
#include "core/yaml_typed.h"
#include "util/alloc.h"
#include "util/count.h"

/* Keys APL (CPEX's policy language) reads inside routes, groups and
 * global: accepted with a warning, as the top-level `apl:` is. */
static const char *const apl_keys[] = {
    "apl",    "authorization", "pre_invocation", "post_invocation", "args",
    "result", "pdp",           "session_store",  "response"};

static bool is_apl_key(const char *key)
{
    return cpex__ykey_index(key, apl_keys, CPEX__COUNT(apl_keys)) >= 0;
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
cpex__rcfg *cpex__rcfg_section(cpex__ydiag *diag, cpex__config *cfg, const cpex__ynode *v, int type,
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

/* The legacy key, refused in every mode with CPEX's message. */
void cpex__rcfg_report_identity(cpex__ydiag *diag, const cpex__ynode *k, const char *scope)
{
    cpex__yreport(diag, k, "identity",
                  "in `%s`: config field `identity` was renamed to `authentication` — update "
                  "your config",
                  scope);
}

/* A key CPEX knows and libcpex does not act on. */
void cpex__rcfg_warn_ignored(cpex__ydiag *diag, const cpex__ynode *k, const char *scope,
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
int cpex__rcfg_mapping_key(cpex__ydiag *diag, const cpex__ynode *k, const char *scope,
                           const char *what, const char *const *keys, size_t count, int *first)
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
            cpex__rcfg_warn_ignored(diag, k, scope, key);
        else
            cpex__yreport_unknown(diag, k, key, unknown, key, keys, count, "valid keys");
        return -1;
    }
    return cpex__yrepeated(diag, k, first, idx, key) ? -1 : idx;
}

void cpex__rref_list_free(cpex__rref_list *l)
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
void cpex__rref_list_read(cpex__ydiag *diag, const cpex__ynode *k, const cpex__ynode *v,
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
