/*
 * manager.c — creating and freeing a manager, its options, and logging.
 *
 * The manager's other jobs live beside it: factories.c (factories, payload
 * types, hook bindings, publishing), plugin_build.c (checking a
 * registration), load.c (configuration, registration, unregistration),
 * lifecycle.c, queries.c and invoke.c.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/core.h"
#include "core/manager_internal.h"
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
    "cmf.tool_pre_invoke",   "cmf.tool_post_invoke",  "cmf.llm_input",
    "cmf.llm_output",        "cmf.prompt_pre_fetch",  "cmf.prompt_post_fetch",
    "cmf.resource_pre_fetch", "cmf.resource_post_fetch",
};


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
        return cpex__error_add(err, CPEX_E_INVALID, NULL,
                              "cpex_manager_options.unknown_hook %u is not valid (0 allow, 1 deny)",
                              opts.unknown_hook);
    if ((unsigned)opts.default_on_error > CPEX_ON_ERROR_DISABLE)
        return cpex__error_add(err, CPEX_E_INVALID, NULL, "default_on_error %d is not valid",
                              (int)opts.default_on_error);
    if (opts.worker_threads == 0)
        opts.worker_threads = 1;
    if (opts.worker_threads > 256)
        return cpex__error_add(err, CPEX_E_INVALID, NULL,
                              "worker_threads must be at most 256 (got %u)", opts.worker_threads);

    cpex_manager *m = cpex__calloc(1, sizeof *m);
    if (!m)
        return cpex__error_add(err, CPEX_E_NOMEM, NULL, "out of memory creating the manager");
    m->opts = opts;
    m->opts.struct_size = (uint32_t)sizeof m->opts;
    m->log.fn = opts.log;
    m->log.user = opts.log_user;
    m->log.min_level = opts.log_level;
    m->default_timeout_ns = cpex__seconds_to_ns(opts.default_timeout);
    atomic_init(&m->deny_unknown_hooks, opts.unknown_hook == CPEX_UNKNOWN_HOOK_DENY);
    pthread_mutex_init(&m->write_lock, NULL);
    pthread_mutex_init(&m->bg_lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&m->bg_idle, &ca);
    pthread_condattr_destroy(&ca);
    cpex__rcu_init(&m->rcu);
    for (size_t i = 0; i < CPEX__COUNT(builtin_cmf_hooks); i++)
        if (!cpex__mgr_add_binding(m, builtin_cmf_hooks[i], "cmf"))
            goto oom;
    cpex__snapshot *empty = cpex__snapshot_build(NULL, 0, NULL, 0, NULL, 0);
    if (!empty)
        goto oom;
    atomic_init(&m->snapshot, empty);
    m->workers = cpex__workers_new(opts.worker_threads, opts.worker_threads + CPEX__EXTRA_WORKERS);
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
    if (m->workers)
        cpex_manager_shutdown(m);
    cpex__workers_free(m->workers, INT64_MAX); /* late handlers have finished after this */
    cpex__snapshot_free(atomic_load(&m->snapshot));
    free_factory_slots(m->exact, m->exact_count);
    free_factory_slots(m->schemes, m->scheme_count);
    for (size_t i = 0; i < m->type_count; i++)
        cpex__free(m->types[i].name);
    cpex__free(m->types);
    for (size_t i = 0; i < m->binding_count; i++) {
        cpex__free(m->bindings[i].hook);
        cpex__free(m->bindings[i].type);
    }
    cpex__free(m->bindings);
    cpex_error_records_free(m->bg_errors, m->bg_error_count);
    pthread_cond_destroy(&m->bg_idle);
    pthread_mutex_destroy(&m->bg_lock);
    pthread_mutex_destroy(&m->write_lock);
    cpex__free(m);
}
