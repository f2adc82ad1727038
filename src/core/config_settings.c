/*
 * config_settings.c — check `plugin_settings:` of the YAML configuration
 * (see config.h), key by key: the values go into the configuration, every
 * problem is reported through config_check.h. Its routing keys are
 * config_routes.c's, its `state:` mapping config_state.c's.
 */
#include "core/config_check.h"

#include <stdarg.h>
#include <string.h>

#include "core/routing_config.h"
#include "core/yaml_scalar.h"
#include "core/yaml_typed.h"
#include "util/count.h"

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
    cpex__cfg_report_at(vc, pos, key, fmt, ap);
}

/* plugin_settings.state: the keys with positions and JSON values go to config_state.c. */
static void check_state(cpex__cfg_ctx *c, const cpex__ynode *k, const cpex__ynode *v)
{
    if (v->type != CPEX__YN_MAP) {
        cpex__cfg_report(c, v, "plugin_settings.state",
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
            cpex__cfg_report(c, kk, "plugin_settings.state",
                             "too many keys in 'plugin_settings.state'");
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
static void check_unknown_hook(cpex__cfg_ctx *c, const cpex__ynode *v)
{
    static const char *const valid[] = {"allow", "deny"};
    const char *key = "plugin_settings.unknown_hook";
    if (v->type != CPEX__YN_SCALAR || cpex__yis_null(v)) {
        cpex__cfg_report(c, v, key, "'%s' must be allow or deny; got %s", key, cpex__ydescribe(v));
        return;
    }
    int idx = strlen(v->text) == v->len ? cpex__ykey_index(v->text, valid, CPEX__COUNT(valid)) : -1;
    if (idx < 0) {
        cpex__yreport_unknown(&c->diag, v, key, "unknown_hook value", v->text, valid,
                              CPEX__COUNT(valid), "valid values");
        return;
    }
    c->cfg->unknown_hook_deny = idx == 1;
}

/* plugin_settings.audit_queue_size: 1 .. 1048576 verdicts. */
static void check_queue_size(cpex__cfg_ctx *c, const cpex__ynode *v)
{
    cpex__yval r = cpex__yresolve(v);
    if (v->type != CPEX__YN_SCALAR || r.kind != CPEX__YV_INT || r.bad || r.i < 1 || r.i > 1048576) {
        cpex__cfg_report(
            c, v, "plugin_settings",
            "'plugin_settings.audit_queue_size' must be a whole number of verdicts from 1 to "
            "1048576, got %s%s",
            cpex__ydescribe(v), cpex__yunquote_hint(v, CPEX__YV_INT));
        return;
    }
    c->cfg->audit_queue_size = r.i;
}

/* plugin_settings.audit_overflow: block | drop. */
static void check_overflow(cpex__cfg_ctx *c, const cpex__ynode *v)
{
    const char *s = cpex__ywant_string(&c->diag, v, "plugin_settings.audit_overflow", true);
    if (!s)
        return;
    if (strcmp(s, "block") == 0)
        c->cfg->audit_overflow = CPEX_AUDIT_BLOCK;
    else if (strcmp(s, "drop") == 0)
        c->cfg->audit_overflow = CPEX_AUDIT_DROP;
    else
        cpex__cfg_report(
            c, v, "plugin_settings",
            "'plugin_settings.audit_overflow' must be block (wait for room, then drop and "
            "count) or drop (drop at once and count), got '%.64s'",
            s);
}

void cpex__cfg_settings(cpex__cfg_ctx *c, const cpex__ynode *v)
{
    if (cpex__yis_null(v))
        return;
    if (v->type != CPEX__YN_MAP) {
        cpex__cfg_report(c, v, "plugin_settings", "'plugin_settings' must be a mapping, got %s",
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
            cpex__cfg_warn(
                c, k,
                "'plugin_settings.%s' is accepted for CPEX compatibility but not implemented "
                "by libcpex; it has no effect",
                key);
            break;
        }
    }
}
