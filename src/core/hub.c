/* hub.c — see hub.h. */
#include "core/hub.h"

#include <errno.h>
#include <time.h>

#include "core/core.h"
#include "core/state.h"
#include "core/observe.h"
#include "util/alloc.h"
#include "util/clock.h"

cpex__hub *cpex__hub_new(const cpex__log_sink *sink)
{
    cpex__hub *hub = cpex__calloc(1, sizeof *hub);
    if (!hub)
        return NULL;
    atomic_init(&hub->refs, 1);
    atomic_init(&hub->detached, false);
    if (sink)
        hub->sink = *sink;
    else
        hub->sink.min_level = 2; /* CPEX_LOG_WARN */
    pthread_mutex_init(&hub->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&hub->idle, &ca);
    pthread_condattr_destroy(&ca);
    hub->metrics = cpex__metrics_new();
    hub->audit = hub->metrics ? cpex__audit_new(hub) : NULL;
    if (!hub->audit) {
        cpex__hub_unref(hub);
        return NULL;
    }
    return hub;
}

cpex__hub *cpex__hub_ref(cpex__hub *hub)
{
    if (hub)
        atomic_fetch_add_explicit(&hub->refs, 1, memory_order_relaxed);
    return hub;
}

void cpex__hub_unref(cpex__hub *hub)
{
    if (!hub || atomic_fetch_sub_explicit(&hub->refs, 1, memory_order_acq_rel) != 1)
        return;
    cpex_error_records_free(hub->errors, hub->error_count);
    for (cpex__state_backend *b = atomic_load(&hub->state); b;) {
        cpex__state_backend *next = b->retired;
        cpex__state_free(b);
        b = next;
    }
    cpex__audit_free(hub->audit); /* its thread held a reference: it is gone */
    cpex__metrics_free(hub->metrics);
    pthread_cond_destroy(&hub->idle);
    pthread_mutex_destroy(&hub->lock);
    cpex__free(hub);
}

void cpex__hub_detach(cpex__hub *hub)
{
    atomic_store_explicit(&hub->detached, true, memory_order_release);
}

void cpex__hub_begin(cpex__hub *hub, long n, int64_t deadline_ns)
{
    pthread_mutex_lock(&hub->lock);
    hub->pending += n;
    if (deadline_ns > hub->latest_deadline)
        hub->latest_deadline = deadline_ns;
    pthread_mutex_unlock(&hub->lock);
}

void cpex__hub_done(cpex__hub *hub, cpex_error_record *records, size_t count)
{
    pthread_mutex_lock(&hub->lock);
    /* The details move over: a jansson value never changes threads with
     * two owners. */
    cpex__records_move(&hub->errors, &hub->error_count, records, count);
    hub->pending--;
    if (hub->pending == 0)
        pthread_cond_broadcast(&hub->idle);
    pthread_mutex_unlock(&hub->lock);
}

bool cpex__hub_wait_idle(cpex__hub *hub, int64_t deadline_ns)
{
    pthread_mutex_lock(&hub->lock);
    struct timespec ts = {(time_t)(deadline_ns / 1000000000), (long)(deadline_ns % 1000000000)};
    while (hub->pending > 0) {
        if (deadline_ns == INT64_MAX)
            pthread_cond_wait(&hub->idle, &hub->lock);
        else if (pthread_cond_timedwait(&hub->idle, &hub->lock, &ts) == ETIMEDOUT)
            break;
    }
    bool idle = hub->pending == 0;
    pthread_mutex_unlock(&hub->lock);
    return idle;
}

int64_t cpex__hub_latest_deadline(cpex__hub *hub)
{
    pthread_mutex_lock(&hub->lock);
    int64_t d = hub->latest_deadline;
    pthread_mutex_unlock(&hub->lock);
    return d;
}

long cpex__hub_pending(cpex__hub *hub)
{
    pthread_mutex_lock(&hub->lock);
    long n = hub->pending;
    pthread_mutex_unlock(&hub->lock);
    return n;
}

size_t cpex__hub_take_errors(cpex__hub *hub, cpex_error_record **records)
{
    pthread_mutex_lock(&hub->lock);
    size_t n = hub->error_count;
    *records = hub->errors;
    hub->errors = NULL;
    hub->error_count = 0;
    pthread_mutex_unlock(&hub->lock);
    return n;
}
