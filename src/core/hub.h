/*
 * hub.h — what a manager shares with work that may outlive it: the log
 * sink, the count of background work, and the background error log.
 *
 * Plugins, their worker-thread calls and the call states on those threads
 * reach the manager's log and background bookkeeping through the hub, never
 * through the manager itself: a handler stuck past every deadline is
 * abandoned when the manager is freed (see cpex_manager_free), and when it
 * finally returns it finds the hub still there (it holds a reference) and
 * logs to standard error, since the host's sink may be gone.
 */
#ifndef CPEX_CORE_HUB_H
#define CPEX_CORE_HUB_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "cpex/result.h"
#include "util/log.h"

typedef struct cpex__hub {
    _Atomic long refs;
    cpex__log_sink sink;     /* the host's, until detached */
    _Atomic bool detached;   /* the manager was freed: log to standard error */
    pthread_mutex_t lock;    /* guards what follows */
    pthread_cond_t idle;     /* CLOCK_MONOTONIC: pending reached 0 */
    long pending;            /* background calls submitted and not finished */
    int64_t latest_deadline; /* the latest deadline of a call ever submitted */
    size_t error_count;
    cpex_error_record *errors; /* the background error log */
    /* The plugin-state backend (state_manager.c), chained to the ones it
     * replaced: in the hub, so a state slot on an abandoned worker-thread
     * call never reaches freed memory. Freed with the hub. */
    _Atomic(struct cpex__state_backend *) state;
    struct cpex__metrics *metrics; /* counters (observe.h): outlive the manager like the log */
    _Atomic bool metrics_on;       /* count into them (worker and audit threads read it) */
    struct cpex__audit *audit;     /* the verdict queue and its thread (observe.h) */
} cpex__hub;

/** A new hub logging to `sink` (copied; NULL: standard error). NULL on OOM. */
cpex__hub *cpex__hub_new(const cpex__log_sink *sink);
cpex__hub *cpex__hub_ref(cpex__hub *hub);
/** Drop a reference; the last frees the hub and its error log. NULL is allowed. */
void cpex__hub_unref(cpex__hub *hub);

/** Where to log now: the host's sink, or NULL (standard error) once detached. */
static inline const cpex__log_sink *cpex__hub_sink(const cpex__hub *hub)
{
    return hub && !atomic_load_explicit(&hub->detached, memory_order_acquire) ? &hub->sink : NULL;
}

/** The manager is being freed: from now on, log to standard error. */
void cpex__hub_detach(cpex__hub *hub);

/** `n` more background calls submitted, the last of them due by `deadline_ns`. */
void cpex__hub_begin(cpex__hub *hub, long n, int64_t deadline_ns);
/** The latest deadline of any background call submitted so far (0: none). */
int64_t cpex__hub_latest_deadline(cpex__hub *hub);
/**
 * A background call finished: its soft errors (`records`, `count`; their
 * details move into the log) join the background error log.
 */
void cpex__hub_done(cpex__hub *hub, cpex_error_record *records, size_t count);
/**
 * Wait until no background call is pending, or until `deadline_ns`
 * (CLOCK_MONOTONIC; INT64_MAX: no limit). True when none is pending.
 */
bool cpex__hub_wait_idle(cpex__hub *hub, int64_t deadline_ns);
/** Background calls pending now. */
long cpex__hub_pending(cpex__hub *hub);
/** Take the background error log (the caller owns the array); its length. */
size_t cpex__hub_take_errors(cpex__hub *hub, cpex_error_record **records);

#endif
