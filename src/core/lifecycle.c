/*
 * lifecycle.c — initialize, shutdown, and background work.
 */
#include <math.h>
#include <stdio.h>
#include <time.h>

#include "core/core.h"
#include "core/manager_internal.h"
#include "util/errors.h"

/* ------------------------------------------------------------------ */
/* Lifecycle                                                           */
/* ------------------------------------------------------------------ */

cpex_status cpex_manager_initialize(cpex_manager *m, cpex_error *err)
{
    if (!m)
        return cpex__error_add(err, CPEX_E_INVALID, NULL, "initialize: manager is NULL");
    pthread_mutex_lock(&m->write_lock);
    cpex_status st = CPEX_OK;
    if (m->shut_down) {
        st = cpex__error_add(err, CPEX_E_STATE, NULL,
                            "the manager was shut down; plugins cannot be initialized again — "
                            "create a new manager");
    } else {
        atomic_store(&m->init_called, true);
        cpex__snapshot *cur = atomic_load(&m->snapshot);
        for (size_t i = 0; i < cur->plugin_count; i++) {
            cpex__where w = {NULL, 0, 0, cur->plugins[i]->name, NULL};
            if (cpex__mgr_init_plugin(m, cur->plugins[i], &w, err) != CPEX_OK)
                st = CPEX_E_PLUGIN;
        }
    }
    pthread_mutex_unlock(&m->write_lock);
    return st;
}

void cpex__mgr_wait_all_background(cpex_manager *m)
{
    pthread_mutex_lock(&m->bg_lock);
    while (m->bg_pending > 0)
        pthread_cond_wait(&m->bg_idle, &m->bg_lock);
    pthread_mutex_unlock(&m->bg_lock);
}

void cpex_manager_shutdown(cpex_manager *m)
{
    if (!m)
        return;
    pthread_mutex_lock(&m->write_lock);
    if (m->shut_down) {
        pthread_mutex_unlock(&m->write_lock);
        return;
    }
    atomic_store(&m->shut_down, true);
    /* New invokes fail closed from here; invokes already running finish
     * with initialized plugins (the RCU wait), then the background work
     * they and earlier invokes started; only then is shutdown called, with
     * nothing of the plugin running. */
    atomic_store(&m->closing, 1);
    cpex__rcu_synchronize(&m->rcu);
    cpex__mgr_wait_all_background(m);
    cpex__snapshot *cur = atomic_load(&m->snapshot);
    for (size_t i = cur->plugin_count; i-- > 0;) {
        cpex__plugin *p = cur->plugins[i];
        int st = atomic_exchange(&p->state, CPEX_STATE_SHUT_DOWN);
        if (st == CPEX_STATE_INITIALIZED && p->reg.shutdown) {
            cpex__log_scope scope;
            cpex__log_scope_enter(&scope, m, p->name);
            p->reg.shutdown(p->reg.instance);
            cpex__log_scope_leave(&scope);
        }
    }
    pthread_mutex_unlock(&m->write_lock);
}

bool cpex_manager_is_initialized(const cpex_manager *cm)
{
    cpex_manager *m = (cpex_manager *)cm;
    if (!m)
        return false;
    /* A query: it reads the published snapshot like an invoke does, and
     * never waits for a load or an initialize running on another thread. */
    bool ok = atomic_load(&m->init_called) && !atomic_load(&m->shut_down);
    cpex__rcu_ticket t = cpex__rcu_enter(&m->rcu);
    const cpex__snapshot *cur = atomic_load(&m->snapshot);
    for (size_t i = 0; ok && i < cur->plugin_count; i++)
        ok = atomic_load(&cur->plugins[i]->state) == CPEX_STATE_INITIALIZED;
    cpex__rcu_exit(t);
    return ok;
}

cpex_status cpex_manager_wait_background(cpex_manager *m, double timeout)
{
    if (!m || isnan(timeout)) /* no deadline can be made of NaN */
        return CPEX_E_INVALID;
    pthread_mutex_lock(&m->bg_lock);
    if (timeout < 0 || timeout == INFINITY) {
        while (m->bg_pending > 0)
            pthread_cond_wait(&m->bg_idle, &m->bg_lock);
    } else {
        /* bg_idle waits on CLOCK_MONOTONIC (see cpex_manager_new): a wall
         * clock jump neither shortens nor stretches the wait. The deadline
         * saturates, so a huge timeout waits instead of expiring at once. */
        int64_t deadline = cpex__deadline_add(cpex__now_ns(), cpex__seconds_to_ns(timeout));
        struct timespec abs = {(time_t)(deadline / 1000000000), (long)(deadline % 1000000000)};
        while (m->bg_pending > 0)
            if (pthread_cond_timedwait(&m->bg_idle, &m->bg_lock, &abs) != 0)
                break;
    }
    bool idle = m->bg_pending == 0;
    pthread_mutex_unlock(&m->bg_lock);
    return idle ? CPEX_OK : CPEX_E_STATE;
}

size_t cpex_manager_take_background_errors(cpex_manager *m, cpex_error_record **records)
{
    if (!records)
        return 0;
    *records = NULL;
    if (!m)
        return 0;
    pthread_mutex_lock(&m->bg_lock);
    size_t n = m->bg_error_count;
    *records = m->bg_errors;
    m->bg_errors = NULL;
    m->bg_error_count = 0;
    pthread_mutex_unlock(&m->bg_lock);
    return n;
}
