/*
 * lifecycle.c — initialize, shutdown, and background work.
 */
#include <math.h>
#include <stdio.h>
#include <time.h>

#include "core/core.h"
#include "core/manager_internal.h"
#include "core/routing.h"
#include "core/observe.h"
#include "util/alloc.h"
#include "util/errors.h"

/* ------------------------------------------------------------------ */
/* Lifecycle                                                           */
/* ------------------------------------------------------------------ */

cpex_status cpex_manager_initialize(cpex_manager *m, cpex_error *err)
{
    if (!m)
        return cpex__error_add(err, CPEX_E_INVALID, NULL, "initialize: manager is NULL");
    cpex__mgr_lock(m);
    cpex_status st = CPEX_OK;
    cpex__snapshot *cur = cpex__mgr_current(m);
    if (m->shut_down) {
        st = cpex__error_add(err, CPEX_E_STATE, NULL,
                             "the manager was shut down; plugins cannot be initialized again — "
                             "create a new manager");
    } else if (cpex__mgr_unpublished(m)) { /* they would stay uninitialized */
        st = cpex__error_add(err, CPEX_E_NOMEM, NULL,
                             "initialize: out of memory publishing the registered plugins; "
                             "nothing was initialized: retry");
    } else {
        atomic_store(&m->init_called, true);
        for (size_t i = 0; i < cur->plugin_count; i++) {
            cpex__where w = {NULL, 0, 0, cur->plugins[i]->name, NULL};
            if (cpex__mgr_init_plugin(m, cur->plugins[i], &w, err) != CPEX_OK)
                st = CPEX_E_PLUGIN;
        }
        /* Route override instances (routing.h) follow their plugins. */
        for (size_t i = 0; m->policy && i < m->policy->instance_count; i++) {
            cpex__plugin *p = m->policy->instances[i];
            cpex__where w = {m->policy->source, 0, 0, p->name, "config (route override)"};
            if (cpex__mgr_init_plugin(m, p, &w, err) != CPEX_OK)
                st = CPEX_E_PLUGIN;
        }
    }
    cpex__mgr_unlock(m);
    return st;
}

/* Shut down one plugin (lock held). A plugin still inside a handler on a
 * worker thread (hung past its deadline and the grace period) is not shut
 * down under it: it is abandoned, and its last reference — held by that
 * call — shuts it down and destroys it if the call ever returns. */
static void shutdown_plugin(cpex_manager *m, cpex__plugin *p, int was)
{
    if (was != CPEX_STATE_INITIALIZED)
        return;
    if (atomic_load(&p->inflight) > 0) {
        atomic_store(&p->shutdown_owed, 1);
        cpex__log(cpex__sink_of(m), CPEX_LOG_ERROR, p->name,
                  "still inside a handler on a worker thread after its deadline and a grace "
                  "of %d ms: abandoned (not shut down, not destroyed, its library stays loaded "
                  "until the handler returns)",
                  (int)(CPEX__ABANDON_GRACE_NS / 1000000));
        return;
    }
    if (!p->reg.shutdown)
        return;
    cpex__log_scope scope;
    cpex__log_scope_enter(&scope, m->hub, p->name);
    p->reg.shutdown(p->reg.instance);
    cpex__log_scope_leave(&scope);
}

/* Shut down `count` plugins, in reverse order (lock held; nothing of
 * them runs any more). */
static void shutdown_list(cpex_manager *m, cpex__plugin *const *plugins, size_t count)
{
    /* Every state first, then the in-flight counts: a worker raises its
     * count before it checks the state (seq_cst both ways), so a call
     * either sees the plugin shut down or is counted here. */
    int *was = cpex__calloc(count ? count : 1, sizeof *was);
    for (size_t i = 0; i < count; i++) {
        int st = atomic_exchange(&plugins[i]->state, CPEX_STATE_SHUT_DOWN);
        if (was)
            was[i] = st;
        else if (st == CPEX_STATE_INITIALIZED) /* no room to remember: shut it down at once */
            shutdown_plugin(m, plugins[i], st);
    }
    for (size_t i = count; was && i-- > 0;)
        shutdown_plugin(m, plugins[i], was[i]);
    cpex__free(was);
}

void cpex_manager_shutdown(cpex_manager *m)
{
    if (!m)
        return;
    cpex__mgr_lock(m);
    if (m->shut_down) {
        cpex__mgr_unlock(m);
        return;
    }
    /* Registrations still pending are published before any wait. */
    cpex__snapshot *cur = cpex__mgr_current(m);
    atomic_store(&m->shut_down, true);
    /* New invokes fail closed from here; invokes already running finish
     * with initialized plugins (the RCU wait), then the background work
     * they and earlier invokes started, each until it is done or a grace
     * period past its deadline; only then is shutdown called, with nothing
     * of the plugin running. */
    atomic_store(&m->closing, 1);
    cpex__rcu_synchronize(&m->rcu);
    int64_t until = cpex__hub_latest_deadline(m->hub);
    cpex__hub_wait_idle(m->hub, cpex__deadline_add(until, CPEX__ABANDON_GRACE_NS));
    /* Every verdict queued so far reaches its sinks before any sink is
     * shut down (a sink stuck in one call is given up after a grace). */
    cpex__audit_drain(m->hub->audit, CPEX__ABANDON_GRACE_NS);
    if (m->policy) /* route override instances were made after their plugins */
        shutdown_list(m, m->policy->instances, m->policy->instance_count);
    shutdown_list(m, cur->plugins, cur->plugin_count);
    /* Only when publishing them ran out of memory. */
    shutdown_list(m, m->pending, m->pending_count);
    cpex__mgr_unlock(m);
}

bool cpex_manager_is_initialized(const cpex_manager *cm)
{
    cpex_manager *m = (cpex_manager *)cm;
    if (!m)
        return false;
    /* A query: it reads the published snapshot like an invoke does, and
     * never waits for a load or an initialize running on another thread. */
    bool ok = atomic_load(&m->init_called) && !atomic_load(&m->shut_down);
    cpex__mgr_sync(m);
    cpex__rcu_ticket t = cpex__rcu_enter(&m->rcu);
    const cpex__snapshot *cur = atomic_load(&m->snapshot);
    for (size_t i = 0; ok && i < cur->plugin_count; i++)
        ok = atomic_load(&cur->plugins[i]->state) == CPEX_STATE_INITIALIZED;
    const cpex__policy *policy = cur->routing ? cur->routing->policy : NULL;
    for (size_t i = 0; ok && policy && i < policy->instance_count; i++)
        ok = atomic_load(&policy->instances[i]->state) == CPEX_STATE_INITIALIZED;
    cpex__rcu_exit(t);
    return ok;
}

cpex_status cpex_manager_wait_background(cpex_manager *m, double timeout)
{
    if (!m || isnan(timeout)) /* no deadline can be made of NaN */
        return CPEX_E_INVALID;
    /* The hub waits on CLOCK_MONOTONIC: a wall clock jump neither shortens
     * nor stretches the wait. The deadline saturates, so a huge timeout
     * waits instead of expiring at once; a negative or infinite one has none. */
    int64_t deadline = timeout < 0 || timeout == INFINITY
                           ? INT64_MAX
                           : cpex__deadline_add(cpex__now_ns(), cpex__seconds_to_ns(timeout));
    return cpex__hub_wait_idle(m->hub, deadline) ? CPEX_OK : CPEX_E_STATE;
}

size_t cpex_manager_take_background_errors(cpex_manager *m, cpex_error_record **records)
{
    if (!records)
        return 0;
    *records = NULL;
    if (!m)
        return 0;
    return cpex__hub_take_errors(m->hub, records);
}
