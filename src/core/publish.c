/*
 * publish.c — the one way any change reaches invokes: build a new registry
 * snapshot, store it atomically, wait (RCU) until no invoke reads the old
 * one, then free the old one.
 */
#include "core/core.h"
#include "core/manager_internal.h"
#include "core/routing.h"

/* Publish a new snapshot of `plugins`; waits for readers of the old one. */
cpex_status cpex__mgr_publish(cpex_manager *m, cpex__plugin *const *plugins, size_t count)
{
    cpex__snapshot *next = cpex__snapshot_build(plugins, count, &m->names,
                                              m->types, m->type_count);
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
