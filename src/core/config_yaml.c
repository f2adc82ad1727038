/*
 * config_yaml.c — check the YAML configuration (see config.h): read the
 * file, build the tree, check the top level, and free what was read.
 *
 * The text becomes a tree with yaml_tree.c; scalars are resolved and
 * values converted to JSON with yaml_scalar.c; typed values (strings,
 * booleans, seconds, lists, known keys) are read with yaml_typed.c. The
 * sections are checked key by key: plugin_settings by config_settings.c,
 * each entry of plugins by config_plugins.c, the routing sections by
 * config_routes.c, and every problem is reported through config_report.c,
 * which implements the tree's cpex__ydiag. Each problem carries the
 * source, line and column, the plugin and the key, and checking goes on
 * after an error so that one run shows them all.
 *
 * Limits, besides the tree's (yaml_tree.h):
 *   - at most CFG_MAX_ERRORS items are reported, then one "too many"
 *     (config_report.c);
 *   - a file larger than CFG_MAX_FILE_SIZE is refused unread.
 */
#include "core/config_check.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libgen.h>

#include "core/routing_config.h"
#include "core/yaml_scalar.h"
#include "core/yaml_tree.h"
#include "core/yaml_typed.h"
#include "util/alloc.h"
#include "util/errors.h"
#include "util/strv.h"

#define CFG_MAX_FILE_SIZE (64u * 1024u * 1024u)

/* ------------------------------------------------------------------ */
/* Top level                                                           */
/* ------------------------------------------------------------------ */

enum {
    T_SETTINGS,
    T_PLUGINS,
    T_GLOBAL,
    T_ROUTES,
    T_PLUGIN_DIRS,
    T_GROUPS,
    T_AUTHENTICATION,
    T_APL,
    T_COUNT
};
static const char *const top_keys[T_COUNT] = {
    "plugin_settings", "plugins", "global",         "routes",
    "plugin_dirs",     "groups",  "authentication", "apl",
};

static void check_top(cpex__cfg_ctx *c, const cpex__ynode *root)
{
    if (!root || cpex__yis_null(root)) {
        cpex__cfg_report(c, NULL, NULL,
                         "the configuration is empty; expected a mapping with at least 'plugins:'");
        return;
    }
    if (root->type != CPEX__YN_MAP) {
        cpex__cfg_report(
            c, root, NULL,
            "the top level must be a mapping (plugin_settings, plugins, global, routes), "
            "got %s",
            cpex__ydescribe(root));
        return;
    }
    int first[T_COUNT] = {0};
    for (size_t i = 0; i + 1 < root->count; i += 2) {
        const cpex__ynode *k = root->kids[i], *v = root->kids[i + 1];
        if (!cpex__ybudget(&c->diag, k, NULL))
            return;
        const char *key = cpex__ykey_text(&c->diag, k, "at the top level");
        if (!key)
            continue;
        int idx = cpex__ykey_index(key, top_keys, T_COUNT);
        if (idx < 0) {
            cpex__yreport_unknown(&c->diag, k, key, "top-level key", key, top_keys, T_COUNT,
                                  "valid keys");
            continue;
        }
        if (cpex__yrepeated(&c->diag, k, first, idx, key))
            continue;
        switch (idx) {
        case T_SETTINGS: cpex__cfg_settings(c, v); break;
        case T_PLUGINS: cpex__cfg_plugins(c, v); break;
        case T_GLOBAL:
            c->cfg->global = cpex__yto_json(&c->diag, k, v, key);
            cpex__rcfg_global(&c->diag, c->cfg, v);
            break;
        case T_ROUTES:
            c->cfg->routes = cpex__yto_json(&c->diag, k, v, key);
            cpex__rcfg_routes(&c->diag, c->cfg, v);
            break;
        case T_GROUPS: cpex__rcfg_groups(&c->diag, c->cfg, v); break;
        case T_PLUGIN_DIRS:
            cpex__cfg_warn(
                c, k,
                "'plugin_dirs' is accepted for CPEX compatibility but not implemented by "
                "libcpex; it has no effect (name libraries in 'kind' instead)");
            break;
        case T_AUTHENTICATION:
        case T_APL:
            /* CPEX (main branch) knows these; we accept them so a CPEX file
             * loads, and say plainly that they do nothing here yet. */
            cpex__cfg_warn(
                c, k, "'%s' is a CPEX key that libcpex does not implement yet; it is ignored", key);
            break;
        }
    }
}

/* ------------------------------------------------------------------ */
/* API                                                                 */
/* ------------------------------------------------------------------ */

void cpex__config_free(cpex__config *config)
{
    if (!config)
        return;
    for (size_t i = 0; i < config->plugin_count; i++) {
        cpex__config_plugin *p = &config->plugins[i];
        cpex__free(p->name);
        cpex__free(p->kind);
        cpex__free(p->description);
        cpex__free(p->author);
        cpex__free(p->version);
        cpex_strv_free(p->hooks);
        cpex_strv_free(p->capabilities);
        cpex_strv_free(p->tags);
        json_decref(p->config);
        cpex__conds_free(p->conditions);
        cpex__free(p->conditions);
        cpex__free(p->state_namespace);
        cpex__isolation_cleanup(&p->isolation);
        cpex__free(p->sha256);
    }
    cpex__config_state_cleanup(&config->state);
    cpex__free(config->plugins);
    json_decref(config->global);
    json_decref(config->routes);
    cpex__rcfg_free(config->routing);
    cpex_strv_free(config->warnings);
    cpex__free(config->source);
    cpex__free(config->base_dir);
    cpex__free(config);
}

cpex_status cpex__config_parse(const char *yaml, size_t len, const char *source,
                               const char *base_dir, cpex__config **out, cpex_error *err)
{
    if (!out)
        return cpex__error_add(err, CPEX_E_INVALID, NULL, "cpex__config_parse: out is NULL");
    *out = NULL;
    if (!yaml && len)
        return cpex__error_add(err, CPEX_E_INVALID, NULL, "cpex__config_parse: yaml is NULL");
    if (!yaml)
        yaml = "";
    cpex__cfg_ctx c;
    memset(&c, 0, sizeof c);
    c.diag.report = cpex__cfg_report_diag;
    c.source = source ? source : "<string>";
    c.err = err;
    c.cfg = cpex__calloc(1, sizeof *c.cfg);
    c.names = json_object();
    if (c.cfg) {
        c.cfg->execution_records = c.cfg->metrics = c.cfg->audit_overflow = -1;
        c.cfg->audit_max_wait = -1;
        c.cfg->source = cpex__strdup(c.source);
        c.cfg->base_dir = base_dir ? cpex__strdup(base_dir) : NULL;
        c.cfg->warnings = cpex__calloc(1, sizeof *c.cfg->warnings);
    }
    if (!c.cfg || !c.names || !c.cfg->source || (base_dir && !c.cfg->base_dir) ||
        !c.cfg->warnings) {
        c.diag.nomem = true;
    } else {
        cpex__ydoc doc;
        memset(&doc, 0, sizeof doc);
        if (cpex__ytree_build(&c.diag, yaml, len, &doc) && !c.diag.nomem) {
            check_top(&c, doc.root);
            if (!c.diag.nomem)
                cpex__rcfg_finish(&c.diag, c.cfg);
        }
        cpex__ydoc_free(&doc);
    }
    json_decref(c.names);
    if (c.diag.nomem) {
        cpex__config_free(c.cfg);
        cpex__where w = {c.source, 0, 0, NULL, NULL};
        return cpex__error_add(err, CPEX_E_NOMEM, &w,
                               "out of memory while reading the configuration");
    }
    if (c.errors) {
        cpex__config_free(c.cfg);
        return CPEX_E_CONFIG;
    }
    *out = c.cfg;
    return CPEX_OK;
}

/* The absolute directory of `path` (its directory as given if that fails). */
char *cpex__config_dir_of(const char *path)
{
    char *copy = cpex__strdup(path);
    if (!copy)
        return NULL;
    const char *dir = dirname(copy);
    char *real = realpath(dir, NULL);
    char *result = cpex__strdup(real ? real : dir);
    free(real); /* from libc */
    cpex__free(copy);
    return result;
}

cpex_status cpex__config_parse_file(const char *path, cpex__config **out, cpex_error *err)
{
    if (!out)
        return cpex__error_add(err, CPEX_E_INVALID, NULL, "cpex__config_parse_file: out is NULL");
    *out = NULL;
    if (!path || !*path)
        return cpex__error_add(err, CPEX_E_INVALID, NULL,
                               "cpex__config_parse_file: no configuration file named");
    cpex__where w = {path, 0, 0, NULL, NULL};
    FILE *f = fopen(path, "rb");
    if (!f)
        return cpex__error_add(err, CPEX_E_IO, &w, "cannot read the configuration file: %s",
                               strerror(errno));
    char *buf = NULL;
    size_t len = 0, cap = 0;
    int read_errno = 0;
    bool too_big = false, nomem = false;
    for (;;) {
        if (len == cap) {
            if (cap >= CFG_MAX_FILE_SIZE) {
                too_big = true;
                break;
            }
            size_t ncap = cap ? cap * 2 : 4096;
            char *nb = cpex__realloc(buf, ncap + 1);
            if (!nb) {
                nomem = true;
                break;
            }
            buf = nb;
            cap = ncap;
        }
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0) {
            if (ferror(f))
                read_errno = errno ? errno : EIO;
            break;
        }
    }
    fclose(f);
    cpex_status st;
    if (nomem) {
        st =
            cpex__error_add(err, CPEX_E_NOMEM, &w, "out of memory while reading the configuration");
    } else if (too_big) {
        st = cpex__error_add(err, CPEX_E_IO, &w,
                             "the configuration file is larger than %u MiB; is it the right file?",
                             CFG_MAX_FILE_SIZE >> 20);
    } else if (read_errno) {
        st = cpex__error_add(err, CPEX_E_IO, &w, "cannot read the configuration file: %s",
                             strerror(read_errno));
    } else {
        buf[len] = '\0';
        char *dir = cpex__config_dir_of(path);
        if (!dir)
            st = cpex__error_add(err, CPEX_E_NOMEM, &w,
                                 "out of memory while reading the configuration");
        else
            st = cpex__config_parse(buf, len, path, dir, out, err);
        cpex__free(dir);
    }
    cpex__free(buf);
    return st;
}
