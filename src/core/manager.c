/*
 * manager.c — creating and freeing a manager, its options, and logging.
 *
 * The manager's other jobs live beside it: factories.c (factories, payload
 * types, hook bindings, publishing), plugin_build.c (checking a
 * registration), load.c (configuration, registration, unregistration),
 * lifecycle.c, queries.c and invoke.c.
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/core.h"
#include "core/manager_internal.h"
#include "core/reload.h"
#include "core/routing.h"
#include "core/observe.h"
#include "cpex/version.h"
#include "util/alloc.h"
#include "util/count.h"
#include "util/errors.h"

const char *cpex_version(void) { return CPEX_VERSION_STRING; }


_Thread_local const cpex__log_scope *cpex__current_log_scope;

/* ------------------------------------------------------------------ */
/* Creation and destruction                                            */
/* ------------------------------------------------------------------ */

void cpex_manager_options_init(cpex_manager_options *o)
{
    memset(o, 0, sizeof *o);
    o->struct_size = (uint32_t)sizeof *o;
    o->default_timeout = 30.0;
    o->default_on_error = CPEX_ON_ERROR_FAIL;
    o->worker_threads = 2;
    o->short_circuit_on_deny = true;
    o->log_level = CPEX_LOG_WARN;
    o->audit_queue_size = 1024;
    o->audit_overflow = CPEX_AUDIT_BLOCK;
    o->audit_max_wait = 1.0;
}

void cpex_plugin_spec_init(cpex_plugin_spec *s)
{
    memset(s, 0, sizeof *s);
    s->struct_size = (uint32_t)sizeof *s;
    s->mode = CPEX_MODE_SEQUENTIAL;
    s->priority = 100;
    s->on_error = (cpex_on_error)-1; /* the manager's default */
}

static const char *const builtin_cmf_hooks[] = {
    "cmf.tool_pre_invoke",    "cmf.tool_post_invoke",    "cmf.llm_input",
    "cmf.llm_output",         "cmf.prompt_pre_fetch",    "cmf.prompt_post_fetch",
    "cmf.resource_pre_fetch", "cmf.resource_post_fetch",
};

/* cmf.http_request authorizes an HTTP request that carries no chat
   message: its payload is a JSON document {method, path, query, host,
   scheme} (docs/pipeline.md), the headers ride in the http extension. */
static const char *const builtin_json_hooks[] = {"cmf.http_request"};


cpex_status cpex_manager_new(const cpex_manager_options *options, cpex_manager **out,
                             cpex_error *err)
{
    if (!out)
        return cpex__error_add(err, CPEX_E_INVALID, NULL, "cpex_manager_new: out is NULL");
    *out = NULL;
    cpex_manager_options opts;
    cpex_manager_options_init(&opts);
    if (options) {
        if (options->struct_size < sizeof(uint32_t) || options->struct_size > sizeof opts)
            return cpex__error_add(err, CPEX_E_INVALID, NULL,
                                   "cpex_manager_new: options.struct_size %u is not one this "
                                   "library knows (expected %zu); call cpex_manager_options_init",
                                   options->struct_size, sizeof opts);
        memcpy(&opts, options, options->struct_size);
    }
    if (!cpex__timeout_valid(opts.default_timeout))
        return cpex__error_add(err, CPEX_E_INVALID, NULL,
                               "cpex_manager_options.default_timeout must be a number of seconds "
                               "from %g to %g (got %g)",
                               CPEX_TIMEOUT_MIN, CPEX_TIMEOUT_MAX, opts.default_timeout);
    if (opts.unknown_hook > CPEX_UNKNOWN_HOOK_DENY)
        return cpex__error_add(
            err, CPEX_E_INVALID, NULL,
            "cpex_manager_options.unknown_hook %u is not valid (0 allow, 1 deny)",
            opts.unknown_hook);
    if ((unsigned)opts.default_on_error > CPEX_ON_ERROR_DISABLE)
        return cpex__error_add(err, CPEX_E_INVALID, NULL, "default_on_error %d is not valid",
                               (int)opts.default_on_error);
    if (opts.worker_threads == 0)
        opts.worker_threads = 1;
    if (opts.max_worker_threads > 1024)
        return cpex__error_add(err, CPEX_E_INVALID, NULL,
                               "max_worker_threads must be at most 1024 (got %u)",
                               opts.max_worker_threads);
    if (opts.worker_threads > 256)
        return cpex__error_add(err, CPEX_E_INVALID, NULL,
                               "worker_threads must be at most 256 (got %u)", opts.worker_threads);
    if (opts.audit_queue_size < 1 || opts.audit_queue_size > 1048576)
        return cpex__error_add(err, CPEX_E_INVALID, NULL,
                               "audit_queue_size must be between 1 and 1048576 (got %u)",
                               opts.audit_queue_size);
    if (opts.audit_overflow > CPEX_AUDIT_DROP)
        return cpex__error_add(err, CPEX_E_INVALID, NULL,
                               "audit_overflow %u is not valid (CPEX_AUDIT_BLOCK or "
                               "CPEX_AUDIT_DROP)",
                               opts.audit_overflow);
    if (!(opts.audit_max_wait >= 0) || opts.audit_max_wait > 3600.0)
        return cpex__error_add(err, CPEX_E_INVALID, NULL,
                               "audit_max_wait must be between 0 and 3600 seconds (got %g)",
                               opts.audit_max_wait);
    cpex__ticks_init(); /* durations of records and metrics (once per process) */

    cpex_manager *m = cpex__calloc(1, sizeof *m);
    if (!m)
        return cpex__error_add(err, CPEX_E_NOMEM, NULL, "out of memory creating the manager");
    m->opts = opts;
    m->opts.struct_size = (uint32_t)sizeof m->opts;
    cpex__hook_names_init(&m->names, m);
    cpex__log_sink sink = {opts.log, opts.log_user, opts.log_level};
    m->hub = cpex__hub_new(&sink);
    m->opts.worker_path = NULL;
    if (!m->hub || (opts.worker_path && !(m->opts.worker_path = cpex__strdup(opts.worker_path)))) {
        cpex__hub_unref(m->hub);
        cpex__free(m);
        return cpex__error_add(err, CPEX_E_NOMEM, NULL, "out of memory creating the manager");
    }
    m->default_timeout_ns = cpex__seconds_to_ns(opts.default_timeout);
    if (!(m->reload = cpex__reload_state_new())) {
        cpex__hub_unref(m->hub);
        cpex__free((char *)m->opts.worker_path);
        cpex__free(m);
        return cpex__error_add(err, CPEX_E_NOMEM, NULL, "out of memory creating the manager");
    }
    m->base = (cpex__settings_base){opts.unknown_hook == CPEX_UNKNOWN_HOOK_DENY,
                                    opts.short_circuit_on_deny,
                                    opts.execution_records ? 1 : 0,
                                    opts.metrics ? 1 : 0,
                                    m->opts.audit_queue_size,
                                    m->opts.audit_overflow,
                                    m->opts.audit_max_wait};
    atomic_init(&m->deny_unknown_hooks, opts.unknown_hook == CPEX_UNKNOWN_HOOK_DENY);
    atomic_init(&m->short_circuit, opts.short_circuit_on_deny);
    cpex__observe_apply_settings(m, opts.execution_records, opts.metrics, -1, -1, -1.0);
    pthread_mutex_init(&m->write_lock, NULL);
    cpex__rcu_init(&m->rcu);
    for (size_t i = 0; i < CPEX__COUNT(builtin_cmf_hooks); i++)
        if (!cpex__mgr_add_binding(m, builtin_cmf_hooks[i], "cmf"))
            goto oom;
    for (size_t i = 0; i < sizeof builtin_json_hooks / sizeof *builtin_json_hooks; i++)
        if (!cpex__mgr_add_binding(m, builtin_json_hooks[i], "json"))
            goto oom;
    cpex__snapshot *empty = cpex__snapshot_build(NULL, 0, &m->names, NULL, 0);
    if (!empty)
        goto oom;
    cpex__mgr_mark_empty_hooks(m, empty);
    atomic_init(&m->snapshot, empty);
    cpex__mgr_set_live(m, empty);
    /* Only options whose size covers `state` have one (older hosts pass less). */
    const cpex_state_options *state_opts =
        options && options->struct_size >= offsetof(cpex_manager_options, state) + sizeof opts.state
            ? opts.state
            : NULL;
    m->opts.state = NULL; /* the host's memory: not kept */
    cpex_status sst = cpex__mgr_state_init(m, state_opts, err);
    if (sst != CPEX_OK) {
        cpex_manager_free(m);
        return sst;
    }
    unsigned max_threads = opts.max_worker_threads ? opts.max_worker_threads
                                                   : opts.worker_threads + CPEX__EXTRA_WORKERS;
    m->workers = cpex__workers_new(opts.worker_threads, max_threads);
    if (!m->workers)
        goto oom;
    *out = m;
    return CPEX_OK;
oom:
    cpex_manager_free(m);
    return cpex__error_add(err, CPEX_E_NOMEM, NULL, "out of memory creating the manager");
}

static void free_factory_slots(cpex__factory_slot *slots, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        if (slots[i].factory.destroy)
            slots[i].factory.destroy(slots[i].factory.data);
        cpex__free(slots[i].key);
    }
    cpex__free(slots);
}

void cpex_manager_free(cpex_manager *m)
{
    if (!m)
        return;
    cpex__watch_stop_all(m); /* no reload may start while the manager goes */
    if (m->workers)
        cpex_manager_shutdown(m);
    unsigned stuck = cpex__workers_free(m->workers, CPEX__ABANDON_GRACE_NS);
    if (stuck)
        cpex__log(cpex__sink_of(m), CPEX_LOG_ERROR, NULL,
                  "%u worker thread%s still inside a plugin's handler: abandoned (the thread "
                  "and what the handler uses stay until it returns)",
                  stuck, stuck == 1 ? " is" : "s are");
    if (m->hub)
        cpex__audit_stop(m->hub->audit, CPEX__ABANDON_GRACE_NS);
    cpex__mgr_pending_free(m); /* and the retired snapshots */
    cpex__snapshot_free(atomic_load(&m->snapshot));
    cpex__policy_unref(m->policy);
    cpex__reload_state_free(m->reload);
    for (size_t i = 0; i < m->sink_count; i++)
        cpex__plugin_unref(m->sinks[i]);
    cpex__free(m->sinks);
    free_factory_slots(m->exact, m->exact_count);
    free_factory_slots(m->schemes, m->scheme_count);
    for (size_t i = 0; i < m->type_count; i++)
        cpex__free(m->types[i].name);
    cpex__free(m->types);
    cpex__hook_names_free(&m->names);
    if (m->hub) {
        cpex__hub_detach(m->hub); /* an abandoned handler that returns logs to stderr */
        cpex__hub_unref(m->hub);
    }
    pthread_mutex_destroy(&m->write_lock);
    cpex__free((char *)m->opts.worker_path);
    cpex__free(m);
}
