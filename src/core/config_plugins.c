/*
 * config_plugins.c — check each entry of `plugins:` in the YAML
 * configuration (see config.h), key by key: name, kind, hooks, mode,
 * priority, on_error, capabilities, the sha256 pin and the rest. The
 * values go into the configuration's plugins, every problem is reported
 * through config_check.h, naming the plugin. A plugin's `conditions:` are
 * config_routes.c's; `isolation:`, `workers:` and `sandbox:` are
 * config_isolation.c's; `state_namespace:` is checked by config_state.c.
 */
#include "core/config_check.h"

#include <stdint.h>
#include <string.h>

#include "core/routing_config.h"
#include "core/yaml_scalar.h"
#include "core/yaml_typed.h"
#include "util/alloc.h"
#include "util/count.h"
#include "util/sha256.h"
#include "util/strv.h"

static char **empty_strv(cpex__cfg_ctx *c)
{
    char **v = cpex__strv_empty();
    if (!v)
        c->diag.nomem = true;
    return v;
}

enum {
    P_NAME,
    P_KIND,
    P_DESCRIPTION,
    P_AUTHOR,
    P_VERSION,
    P_HOOKS,
    P_MODE,
    P_PRIORITY,
    P_ON_ERROR,
    P_TIMEOUT,
    P_CAPABILITIES,
    P_TAGS,
    P_CONFIG,
    P_CONDITIONS,
    P_STATE_NAMESPACE,
    P_ISOLATION, /* the three keys of config_isolation.c, in CPEX__ISOLATION_KEYS order */
    P_WORKERS,
    P_SANDBOX,
    P_SHA256,
    P_COUNT
};
static const char *const plugin_keys[P_COUNT] = {
    "name",
    "kind",
    "description",
    "author",
    "version",
    "hooks",
    "mode",
    "priority",
    "on_error",
    "timeout",
    "capabilities",
    "tags",
    "config",
    "conditions",
    "state_namespace",
    CPEX__ISOLATION_KEYS,
    "sha256",
};

/* config_isolation.c reports through this: at the key's value, naming the plugin. */
typedef struct iso_report_ctx {
    cpex__cfg_ctx *c;
    const cpex__ynode *at;
} iso_report_ctx;

static void iso_report(void *rc, const char *key, const char *message)
{
    iso_report_ctx *r = rc;
    cpex__cfg_report(r->c, r->at, key, "%s", message);
}

/* `sha256:`: a pin of the plugin's file, 64 hex digits in either case (kept
   in lowercase); the factory checks it before the file is loaded. */
static void check_sha256(cpex__cfg_ctx *c, cpex__config_plugin *p, const cpex__ynode *v)
{
    const char *s = cpex__ywant_string(&c->diag, v, "sha256", true);
    if (!s)
        return;
    size_t bad = 0;
    if (!cpex__sha256_hex_valid(s, &bad)) {
        if (s[bad])
            cpex__cfg_report(
                c, v, "sha256",
                "'sha256' must be 64 hexadecimal digits (the SHA-256 of the library, as "
                "`cpex inspect` prints it); character %zu ('%c') is not a hex digit",
                bad + 1, s[bad] >= ' ' && s[bad] < 127 ? s[bad] : '?');
        else
            cpex__cfg_report(
                c, v, "sha256",
                "'sha256' must be 64 hexadecimal digits (the SHA-256 of the library, as "
                "`cpex inspect` prints it); got %zu",
                bad);
        return;
    }
    cpex__free(p->sha256);
    if (!(p->sha256 = cpex__strdup(s))) {
        c->diag.nomem = true;
        return;
    }
    for (char *q = p->sha256; *q; q++)
        if (*q >= 'A' && *q <= 'F')
            *q = (char)(*q - 'A' + 'a');
}

static void check_mode(cpex__cfg_ctx *c, cpex__config_plugin *p, const cpex__ynode *v)
{
    const char *valid[CPEX_MODE_DISABLED + 1];
    for (uint32_t m = 0; m <= CPEX_MODE_DISABLED; m++)
        valid[m] = cpex_mode_name(m);
    if (v->type != CPEX__YN_SCALAR || cpex__yis_null(v)) {
        char list[256];
        cpex__cfg_report(c, v, "mode", "'mode' must be one of %s; got %s",
                         cpex__yjoin(list, sizeof list, valid, CPEX__COUNT(valid)),
                         cpex__ydescribe(v));
        return;
    }
    int m = cpex__mode_from_name(v->text);
    if (m < 0 || strlen(v->text) != v->len) {
        cpex__yreport_unknown(&c->diag, v, "mode", "mode", v->text, valid, CPEX__COUNT(valid),
                              "valid modes");
        return;
    }
    p->mode = (uint32_t)m;
}

static void check_on_error(cpex__cfg_ctx *c, cpex__config_plugin *p, const cpex__ynode *v)
{
    const char *valid[CPEX_ON_ERROR_DISABLE + 1];
    for (int e = 0; e <= CPEX_ON_ERROR_DISABLE; e++)
        valid[e] = cpex_on_error_name((cpex_on_error)e);
    if (v->type != CPEX__YN_SCALAR || cpex__yis_null(v)) {
        char list[128];
        cpex__cfg_report(c, v, "on_error", "'on_error' must be one of %s; got %s",
                         cpex__yjoin(list, sizeof list, valid, CPEX__COUNT(valid)),
                         cpex__ydescribe(v));
        return;
    }
    int e = cpex__on_error_from_name(v->text);
    if (e < 0 || strlen(v->text) != v->len) {
        cpex__yreport_unknown(&c->diag, v, "on_error", "on_error value", v->text, valid,
                              CPEX__COUNT(valid), "valid values");
        return;
    }
    p->on_error = (cpex_on_error)e;
    p->has_on_error = true;
}

static void check_priority(cpex__cfg_ctx *c, cpex__config_plugin *p, const cpex__ynode *v)
{
    cpex__yval r = cpex__yresolve(v);
    if (v->type != CPEX__YN_SCALAR || r.kind != CPEX__YV_INT) {
        cpex__cfg_report(c, v, "priority", "'priority' must be an integer, got %s%s",
                         cpex__ydescribe(v), cpex__yunquote_hint(v, CPEX__YV_INT));
        return;
    }
    if (r.bad || r.i < INT32_MIN || r.i > INT32_MAX) {
        cpex__cfg_report(c, v, "priority", "'priority' %.64s is out of range (%d to %d)", v->text,
                         INT32_MIN, INT32_MAX);
        return;
    }
    p->priority = (int32_t)r.i;
}

static void check_hooks(cpex__cfg_ctx *c, cpex__config_plugin *p, const cpex__ynode *v)
{
    p->hooks_pos = v->pos;
    if (v->type != CPEX__YN_SEQ || v->count == 0) {
        if (v->type == CPEX__YN_SCALAR && !cpex__yis_null(v))
            cpex__cfg_report(c, v, "hooks",
                             "'hooks' must be a list of hook names, got %s; write hooks: [%.100s]",
                             cpex__ydescribe(v), v->text);
        else if (v->type == CPEX__YN_MAP)
            cpex__cfg_report(c, v, "hooks", "'hooks' must be a list of hook names, got a mapping");
        else
            cpex__cfg_report(
                c, v, "hooks",
                "'hooks' is empty; list at least one hook, e.g. hooks: [tool_pre_invoke]");
        return;
    }
    size_t n = 0;
    char **hooks = cpex__ywant_string_list(&c->diag, v, "hooks", &n, "tool_pre_invoke");
    if (!hooks)
        return;
    /* Duplicates (an error: the plugin would be wired twice). */
    for (size_t i = 0, seen = 0; i < v->count && seen < n; i++) {
        const cpex__ynode *it = v->kids[i];
        if (it->type != CPEX__YN_SCALAR || it->len == 0 || strlen(it->text) != it->len ||
            cpex__yis_null(it))
            continue;
        for (size_t j = 0; j < seen; j++) {
            if (strcmp(hooks[j], it->text) == 0) {
                int first = 0;
                for (size_t k = 0; k < i; k++)
                    if (v->kids[k]->type == CPEX__YN_SCALAR &&
                        !strcmp(v->kids[k]->text, it->text)) {
                        first = v->kids[k]->pos.line;
                        break;
                    }
                cpex__cfg_report(c, it, "hooks",
                                 "hook '%.200s' is listed twice (first at line %d); keep one",
                                 it->text, first);
                break;
            }
        }
        seen++;
    }
    cpex_strv_free(p->hooks);
    p->hooks = hooks;
    p->hook_count = n;
}

static void check_capabilities(cpex__cfg_ctx *c, cpex__config_plugin *p, const cpex__ynode *v)
{
    size_t n = 0;
    char **names =
        cpex__ywant_string_list(&c->diag, v, "capabilities", &n, "read_subject, read_headers");
    if (!names)
        return;
    /* Keep each name once, in order; check each. */
    size_t kept = 0, item = 0;
    for (size_t i = 0; i < n; i++) {
        /* The node of names[i], for the position. */
        const cpex__ynode *at = v;
        for (; item < v->count; item++) {
            const cpex__ynode *it = v->kids[item];
            if (it->type == CPEX__YN_SCALAR && it->len > 0 && !cpex__yis_null(it) &&
                strlen(it->text) == it->len) {
                at = it;
                item++;
                break;
            }
        }
        bool dup = false;
        for (size_t j = 0; j < kept; j++)
            if (strcmp(names[j], names[i]) == 0)
                dup = true;
        if (dup) {
            cpex__free(names[i]);
            names[i] = NULL;
            continue;
        }
        const char *suggestion = NULL;
        cpex__cap_parse r = cpex__caps_parse(names[i], &p->caps, &suggestion);
        if (r == CPEX_CAP_UNKNOWN) {
            if (suggestion)
                cpex__cfg_report(c, at, "capabilities",
                                 "unknown capability '%.200s'; did you mean '%s'?", names[i],
                                 suggestion);
            else {
                const char *known[32];
                size_t nknown = 0;
                for (unsigned b = 0; b < 32; b++) {
                    const char *name = cpex__caps_name((cpex__caps)1u << b);
                    if (name)
                        known[nknown++] = name;
                }
                char list[512];
                cpex__cfg_report(c, at, "capabilities",
                                 "unknown capability '%.200s'; valid capabilities: %s", names[i],
                                 cpex__yjoin(list, sizeof list, known, nknown));
            }
        } else if (r == CPEX_CAP_NOT_IMPLEMENTED) {
            cpex__cfg_warn(
                c, at,
                "capability '%.200s' is a CPEX capability libcpex does not implement yet; it "
                "grants nothing",
                names[i]);
        }
        names[kept++] = names[i];
        if (kept - 1 != i)
            names[i] = NULL;
    }
    names[kept] = NULL;
    cpex_strv_free(p->capabilities);
    p->capabilities = names;
    p->capability_count = kept;
}

/* The plugin's name, looked up first so that every message can name it. */
static const char *find_name(const cpex__ynode *map)
{
    for (size_t i = 0; i + 1 < map->count; i += 2) {
        const cpex__ynode *k = map->kids[i], *v = map->kids[i + 1];
        if (k->type == CPEX__YN_SCALAR && k->len == 4 && !strcmp(k->text, "name")) {
            if (v->type == CPEX__YN_SCALAR && v->len > 0 && !cpex__yis_null(v) &&
                strlen(v->text) == v->len)
                return v->text;
            return NULL;
        }
    }
    return NULL;
}

static void check_plugin(cpex__cfg_ctx *c, const cpex__ynode *map, cpex__config_plugin *p)
{
    p->mode = CPEX_MODE_SEQUENTIAL;
    p->priority = 100;
    p->on_error = CPEX_ON_ERROR_FAIL;
    p->pos = map->pos;
    if (map->type != CPEX__YN_MAP) {
        cpex__cfg_report(
            c, map, NULL,
            "each entry of 'plugins' must be a mapping with at least name, kind and hooks; "
            "got %s",
            cpex__ydescribe(map));
        return;
    }
    c->plugin = find_name(map);
    int first[P_COUNT] = {0};
    for (size_t i = 0; i + 1 < map->count; i += 2) {
        const cpex__ynode *k = map->kids[i], *v = map->kids[i + 1];
        if (!cpex__ybudget(&c->diag, k, NULL))
            return;
        const char *key = cpex__ykey_text(&c->diag, k, "of a plugin");
        if (!key)
            continue;
        int idx = cpex__ykey_index(key, plugin_keys, P_COUNT);
        if (idx < 0) {
            cpex__yreport_unknown(&c->diag, k, key, "key", key, plugin_keys, P_COUNT, "valid keys");
            continue;
        }
        if (cpex__yrepeated(&c->diag, k, first, idx, key))
            continue;
        const char *s;
        switch (idx) {
        case P_NAME: {
            s = cpex__ywant_string(&c->diag, v, key, true);
            if (!s)
                break;
            p->name = cpex__strdup(s);
            if (!p->name) {
                c->diag.nomem = true;
                break;
            }
            json_t *line = json_object_get(c->names, s);
            if (line) {
                cpex__cfg_report(c, v, key,
                                 "duplicate plugin name '%.200s' (first defined at line %d); "
                                 "plugin names must be unique",
                                 s, (int)json_integer_value(line));
            } else if (json_object_set_new(c->names, s, json_integer(p->pos.line)) != 0) {
                c->diag.nomem = true;
            }
            break;
        }
        case P_KIND:
            p->kind_pos = v->pos;
            s = cpex__ywant_string(&c->diag, v, key, true);
            if (s && !(p->kind = cpex__strdup(s)))
                c->diag.nomem = true;
            break;
        case P_DESCRIPTION:
        case P_AUTHOR:
        case P_VERSION: {
            char **slot = idx == P_DESCRIPTION ? &p->description
                          : idx == P_AUTHOR    ? &p->author
                                               : &p->version;
            s = cpex__ywant_string(&c->diag, v, key, false);
            if (s && !(*slot = cpex__strdup(s)))
                c->diag.nomem = true;
            break;
        }
        case P_HOOKS: check_hooks(c, p, v); break;
        case P_MODE: check_mode(c, p, v); break;
        case P_PRIORITY: check_priority(c, p, v); break;
        case P_ON_ERROR: check_on_error(c, p, v); break;
        case P_TIMEOUT:
            cpex__ywant_seconds(&c->diag, v, key, CPEX_TIMEOUT_MIN, CPEX_TIMEOUT_MAX, &p->timeout);
            break;
        case P_CAPABILITIES: check_capabilities(c, p, v); break;
        case P_TAGS: {
            size_t n = 0;
            char **tags = cpex__ywant_string_list(&c->diag, v, key, &n, "pii, audit");
            if (tags) {
                cpex_strv_free(p->tags);
                p->tags = tags;
                p->tag_count = n;
            }
            break;
        }
        case P_CONFIG:
            json_decref(p->config);
            p->config = cpex__yto_json(&c->diag, k, v, key);
            break;
        case P_STATE_NAMESPACE: {
            char why[200];
            s = cpex__ywant_string(&c->diag, v, key, true);
            if (s && !cpex__config_state_namespace(s, why, sizeof why))
                cpex__cfg_report(c, v, key, "%s", why);
            else if (s && !(p->state_namespace = cpex__strdup(s)))
                c->diag.nomem = true;
            break;
        }
        case P_SHA256: check_sha256(c, p, v); break;
        case P_CONDITIONS:
            p->conditions_pos = k->pos;
            if (!p->conditions && !(p->conditions = cpex__calloc(1, sizeof *p->conditions)))
                c->diag.nomem = true;
            else
                cpex__rcfg_conditions(&c->diag, c->cfg, p->conditions, v);
            break;
        case P_ISOLATION:
        case P_WORKERS:
        case P_SANDBOX: {
            json_t *j = cpex__yto_json(&c->diag, k, v, key);
            iso_report_ctx rc = {c, v};
            if (j && !cpex__isolation_key(&p->isolation, key, j, iso_report, &rc))
                c->diag.nomem = true;
            json_decref(j);
            break;
        }
        }
    }
    iso_report_ctx iso_rc = {c, map};
    cpex__isolation_finish(&p->isolation, iso_report, &iso_rc);
    if (!first[P_NAME])
        cpex__cfg_report(c, map, "name", "missing required key 'name'; add name: <a unique name>");
    if (!first[P_KIND])
        cpex__cfg_report(c, map, "kind",
                         "missing required key 'kind'; add kind: <factory kind> (e.g. lib:<path>)");
    /* Without hooks, an audit-mode plugin is an audit sink for every hook
     * (the manager checks that it registers a verdict handler). */
    if (!first[P_HOOKS] && p->mode != CPEX_MODE_AUDIT)
        cpex__cfg_report(c, map, "hooks",
                         "missing required key 'hooks'; list the hooks it serves, e.g. hooks: "
                         "[tool_pre_invoke] (only an audit sink, mode: audit, may leave it out)");
    else if (!first[P_HOOKS] && !p->hooks && !(p->hooks = empty_strv(c)))
        c->diag.nomem = true;
}

void cpex__cfg_plugins(cpex__cfg_ctx *c, const cpex__ynode *v)
{
    if (cpex__yis_null(v))
        return;
    if (v->type != CPEX__YN_SEQ) {
        cpex__cfg_report(c, v, "plugins",
                         "'plugins' must be a list of plugin entries (- name: ...), got %s",
                         cpex__ydescribe(v));
        return;
    }
    cpex__config *cfg = c->cfg;
    cfg->plugins = cpex__calloc(v->count ? v->count : 1, sizeof *cfg->plugins);
    if (!cfg->plugins) {
        c->diag.nomem = true;
        return;
    }
    for (size_t i = 0; i < v->count && !c->diag.nomem; i++) {
        if (!cpex__ybudget(&c->diag, v->kids[i], NULL))
            break;
        cpex__config_plugin *p = &cfg->plugins[cfg->plugin_count++];
        c->plugin = NULL;
        c->plugin_no = i + 1;
        check_plugin(c, v->kids[i], p);
        if (!p->capabilities)
            p->capabilities = empty_strv(c);
        if (!p->tags)
            p->tags = empty_strv(c);
        if (!p->config && !(p->config = json_null()))
            c->diag.nomem = true;
    }
    c->plugin = NULL;
    c->plugin_no = 0;
}
