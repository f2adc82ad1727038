/*
 * publish.c — the one way any change reaches invokes: build a new registry
 * snapshot, store it atomically, wait (RCU) until no invoke reads the old
 * one, then free the old one.
 */
#include "core/core.h"
#include "core/manager_internal.h"
#include "core/routing.h"
#include "core/observe.h"

/* Publish a new snapshot of `plugins`; waits for readers of the old one.
 * Every snapshot is wired for observation before it is published (metric
 * ids, and the audit sinks of each hook: the snapshot's own plugins that
 * are sinks, and the manager's sinks registered from code). */
cpex_status cpex__mgr_publish(cpex_manager *m, cpex__plugin *const *plugins, size_t count)
{
    cpex__snapshot *next = cpex__snapshot_build(plugins, count, &m->names, m->types, m->type_count);
    if (next && !cpex__snapshot_observe(m, next)) {
        cpex__snapshot_free(next);
        next = NULL;
    }
    if (!next)
        return CPEX_E_NOMEM;
    bool ok;
    next->routing = cpex__route_state_new(m->policy, next, cpex__sink_of(m), &ok);
    if (!ok) {
        cpex__snapshot_free(next);
        return CPEX_E_NOMEM;
    }
    /* One publish, one generation: a reload is one publish. */
    next->generation = ++m->generation;
    /* Verdicts need their thread before the first invoke can hand one over. */
    if (cpex__snapshot_has_sinks(next) && !cpex__audit_start(m->hub->audit))
        cpex__log(cpex__sink_of(m), CPEX_LOG_ERROR, NULL,
                  "cannot start the audit thread: verdicts for the audit sinks will queue up "
                  "and then be dropped");
    cpex__snapshot *old = atomic_exchange(&m->snapshot, next);
    cpex__rcu_synchronize(&m->rcu);
    cpex__snapshot_free(old);
    return CPEX_OK;
}

cpex_status cpex__mgr_republish(cpex_manager *m)
{
    cpex__snapshot *cur = atomic_load(&m->snapshot);
    return cpex__mgr_publish(m, cur->plugins, cur->plugin_count);
}
