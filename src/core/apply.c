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
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/apply.h"
#include "core/reload.h"
#include "core/config.h"
#include "core/routing.h"
#include "model/json_dump.h"
#include "util/alloc.h"
#include "util/text.h"


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
    char *buf; /* `local`, or the library's allocator once it outgrew it */
    size_t len, cap;
    bool failed; /* out of memory */
    char local[1024];
} fp_text;

/* Make room for `n` more bytes and the NUL; false when out of memory. */
static bool fp_grow(fp_text *t, size_t n)
{
    if (t->failed)
        return false;
    size_t cap = t->cap * 2;
    while (cap < t->len + n + 1)
        cap *= 2;
    char *b = cpex__malloc(cap);
    if (!b) {
        t->failed = true; /* the text is dropped at the end */
        return false;
    }
    memcpy(b, t->buf, t->len);
    if (t->buf != t->local)
        cpex__free(t->buf);
    t->buf = b;
    t->cap = cap;
    return true;
}

static inline void fp_put(fp_text *t, const char *s, size_t n)
{
    if (__builtin_expect(t->len + n + 1 > t->cap, 0) && !fp_grow(t, n))
        return;
    memcpy(t->buf + t->len, s, n);
    t->len += n;
    t->buf[t->len] = '\0';
}

static void fp_lit(fp_text *t, const char *s) { fp_put(t, s, strlen(s)); }

/* An integer in decimal, as printf's %d / %u / %llu / %zu write it. */
static void fp_int(fp_text *t, long long v)
{
    char d[CPEX__TEXT_DEC_MAX];
    fp_put(t, d, cpex__text_signed(d, v));
}

static void fp_uint(fp_text *t, unsigned long long u)
{
    char d[CPEX__TEXT_DEC_MAX];
    fp_put(t, d, cpex__text_dec(d, u, false, 0));
}

/* A double as %.17g writes it (whole numbers, the common case, without
 * printf: they print as their digits). */
static void fp_double(fp_text *t, double d)
{
    if (d == d && d > -1e15 && d < 1e15 && d == (double)(long long)d && !(d == 0 && signbit(d))) {
        fp_int(t, (long long)d);
        return;
    }
    char num[40];
    int n = snprintf(num, sizeof num, "%.17g", d);
    fp_put(t, num, n > 0 ? (size_t)n : 0);
}

static void fp_str(fp_text *t, const char *s)
{
    if (!s) {
        fp_put(t, "-;", 2);
        return;
    }
    size_t n = strlen(s);
    fp_uint(t, n);
    fp_put(t, ":", 1);
    fp_put(t, s, n);
    fp_put(t, ";", 1);
}

static void fp_strv(fp_text *t, char *const *v, bool canonical_hooks)
{
    size_t n = 0;
    while (v && v[n])
        n++;
    fp_put(t, "[", 1);
    fp_uint(t, n);
    fp_put(t, "]", 1);
    for (size_t i = 0; i < n; i++)
        fp_str(t, canonical_hooks ? cpex__hook_canonical(v[i]) : v[i]);
}

/* The isolation settings of an entry (config_isolation.h):
 * "iso:%u,%u,%d," paths "%llu,%.17g,%d,%u,%.17g,%u;". */
static void fp_isolation(fp_text *t, const cpex__isolation_cfg *i)
{
    fp_lit(t, "iso:");
    fp_uint(t, (unsigned)i->mode);
    fp_put(t, ",", 1);
    fp_uint(t, (unsigned)i->workers);
    fp_put(t, ",", 1);
    fp_int(t, (int)i->network);
    fp_put(t, ",", 1);
    fp_strv(t, i->read_paths, false);
    fp_strv(t, i->write_paths, false);
    fp_uint(t, (unsigned long long)i->memory_mb);
    fp_put(t, ",", 1);
    fp_double(t, i->cpu_seconds_per_call);
    fp_put(t, ",", 1);
    fp_int(t, (int)i->require);
    fp_put(t, ",", 1);
    fp_uint(t, (unsigned)i->max_crashes_per_minute);
    fp_put(t, ",", 1);
    fp_double(t, i->load_timeout);
    fp_put(t, ",", 1);
    fp_uint(t, (unsigned)i->open_files);
    fp_put(t, ";", 1);
}

char *cpex__mgr_fingerprint(cpex_manager *m, const cpex__config *cfg, const cpex__config_plugin *cp,
                            bool override)
{
    char artifact[CPEX__ARTIFACT_CAP];
    if (!cpex__mgr_identify(m, cfg, cp, artifact, sizeof artifact))
        return NULL; /* cannot tell: never kept */
    return cpex__mgr_fingerprint_of(m, cfg, cp, override, artifact);
}

char *cpex__mgr_fingerprint_of(cpex_manager *m, const cpex__config *cfg,
                               const cpex__config_plugin *cp, bool override, const char *artifact)
{
    char *config =
        cp->config ? cpex__json_dump(cp->config, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY)
                   : NULL;
    if (cp->config && !config)
        return NULL;
    fp_text t;
    t.buf = t.local;
    t.len = 0;
    t.cap = sizeof t.local;
    t.failed = false;
    t.local[0] = '\0';
    fp_str(&t, cp->name);
    fp_str(&t, cp->kind);
    fp_str(&t, cp->description);
    fp_strv(&t, cp->hooks, true);
    /* "%d,%d,%d,%.17g;" */
    fp_int(&t, (int)cp->mode);
    fp_put(&t, ",", 1);
    fp_int(&t, (int)cp->priority);
    fp_put(&t, ",", 1);
    fp_int(&t, (int)effective_on_error(m, cp));
    fp_put(&t, ",", 1);
    fp_double(&t, effective_timeout(m, cfg, cp));
    fp_put(&t, ";", 1);
    fp_strv(&t, cp->capabilities, false);
    fp_str(&t, config);
    fp_str(&t, cfg->base_dir);
    fp_str(&t, artifact);
    /* What else makes the instance: its isolation, its library's pin, where
     * its state lives, and who may replace its files. */
    fp_isolation(&t, &cp->isolation);
    fp_str(&t, cp->sha256);
    fp_str(&t, cp->state_namespace);
    fp_int(&t, (int)cfg->strict_permissions);
    fp_put(&t, ";", 1);
    if (override)
        fp_lit(&t, "override;");
    cpex__free(config);
    char *fp = t.failed ? NULL : cpex__malloc(t.len + 1);
    if (fp)
        memcpy(fp, t.buf, t.len + 1);
    if (t.buf != t.local)
        cpex__free(t.buf);
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
