/*
 * reload.h — reloads and the watcher, inside the core (internal; the
 * public API is cpex/reload.h).
 */
#ifndef CPEX_CORE_RELOAD_H
#define CPEX_CORE_RELOAD_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/config.h"
#include "core/core.h"
#include "core/registration.h"
#include "cpex/reload.h"

struct cpex__watcher;

/** A manager's reload counters, callback and watcher (m->reload). */
typedef struct cpex__reload_state {
    pthread_mutex_t lock; /* counters, callback, last_error */
    cpex_reload_fn fn;
    void *user;
    uint64_t successes, failures, unchanged;
    int64_t last_success_ns;
    char last_error[1024];
    pthread_mutex_t watch_lock;           /* start and stop of the watcher */
    struct cpex__watcher *watcher;        /* under watch_lock */
    bool watch_starting;                  /* under watch_lock: a watch_file is setting one up */
    size_t identify_count;                /* schemes' artifact identities (registration.h); */
    struct cpex__identify_slot *identify; /* changed under the manager's write lock */
} cpex__reload_state;

typedef struct cpex__identify_slot {
    char *scheme;
    cpex__identify_fn fn;
} cpex__identify_slot;

cpex__reload_state *cpex__reload_state_new(void);
/** Free (the watcher must be stopped). */
void cpex__reload_state_free(cpex__reload_state *r);

/** Count an attempt, log it and call the callback (no lock of the manager held). */
void cpex__reload_report(cpex_manager *m, cpex_reload_event_kind kind, const char *path,
                         const char *message, bool from_watcher);

/** Reload `len` bytes of YAML, counted and reported. */
cpex_status cpex__reload_text(cpex_manager *m, const char *yaml, size_t len, const char *source,
                              const char *base_dir, bool from_watcher, cpex_error *err);

/** Reload a parsed configuration, counted and reported. */
cpex_status cpex__reload_parsed(cpex_manager *m, cpex__config *cfg, const char *path,
                                bool from_watcher, cpex_error *err);

/* watch.c */
/** Stop and join the watcher, if any (cpex_manager_free calls it first). */
void cpex__watch_stop_all(cpex_manager *m);
/** The watcher's part of a status. */
void cpex__watch_fill_status(cpex_manager *m, cpex_reload_status *st);

#endif
