/*
 * config_yaml.c — check the YAML configuration (see config.h): the top
 * level, plugin_settings and each entry of plugins, key by key.
 *
 * The text becomes a tree with yaml_tree.c; scalars are resolved and
 * values converted to JSON with yaml_scalar.c; typed values (strings,
 * booleans, seconds, lists, known keys) are read with yaml_typed.c. This
 * file decides what the configuration must hold, and is where every
 * problem is reported: it implements the tree's cpex__ydiag. Each problem
 * carries the source, line and column, the plugin and the key, and
 * checking goes on after an error so that one run shows them all.
 *
 * Limits, besides the tree's (yaml_tree.h):
 *   - at most CFG_MAX_ERRORS items are reported, then one "too many";
 *   - a file larger than CFG_MAX_FILE_SIZE is refused unread.
 */
#include "core/config.h"

#include <errno.h>
#include <stdarg.h>
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
#include "util/sha256.h"
#include "util/strv.h"

#define CFG_MAX_ERRORS 100
#define CFG_MAX_FILE_SIZE (64u * 1024u * 1024u)

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* ------------------------------------------------------------------ */
/* Check state and reporting                                           */
/* ------------------------------------------------------------------ */

typedef struct ctx {
    cpex__ydiag diag; /* first member: report_diag turns it back into the ctx */
    const char *source;
    cpex_error *err;
    cpex__config *cfg;
    size_t errors;      /* problems found (reported or not) */
    bool muted;         /* CFG_MAX_ERRORS reached */
    const char *plugin; /* name of the plugin being checked, or NULL */
    size_t plugin_no;   /* 1-based entry number of that plugin; 0 outside plugins */
    json_t *names;      /* plugin name -> line of its first definition */
} ctx;

/* Report a configuration problem at `pos`, naming the current plugin. */
static void report_pos(ctx *c, cpex__pos pos, const char *key, const char *fmt, va_list ap)
{
    c->errors++;
    if (c->muted)
        return;
    if (c->errors > CFG_MAX_ERRORS) {
        c->muted = true;
        cpex__where w = {c->source, 0, 0, NULL, NULL};
        cpex__error_add(c->err, CPEX_E_CONFIG, &w,
                        "too many errors; only the first %d are shown, fix those first",
                        CFG_MAX_ERRORS);
        return;
    }
    char body[2048];
    int off = 0;
    if (!c->plugin && c->plugin_no > 0)
        off = snprintf(body, sizeof body, "plugin #%zu: ", c->plugin_no);
    if (off < 0)
        off = 0;
    vsnprintf(body + off, sizeof body - (size_t)off, fmt, ap);
    cpex__where w = {c->source, pos.line, pos.column, c->plugin, key};
    cpex__error_add(c->err, CPEX_E_CONFIG, &w, "%s", body);
}

static void report(ctx *c, const cpex__ynode *at, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void report(ctx *c, const cpex__ynode *at, const char *key, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    report_pos(c, cpex__ynode_pos(at), key, fmt, ap);
    va_end(ap);
}

/* The tree's cpex__ydiag: the YAML files report through here. */
static void report_diag(cpex__ydiag *diag, cpex__pos pos, const char *key, const char *fmt,
                        va_list ap)
{
    report_pos((ctx *)(void *)diag, pos, key, fmt, ap);
}

/* Add a warning "<file>:<line>:<col>: [plugin '<p>': ]<text>" to the config. */
static void warn_v(ctx *c, const cpex__ynode *at, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));
static void warn(ctx *c, const cpex__ynode *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void warn(ctx *c, const cpex__ynode *at, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    warn_v(c, at, fmt, ap);
    va_end(ap);
}

/* The routing files' warnings (routing_config.h): `diag` is the ctx's first member. */
void cpex__config_warn(cpex__ydiag *diag, const cpex__ynode *at, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    warn_v((ctx *)(void *)diag, at, fmt, ap);
    va_end(ap);
}

static void warn_v(ctx *c, const cpex__ynode *at, const char *fmt, va_list ap)
{
    char body[1024];
    vsnprintf(body, sizeof body, fmt, ap);
    cpex__pos p = cpex__ynode_pos(at);
    char who[300] = "";
    if (c->plugin)
        snprintf(who, sizeof who, "plugin '%.256s': ", c->plugin);
    else if (c->plugin_no > 0)
        snprintf(who, sizeof who, "plugin #%zu: ", c->plugin_no);
    char *msg = p.line > 0
                    ? cpex__asprintf("%s:%d:%d: %s%s", c->source, p.line, p.column, who, body)
                    : cpex__asprintf("%s: %s%s", c->source, who, body);
    cpex__config *cfg = c->cfg;
    char **w = msg ? cpex__realloc(cfg->warnings, (cfg->warning_count + 2) * sizeof *w) : NULL;
    if (!w) {
        cpex__free(msg);
        c->diag.nomem = true;
        return;
    }
    w[cfg->warning_count++] = msg;
    w[cfg->warning_count] = NULL;
    cfg->warnings = w;
}

static char **empty_strv(ctx *c)
{
    char **v = cpex__strv_empty();
    if (!v)
        c->diag.nomem = true;
    return v;
}

/* ------------------------------------------------------------------ */
/* plugin_settings                                                     */
/* ------------------------------------------------------------------ */

enum {
    S_PLUGIN_TIMEOUT,
    S_SHORT_CIRCUIT,
    S_UNKNOWN_HOOK,
    S_STRICT_PERMISSIONS,
    S_ROUTING_ENABLED,
    S_PARALLEL_WITHIN_BAND,
    S_FAIL_ON_PLUGIN_ERROR,
    S_ROUTE_CACHE_MAX,
    S_CAPTURE_TIMINGS,
    S_STATE,
    S_EXECUTION_RECORDS,
    S_METRICS,
    S_AUDIT_QUEUE_SIZE,
    S_AUDIT_OVERFLOW,
    S_AUDIT_MAX_WAIT,
    S_COUNT
};
static const char *const settings_keys[S_COUNT] = {
    "plugin_timeout",       "short_circuit_on_deny",
    "unknown_hook",         "strict_permissions",
    "routing_enabled",      "parallel_execution_within_band",
    "fail_on_plugin_error", "route_cache_max_entries",
    "capture_timings",      "state",
    "execution_records",    "metrics",
    "audit_queue_size",     "audit_overflow",
    "audit_max_wait",
};

static void report_va(void *vc, cpex__pos pos, const char *key, const char *fmt, va_list ap)
{
    report_pos(vc, pos, key, fmt, ap);
}

/* plugin_settings.state: the keys with positions and JSON values go to config_state.c. */
static void check_state(ctx *c, const cpex__ynode *k, const cpex__ynode *v)
{
    if (v->type != CPEX__YN_MAP) {
        report(c, v, "plugin_settings.state",
               "'plugin_settings.state' must be a mapping, e.g. { backend: memory } or { "
               "backend: redis, url: \"redis://127.0.0.1:6379/0\" }; got %s",
               cpex__ydescribe(v));
        return;
    }
    cpex__config_item items[16];
    json_t *values[16];
    size_t n = 0;
    for (size_t i = 0; i + 1 < v->count; i += 2) {
        const cpex__ynode *kk = v->kids[i], *vv = v->kids[i + 1];
        const char *key = cpex__ykey_text(&c->diag, kk, "of 'plugin_settings.state'");
        if (!key)
            continue;
        if (n == 16) {
            report(c, kk, "plugin_settings.state", "too many keys in 'plugin_settings.state'");
            break;
        }
        if (!(values[n] = cpex__yto_json(&c->diag, kk, vv, "plugin_settings.state")))
            continue;
        items[n] = (cpex__config_item){key, cpex__ynode_pos(kk), cpex__ynode_pos(vv), values[n]};
        n++;
    }
    cpex__config_state_cleanup(&c->cfg->state);
    c->cfg->has_state = true;
    c->cfg->state_pos = cpex__ynode_pos(k);
    if (!cpex__config_state(items, n, cpex__ynode_pos(k), report_va, c, &c->cfg->state))
        c->diag.nomem = true;
    for (size_t i = 0; i < n; i++)
        json_decref(values[i]);
}

/* plugin_settings.unknown_hook: allow or deny. */
static void check_unknown_hook(ctx *c, const cpex__ynode *v)
{
    static const char *const valid[] = {"allow", "deny"};
    const char *key = "plugin_settings.unknown_hook";
    if (v->type != CPEX__YN_SCALAR || cpex__yis_null(v)) {
        report(c, v, key, "'%s' must be allow or deny; got %s", key, cpex__ydescribe(v));
        return;
    }
    int idx = strlen(v->text) == v->len ? cpex__ykey_index(v->text, valid, COUNT(valid)) : -1;
    if (idx < 0) {
        cpex__yreport_unknown(&c->diag, v, key, "unknown_hook value", v->text, valid, COUNT(valid),
                              "valid values");
        return;
    }
    c->cfg->unknown_hook_deny = idx == 1;
}

/* plugin_settings.audit_queue_size: 1 .. 1048576 verdicts. */
static void check_queue_size(ctx *c, const cpex__ynode *v)
{
    cpex__yval r = cpex__yresolve(v);
    if (v->type != CPEX__YN_SCALAR || r.kind != CPEX__YV_INT || r.bad || r.i < 1 || r.i > 1048576) {
        report(c, v, "plugin_settings",
               "'plugin_settings.audit_queue_size' must be a whole number of verdicts from 1 to "
               "1048576, got %s%s",
               cpex__ydescribe(v), cpex__yunquote_hint(v, CPEX__YV_INT));
        return;
    }
    c->cfg->audit_queue_size = r.i;
}

/* plugin_settings.audit_overflow: block | drop. */
static void check_overflow(ctx *c, const cpex__ynode *v)
{
    const char *s = cpex__ywant_string(&c->diag, v, "plugin_settings.audit_overflow", true);
    if (!s)
        return;
    if (strcmp(s, "block") == 0)
        c->cfg->audit_overflow = CPEX_AUDIT_BLOCK;
    else if (strcmp(s, "drop") == 0)
        c->cfg->audit_overflow = CPEX_AUDIT_DROP;
    else
        report(c, v, "plugin_settings",
               "'plugin_settings.audit_overflow' must be block (wait for room, then drop and "
               "count) or drop (drop at once and count), got '%.64s'",
               s);
}

static void check_settings(ctx *c, const cpex__ynode *v)
{
    if (cpex__yis_null(v))
        return;
    if (v->type != CPEX__YN_MAP) {
        report(c, v, "plugin_settings", "'plugin_settings' must be a mapping, got %s",
               cpex__ydescribe(v));
        return;
    }
    int first[S_COUNT] = {0};
    cpex__config *cfg = c->cfg;
    for (size_t i = 0; i + 1 < v->count; i += 2) {
        const cpex__ynode *k = v->kids[i], *val = v->kids[i + 1];
        if (!cpex__ybudget(&c->diag, k, NULL))
            return;
        const char *key = cpex__ykey_text(&c->diag, k, "of 'plugin_settings'");
        if (!key)
            continue;
        int idx = cpex__ykey_index(key, settings_keys, S_COUNT);
        if (idx < 0) {
            cpex__yreport_unknown(&c->diag, k, key, "plugin_settings key", key, settings_keys,
                                  S_COUNT, "valid keys");
            continue;
        }
        if (cpex__yrepeated(&c->diag, k, first, idx, key))
            continue;
        switch (idx) {
        case S_PLUGIN_TIMEOUT:
            if (cpex__ywant_seconds(&c->diag, val, "plugin_settings.plugin_timeout",
                                    CPEX_TIMEOUT_MIN, CPEX_TIMEOUT_MAX, &cfg->plugin_timeout))
                cfg->has_plugin_timeout = true;
            break;
        case S_SHORT_CIRCUIT:
            if (cpex__ywant_bool(&c->diag, val, "plugin_settings.short_circuit_on_deny",
                                 &cfg->short_circuit_on_deny))
                cfg->has_short_circuit = true;
            break;
        case S_ROUTING_ENABLED:
        case S_ROUTE_CACHE_MAX:
            cpex__rcfg_setting(&c->diag, cfg, idx == S_ROUTING_ENABLED ? 0 : 1, val);
            break;
        case S_STATE: check_state(c, k, val); break;
        case S_UNKNOWN_HOOK: check_unknown_hook(c, val); break;
        case S_STRICT_PERMISSIONS:
            cpex__ywant_bool(&c->diag, val, "plugin_settings.strict_permissions",
                             &cfg->strict_permissions);
            break;
        case S_EXECUTION_RECORDS:
        case S_METRICS: {
            bool b;
            if (cpex__ywant_bool(&c->diag, val,
                                 idx == S_METRICS ? "plugin_settings.metrics"
                                                  : "plugin_settings.execution_records",
                                 &b))
                *(idx == S_METRICS ? &cfg->metrics : &cfg->execution_records) = b;
            break;
        }
        case S_AUDIT_QUEUE_SIZE: check_queue_size(c, val); break;
        case S_AUDIT_OVERFLOW: check_overflow(c, val); break;
        case S_AUDIT_MAX_WAIT:
            cpex__ywant_seconds(&c->diag, val, "plugin_settings.audit_max_wait", 0,
                                CPEX_TIMEOUT_MAX, &cfg->audit_max_wait);
            break;
        default:
            warn(c, k,
                 "'plugin_settings.%s' is accepted for CPEX compatibility but not implemented "
                 "by libcpex; it has no effect",
                 key);
            break;
        }
    }
}

/* ------------------------------------------------------------------ */
/* plugins                                                             */
/* ------------------------------------------------------------------ */

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
    ctx *c;
    const cpex__ynode *at;
} iso_report_ctx;

static void iso_report(void *rc, const char *key, const char *message)
{
    iso_report_ctx *r = rc;
    report(r->c, r->at, key, "%s", message);
}

/* `sha256:`: a pin of the plugin's file, 64 hex digits in either case (kept
   in lowercase); the factory checks it before the file is loaded. */
static void check_sha256(ctx *c, cpex__config_plugin *p, const cpex__ynode *v)
{
    const char *s = cpex__ywant_string(&c->diag, v, "sha256", true);
    if (!s)
        return;
    size_t bad = 0;
    if (!cpex__sha256_hex_valid(s, &bad)) {
        if (s[bad])
            report(c, v, "sha256",
                   "'sha256' must be 64 hexadecimal digits (the SHA-256 of the library, as "
                   "`cpex inspect` prints it); character %zu ('%c') is not a hex digit",
                   bad + 1, s[bad] >= ' ' && s[bad] < 127 ? s[bad] : '?');
        else
            report(c, v, "sha256",
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

static void check_mode(ctx *c, cpex__config_plugin *p, const cpex__ynode *v)
{
    const char *valid[CPEX_MODE_DISABLED + 1];
    for (uint32_t m = 0; m <= CPEX_MODE_DISABLED; m++)
        valid[m] = cpex_mode_name(m);
    if (v->type != CPEX__YN_SCALAR || cpex__yis_null(v)) {
        char list[256];
        report(c, v, "mode", "'mode' must be one of %s; got %s",
               cpex__yjoin(list, sizeof list, valid, COUNT(valid)), cpex__ydescribe(v));
        return;
    }
    int m = cpex__mode_from_name(v->text);
    if (m < 0 || strlen(v->text) != v->len) {
        cpex__yreport_unknown(&c->diag, v, "mode", "mode", v->text, valid, COUNT(valid),
                              "valid modes");
        return;
    }
    p->mode = (uint32_t)m;
}

static void check_on_error(ctx *c, cpex__config_plugin *p, const cpex__ynode *v)
{
    const char *valid[CPEX_ON_ERROR_DISABLE + 1];
    for (int e = 0; e <= CPEX_ON_ERROR_DISABLE; e++)
        valid[e] = cpex_on_error_name((cpex_on_error)e);
    if (v->type != CPEX__YN_SCALAR || cpex__yis_null(v)) {
        char list[128];
        report(c, v, "on_error", "'on_error' must be one of %s; got %s",
               cpex__yjoin(list, sizeof list, valid, COUNT(valid)), cpex__ydescribe(v));
        return;
    }
    int e = cpex__on_error_from_name(v->text);
    if (e < 0 || strlen(v->text) != v->len) {
        cpex__yreport_unknown(&c->diag, v, "on_error", "on_error value", v->text, valid,
                              COUNT(valid), "valid values");
        return;
    }
    p->on_error = (cpex_on_error)e;
    p->has_on_error = true;
}

static void check_priority(ctx *c, cpex__config_plugin *p, const cpex__ynode *v)
{
    cpex__yval r = cpex__yresolve(v);
    if (v->type != CPEX__YN_SCALAR || r.kind != CPEX__YV_INT) {
        report(c, v, "priority", "'priority' must be an integer, got %s%s", cpex__ydescribe(v),
               cpex__yunquote_hint(v, CPEX__YV_INT));
        return;
    }
    if (r.bad || r.i < INT32_MIN || r.i > INT32_MAX) {
        report(c, v, "priority", "'priority' %.64s is out of range (%d to %d)", v->text, INT32_MIN,
               INT32_MAX);
        return;
    }
    p->priority = (int32_t)r.i;
}

static void check_hooks(ctx *c, cpex__config_plugin *p, const cpex__ynode *v)
{
    p->hooks_pos = v->pos;
    if (v->type != CPEX__YN_SEQ || v->count == 0) {
        if (v->type == CPEX__YN_SCALAR && !cpex__yis_null(v))
            report(c, v, "hooks",
                   "'hooks' must be a list of hook names, got %s; write hooks: [%.100s]",
                   cpex__ydescribe(v), v->text);
        else if (v->type == CPEX__YN_MAP)
            report(c, v, "hooks", "'hooks' must be a list of hook names, got a mapping");
        else
            report(c, v, "hooks",
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
                report(c, it, "hooks", "hook '%.200s' is listed twice (first at line %d); keep one",
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

static void check_capabilities(ctx *c, cpex__config_plugin *p, const cpex__ynode *v)
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
                report(c, at, "capabilities", "unknown capability '%.200s'; did you mean '%s'?",
                       names[i], suggestion);
            else {
                const char *known[32];
                size_t nknown = 0;
                for (unsigned b = 0; b < 32; b++) {
                    const char *name = cpex__caps_name((cpex__caps)1u << b);
                    if (name)
                        known[nknown++] = name;
                }
                char list[512];
                report(c, at, "capabilities", "unknown capability '%.200s'; valid capabilities: %s",
                       names[i], cpex__yjoin(list, sizeof list, known, nknown));
            }
        } else if (r == CPEX_CAP_NOT_IMPLEMENTED) {
            warn(c, at,
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

static void check_plugin(ctx *c, const cpex__ynode *map, cpex__config_plugin *p)
{
    p->mode = CPEX_MODE_SEQUENTIAL;
    p->priority = 100;
    p->on_error = CPEX_ON_ERROR_FAIL;
    p->pos = map->pos;
    if (map->type != CPEX__YN_MAP) {
        report(c, map, NULL,
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
                report(c, v, key,
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
                report(c, v, key, "%s", why);
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
        report(c, map, "name", "missing required key 'name'; add name: <a unique name>");
    if (!first[P_KIND])
        report(c, map, "kind",
               "missing required key 'kind'; add kind: <factory kind> (e.g. lib:<path>)");
    /* Without hooks, an audit-mode plugin is an audit sink for every hook
     * (the manager checks that it registers a verdict handler). */
    if (!first[P_HOOKS] && p->mode != CPEX_MODE_AUDIT)
        report(c, map, "hooks",
               "missing required key 'hooks'; list the hooks it serves, e.g. hooks: "
               "[tool_pre_invoke] (only an audit sink, mode: audit, may leave it out)");
    else if (!first[P_HOOKS] && !p->hooks && !(p->hooks = empty_strv(c)))
        c->diag.nomem = true;
}

static void check_plugins(ctx *c, const cpex__ynode *v)
{
    if (cpex__yis_null(v))
        return;
    if (v->type != CPEX__YN_SEQ) {
        report(c, v, "plugins", "'plugins' must be a list of plugin entries (- name: ...), got %s",
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

static void check_top(ctx *c, const cpex__ynode *root)
{
    if (!root || cpex__yis_null(root)) {
        report(c, NULL, NULL,
               "the configuration is empty; expected a mapping with at least 'plugins:'");
        return;
    }
    if (root->type != CPEX__YN_MAP) {
        report(c, root, NULL,
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
        case T_SETTINGS: check_settings(c, v); break;
        case T_PLUGINS: check_plugins(c, v); break;
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
            warn(c, k,
                 "'plugin_dirs' is accepted for CPEX compatibility but not implemented by "
                 "libcpex; it has no effect (name libraries in 'kind' instead)");
            break;
        case T_AUTHENTICATION:
        case T_APL:
            /* CPEX (main branch) knows these; we accept them so a CPEX file
             * loads, and say plainly that they do nothing here yet. */
            warn(c, k, "'%s' is a CPEX key that libcpex does not implement yet; it is ignored",
                 key);
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
    ctx c;
    memset(&c, 0, sizeof c);
    c.diag.report = report_diag;
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
