/*
 * apply.c — what a load and a reload share once a configuration is
 * parsed: each entry's fingerprint (what a reload compares to keep a
 * plugin), the routing policy with its override instances, and
 * initializing what a change created.
 *
 * An override (`name: {config: {...}}` in a route or group) is a plugin
 * instance of its own, created through the plugin's factory with the
 * plugin's entry and the override's config merged into its config (one
 * level: each top-level key of the override replaces the plugin's). It is
 * made once, when the configuration is applied, and belongs to the policy
 * (routing.h); a reload keeps it when its merged entry is unchanged.
 */
#include <stdio.h>
#include <string.h>

#include "core/apply.h"
#include "core/reload.h"
#include "core/config.h"
#include "core/routing.h"
#include "model/json_dump.h"
#include "util/alloc.h"

/* Room for a factory's identify text. */
#define ARTIFACT_CAP 512

/* The effective values, as cpex__mgr_create_configured computes them. */
static cpex_on_error effective_on_error(const cpex_manager *m, const cpex__config_plugin *cp)
{
    return cp->has_on_error ? cp->on_error : m->opts.default_on_error;
}

static double effective_timeout(const cpex_manager *m, const cpex__config *cfg,
                                const cpex__config_plugin *cp)
{
    return cp->timeout > 0           ? cp->timeout
           : cfg->has_plugin_timeout ? cfg->plugin_timeout
                                     : m->opts.default_timeout;
}

/*
 * The fingerprint is one canonical text: each field as `<length>:<bytes>`
 * (so no value can pass for two), the config as compact JSON with sorted
 * keys. Equal texts, equal entries. It is made for every plugin of every
 * load (a later reload compares it), so it is built in one buffer, not as
 * a JSON object of objects (that cost ~36,000 instructions a plugin).
 */
typedef struct fp_text {
    FILE *f;
    char *buf;
    size_t len;
} fp_text;

static void fp_str(fp_text *t, const char *s)
{
    if (!s)
        fputs("-;", t->f);
    else
        fprintf(t->f, "%zu:%s;", strlen(s), s);
}

static void fp_strv(fp_text *t, char *const *v, bool canonical_hooks)
{
    size_t n = 0;
    while (v && v[n])
        n++;
    fprintf(t->f, "[%zu]", n);
    for (size_t i = 0; i < n; i++)
        fp_str(t, canonical_hooks ? cpex__hook_canonical(v[i]) : v[i]);
}

/* The isolation settings of an entry (config_isolation.h). */
static void fp_isolation(fp_text *t, const cpex__isolation_cfg *i)
{
    fprintf(t->f, "iso:%u,%u,%d,", (unsigned)i->mode, (unsigned)i->workers, (int)i->network);
    fp_strv(t, i->read_paths, false);
    fp_strv(t, i->write_paths, false);
    fprintf(t->f, "%llu,%.17g,%d,%u,%.17g,%u;", (unsigned long long)i->memory_mb,
            i->cpu_seconds_per_call, (int)i->require, (unsigned)i->max_crashes_per_minute,
            i->load_timeout, (unsigned)i->open_files);
}

char *cpex__mgr_fingerprint(cpex_manager *m, const cpex__config *cfg, const cpex__config_plugin *cp,
                            bool override)
{
    char artifact[ARTIFACT_CAP];
    if (!cpex__mgr_identify(m, cfg, cp, artifact, sizeof artifact))
        return NULL; /* cannot tell: never kept */
    char *config =
        cp->config ? cpex__json_dump(cp->config, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY)
                   : NULL;
    if (cp->config && !config)
        return NULL;
    fp_text t = {NULL, NULL, 0};
    t.f = open_memstream(&t.buf, &t.len);
    if (!t.f) {
        cpex__free(config);
        return NULL;
    }
    fp_str(&t, cp->name);
    fp_str(&t, cp->kind);
    fp_str(&t, cp->description);
    fp_strv(&t, cp->hooks, true);
    fprintf(t.f, "%d,%d,%d,%.17g;", (int)cp->mode, (int)cp->priority,
            (int)effective_on_error(m, cp), effective_timeout(m, cfg, cp));
    fp_strv(&t, cp->capabilities, false);
    fp_str(&t, config);
    fp_str(&t, cfg->base_dir);
    fp_str(&t, artifact);
    /* What else makes the instance: its isolation, its library's pin, where
     * its state lives, and who may replace its files. */
    fp_isolation(&t, &cp->isolation);
    fp_str(&t, cp->sha256);
    fp_str(&t, cp->state_namespace);
    fprintf(t.f, "%d;%s", (int)cfg->strict_permissions, override ? "override;" : "");
    bool failed = ferror(t.f) != 0;
    fclose(t.f); /* t.buf and t.len are final now */
    cpex__free(config);
    if (failed || !t.buf) {
        free(t.buf); /* open_memstream's: libc's malloc */
        return NULL;
    }
    char *fp = cpex__strdup(t.buf); /* the library's allocator frees it */
    free(t.buf);
    return fp;
}

/* ------------------------------------------------------------------ */
/* Overrides                                                           */
/* ------------------------------------------------------------------ */

/* The plugin's config with the override's keys (one level). NULL when they
 * cannot be merged (reported) or on OOM. */
static json_t *merge_config(const json_t *base, const json_t *over, const cpex__where *w,
                            cpex_error *err)
{
    if (!base || json_is_null(base))
        return json_deep_copy(over);
    if (!json_is_object(base) || !json_is_object(over)) {
        cpex__error_add(
            err, CPEX_E_CONFIG, w,
            "cannot apply this override: the plugin's config is %s and the "
            "override's is %s; an override merges the keys of a mapping into the "
            "plugin's mapping (CPEX drops such an override silently; libcpex refuses it)",
            cpex__json_kind(base), cpex__json_kind(over));
        return NULL;
    }
    json_t *merged = json_deep_copy(base);
    json_t *over_copy = json_deep_copy(over);
    if (!merged || !over_copy || json_object_update(merged, over_copy) != 0) {
        json_decref(merged);
        json_decref(over_copy);
        cpex__error_add(err, CPEX_E_NOMEM, w, "out of memory");
        return NULL;
    }
    json_decref(over_copy);
    return merged;
}

static const cpex__config_plugin *entry_of(const cpex__config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->plugin_count; i++)
        if (cfg->plugins[i].name && strcmp(cfg->plugins[i].name, name) == 0)
            return &cfg->plugins[i];
    return NULL;
}

/* An old instance with this fingerprint, not yet taken and still usable. */
static cpex__plugin *reusable(cpex__apply *a, const char *fp)
{
    if (!a->old || !fp)
        return NULL;
    for (size_t i = 0; i < a->old->instance_count; i++) {
        cpex__plugin *p = a->old->instances[i];
        if (a->taken[i] || !p->fingerprint || strcmp(p->fingerprint, fp) != 0 ||
            !cpex__mgr_keepable(a->m, p))
            continue;
        a->taken[i] = true;
        return cpex__plugin_ref(p);
    }
    return NULL;
}

/* cpex__override_maker for the policy builder. */
static cpex__plugin *make_override(void *ctx, const char *plugin, const json_t *config,
                                   const cpex__where *where, cpex_error *err)
{
    cpex__apply *a = ctx;
    const cpex__config_plugin *cp = entry_of(a->cfg, plugin);
    if (!cp) {
        cpex__error_add(err, CPEX_E_CONFIG, where,
                        "an override of plugin '%s' needs the plugin's entry in this "
                        "configuration: an override is a new instance made from the entry's "
                        "kind and config, and '%s' was registered from code or by another load",
                        plugin, plugin);
        return NULL;
    }
    json_t *merged = merge_config(cp->config, config, where, err);
    if (!merged)
        return NULL;
    cpex__config_plugin copy = *cp;
    copy.config = merged;
    copy.pos.line = where->line; /* messages point at the override */
    copy.pos.column = where->column;
    char *fp = cpex__mgr_fingerprint(a->m, a->cfg, &copy, true);
    cpex__plugin *p = reusable(a, fp);
    if (p) {
        cpex__free(fp);
        json_decref(merged);
        return p;
    }
    cpex_error local = CPEX_ERROR_INIT;
    if (cpex__mgr_create_configured(a->m, a->cfg, &copy, a->bindings, &p, &local) != CPEX_OK) {
        cpex_error ctx_err = CPEX_ERROR_INIT;
        cpex__error_add(&ctx_err, local.code, where,
                        "cannot build the instance this override asks for (no fall back to the "
                        "plugin's own instance):");
        cpex__error_move(err, &ctx_err);
        cpex__error_move(err, &local);
        cpex__free(fp);
        json_decref(merged);
        return NULL;
    }
    json_decref(merged);
    cpex__free(p->fingerprint);
    p->fingerprint = fp;
    p->from_config = false; /* the policy's, not a registered plugin */
    cpex__plugin **n = cpex__realloc(a->made, (a->made_count + 1) * sizeof *n);
    if (!n) {
        cpex__plugin_unref(p);
        cpex__error_add(err, CPEX_E_NOMEM, where, "out of memory");
        return NULL;
    }
    a->made = n;
    a->made[a->made_count++] = p; /* borrowed: the policy holds the reference */
    return p;
}

/* ------------------------------------------------------------------ */
/* Artifact identities of schemes                                       */
/* ------------------------------------------------------------------ */

cpex_status cpex__register_scheme_identify(cpex_manager *m, const char *scheme,
                                           cpex__identify_fn fn)
{
    if (!m || !m->reload || !scheme)
        return CPEX_E_INVALID;
    cpex__reload_state *r = m->reload;
    cpex__mgr_lock(m);
    cpex_status st = CPEX_OK;
    size_t i = 0;
    while (i < r->identify_count && strcmp(r->identify[i].scheme, scheme) != 0)
        i++;
    if (i == r->identify_count) {
        char *copy = cpex__strdup(scheme);
        cpex__identify_slot *n =
            copy ? cpex__realloc(r->identify, (r->identify_count + 1) * sizeof *n) : NULL;
        if (!n) {
            cpex__free(copy);
            st = CPEX_E_NOMEM;
        } else {
            r->identify = n;
            n[r->identify_count++].scheme = copy;
        }
    }
    if (st == CPEX_OK)
        r->identify[i].fn = fn;
    cpex__mgr_unlock(m);
    return st;
}

cpex__identify_fn cpex__mgr_find_identify(const cpex_manager *m, const char *kind,
                                          const cpex_factory *f)
{
    const char *colon = strchr(kind, ':');
    if (!colon || !m->reload)
        return NULL;
    /* Only a kind served by its scheme's factory (not an exact kind). */
    size_t len = (size_t)(colon - kind);
    for (size_t i = 0; i < m->scheme_count; i++)
        if (&m->schemes[i].factory == f && strlen(m->schemes[i].key) == len)
            for (size_t k = 0; k < m->reload->identify_count; k++)
                if (strcmp(m->reload->identify[k].scheme, m->schemes[i].key) == 0)
                    return m->reload->identify[k].fn;
    return NULL;
}

/* ------------------------------------------------------------------ */
/* Applying                                                            */
/* ------------------------------------------------------------------ */

bool cpex__mgr_keepable(const cpex_manager *m, cpex__plugin *p)
{
    int st = atomic_load(&p->state);
    /* A plugin whose initialize failed is made again (a reload is a retry). */
    return st == CPEX_STATE_INITIALIZED || (st == CPEX_STATE_CREATED && !m->init_called);
}

void cpex__apply_init(cpex__apply *a, cpex_manager *m, cpex__config *cfg,
                      cpex__binding_list *bindings, const cpex__policy *old)
{
    memset(a, 0, sizeof *a);
    a->m = m;
    a->cfg = cfg;
    a->bindings = bindings;
    a->old = old;
}

void cpex__apply_cleanup(cpex__apply *a)
{
    cpex__free(a->taken);
    cpex__free(a->made);
    a->taken = NULL;
    a->made = NULL;
    a->made_count = 0;
}

cpex__policy *cpex__mgr_policy_for(cpex__apply *a, cpex__plugin *const *plugins, size_t count,
                                   cpex_error *err)
{
    cpex__where w = {a->cfg->source, 0, 0, NULL, NULL};
    char **names = cpex__calloc(count ? count : 1, sizeof *names);
    if (!names || (a->old && a->old->instance_count &&
                   !(a->taken = cpex__calloc(a->old->instance_count, sizeof *a->taken)))) {
        cpex__free(names);
        cpex__error_add(err, CPEX_E_NOMEM, &w, "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < count; i++)
        names[i] = plugins[i]->name;
    cpex__policy *p = cpex__policy_build(a->cfg, names, count, make_override, a, err);
    cpex__free(names);
    if (!p)
        a->made_count = 0; /* the builder released what it made */
    return p;
}

cpex_status cpex__mgr_init_made(cpex__apply *a, cpex_error *err)
{
    cpex_status st = CPEX_OK;
    for (size_t i = 0; i < a->made_count; i++) {
        cpex__where w = {a->cfg->source, 0, 0, a->made[i]->name, "config (route override)"};
        if (cpex__mgr_init_plugin(a->m, a->made[i], &w, err) != CPEX_OK)
            st = CPEX_E_PLUGIN;
    }
    return st;
}
