/*
 * call.c — one handler call, wherever it runs (the caller's thread or a
 * worker): its state, what its outcome turns into (violation, soft error,
 * disable), and how payload data of each kind is cloned and freed. Shared
 * by executor.c and executor_tasks.c; calls neither.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/call.h"
#include "cpex/cmf.h"
#include "util/alloc.h"

/* ------------------------------------------------------------------ */
/* Payload data helpers                                                */
/* ------------------------------------------------------------------ */

/* How to clone and free payload data of one kind / type. */

void *cpex__payload_clone_cmf(const void *d, void *u)
{
    (void)u;
    return cpex_cmf_clone(d);
}
void cpex__payload_free_cmf(void *d, void *u)
{
    (void)u;
    cpex_cmf_free(d);
}
void *cpex__payload_clone_json(const void *d, void *u)
{
    (void)u;
    return json_deep_copy(d);
}
void cpex__payload_free_json(void *d, void *u)
{
    (void)u;
    json_decref(d);
}


/* ------------------------------------------------------------------ */
/* Call state                                                          */
/* ------------------------------------------------------------------ */

void cpex__call_record(cpex__call_state *cs, cpex_code code, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (!cpex__records_add(cs->records, cs->record_count, cs->plugin->name, code, msg, NULL))
        cpex__log(cpex__hub_sink(cs->hub), CPEX_LOG_ERROR, cs->plugin->name,
                  "out of memory recording: %s", msg);
}

void cpex__call_state_cleanup(cpex__call_state *cs)
{
    cs->dirty = false;
    /* The all-allow path owns nothing: leave without a call per field. */
    if (!cs->new_payload && !cs->pending_ext && !cs->violation && !cs->error_message &&
        !cs->metadata && !cs->scratch_local && !cs->scratch_global)
        return;
    if (cs->new_payload)
        cs->ops->free(cs->new_payload, cs->ops->user);
    cs->new_payload = NULL;
    cpex_extensions_unref(cs->pending_ext);
    cs->pending_ext = NULL;
    cpex_violation_free(cs->violation);
    cs->violation = NULL;
    cpex__free(cs->error_message);
    cs->error_message = NULL;
    json_decref(cs->metadata);
    cs->metadata = NULL;
    json_decref(cs->scratch_local);
    json_decref(cs->scratch_global);
    cs->scratch_local = cs->scratch_global = NULL;
}

/* What one handler call came to. */

/* A plugin that is not (or no longer) initialized fails closed. The
 * common case is checked inline by cpex__call_handler first. */
bool cpex__ex_plugin_ready(const cpex__call_state *cs, cpex__outcome *out)
{
    cpex__plugin *p = cs->plugin;
    int st = atomic_load_explicit(&p->state, memory_order_acquire);
    if (cs->closed)
        st = CPEX_STATE_SHUT_DOWN;
    if (st == CPEX_STATE_INITIALIZED)
        return true;
    out->kind = CPEX__OUT_ERROR;
    out->record_code = CPEX_CODE_NOT_INITIALIZED;
    if (st == CPEX_STATE_FAILED) {
        pthread_mutex_lock(&p->lock);
        snprintf(out->message, sizeof out->message, "plugin failed to initialize: %s",
                 p->reason ? p->reason : "(no message)");
        pthread_mutex_unlock(&p->lock);
    } else if (st == CPEX_STATE_SHUT_DOWN) {
        snprintf(out->message, sizeof out->message,
                 "plugin is shut down (the manager was shut down)");
    } else {
        snprintf(out->message, sizeof out->message,
                 "plugin is not initialized; call cpex_manager_initialize before invoking");
    }
    return false;
}

/* The violation of a deny: the plugin's own, or plugin_deny (fail closed). */
cpex_violation *cpex__ex_take_violation(cpex__call_state *cs, cpex_code fallback_code)
{
    cpex_violation *v = cs->violation;
    cs->violation = NULL;
    if (!v) {
        char reason[300];
        snprintf(reason, sizeof reason, "Plugin '%s' denied without a violation", cs->plugin->name);
        return cpex__pipeline_violation(fallback_code, reason, NULL, cs->plugin->name);
    }
    char *name = cpex__strdup(cs->plugin->name);
    if (name) {
        cpex__free(v->plugin_name); /* the configured name wins over what the plugin said */
        v->plugin_name = name;
    }
    return v;
}

/* A failure as a halting violation (on_error: fail). */
cpex_violation *cpex__ex_failure_violation(const cpex__plugin *p, const cpex__outcome *o)
{
    char reason[800];
    if (o->kind == CPEX__OUT_TIMEOUT) {
        snprintf(reason, sizeof reason, "Plugin '%s' timed out after %lldms", p->name,
                 (long long)(p->timeout_ns / 1000000));
        json_t *d = json_pack("{s:I}", "timeout_ms", (json_int_t)(p->timeout_ns / 1000000));
        return cpex__pipeline_violation(CPEX_CODE_PLUGIN_TIMEOUT, reason, d, p->name);
    }
    snprintf(reason, sizeof reason, "Plugin '%s' failed: %s", p->name, o->message);
    return cpex__pipeline_violation(CPEX_CODE_PLUGIN_ERROR, reason, NULL, p->name);
}

bool cpex__ex_soft_failure(cpex__call_state *cs, const cpex__outcome *o)
{
    cpex__plugin *p = cs->plugin;
    long long ms = (long long)(p->timeout_ns / 1000000);
    if (o->kind == CPEX__OUT_TIMEOUT)
        cpex__call_record(cs, CPEX_CODE_TIMEOUT, "plugin timed out after %lldms", ms);
    else
        cpex__call_record(cs, o->record_code != CPEX_CODE_NONE ? o->record_code : CPEX_CODE_ERROR,
                          "%s", o->message);
    if (p->on_error != CPEX_ON_ERROR_DISABLE)
        return false;
    char reason[600];
    if (o->kind == CPEX__OUT_TIMEOUT)
        snprintf(reason, sizeof reason, "timed out after %lldms", ms);
    else
        snprintf(reason, sizeof reason, "%s", o->message);
    return cpex__plugin_disable(p, reason);
}

void cpex__ex_dropped_deny(cpex__call_state *cs)
{
    cpex__call_record(cs, CPEX_CODE_DROPPED_DENY,
                      "plugin denied in %s mode, which cannot block; the deny was ignored "
                      "(reason: %s)",
                      cpex_mode_name(cs->mode),
                      cs->violation ? cs->violation->reason : "none given");
}

/* Merge `from` into *into (created on demand). False on OOM. */
static bool merge_metadata(json_t **into, json_t *from)
{
    if (!from)
        return true;
    json_t *copy = json_deep_copy(from);
    if (!copy)
        return false;
    if (!*into) {
        *into = copy;
        return true;
    }
    bool ok = json_object_update(*into, copy) == 0;
    json_decref(copy);
    return ok;
}

void cpex__ex_keep_metadata(cpex__call_state *cs, json_t **into, json_t *from)
{
    if (!merge_metadata(into, from))
        cpex__call_record(cs, CPEX_CODE_INTERNAL,
                          "out of memory: the plugin's metadata was dropped");
}
