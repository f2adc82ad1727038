/*
 * cpex/state.h — where plugins keep shared state: the backend a manager
 * offers through the state slots of the host table (abi.h, since ABI 1.1),
 * chosen by the host (cpex_manager_options.state) or by the configuration
 * (`plugin_settings.state`). See docs/state.md.
 *
 * Two backends:
 *   - memory (the default): in the manager's process, one store per
 *     manager; nothing is shared with other processes.
 *   - redis: a Redis server (or anything speaking its protocol) that every
 *     replica of a gateway points at, so their plugins share one state.
 *
 * A Redis that does not answer never stops a host from loading or serving:
 * the slots return CPEX_HOST_EUNAVAILABLE / CPEX_HOST_ETIMEOUT until it
 * answers, and each plugin decides what that means.
 */
#ifndef CPEX_STATE_H
#define CPEX_STATE_H

#include "cpex/export.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cpex/error.h"

#ifdef __cplusplus
extern "C" {
#endif

struct cpex_manager;

/** Which backend (enum values fixed). */
typedef enum cpex_state_backend { CPEX_STATE_MEMORY = 0, CPEX_STATE_REDIS = 1 } cpex_state_backend;

/**
 * How a manager keeps plugin state. Fill with cpex_state_options_init, then
 * change. Size-tagged: fields are only ever appended. Strings are copied by
 * cpex_manager_new.
 */
typedef struct cpex_state_options {
    uint32_t struct_size;
    uint32_t backend; /* enum cpex_state_backend; default memory */
    /* redis */
    const char *url;             /* "redis://[[user]:password@]host[:port][/db]"; port 6379, db 0 */
    const char *prefix;          /* put before every key; default "cpex:" */
    const char *password;        /* AUTH password (wins over the URL's); NULL: none */
    uint32_t connect_timeout_ms; /* one connection attempt; default 1000 */
    uint32_t command_timeout_ms; /* one slot's round trip; default 500 */
    uint32_t pool_size;          /* connections at most; default 8 */
    uint32_t reserved;
    /* memory */
    uint64_t max_keys;  /* keys held at most; default 1000000 */
    uint64_t max_bytes; /* bytes of keys and values at most; default 256 MiB */
} cpex_state_options;

/** Fill `options` with the defaults (the memory backend). */
CPEX_API void cpex_state_options_init(cpex_state_options *options);

/** "memory" or "redis"; "unknown" for other values. */
CPEX_API const char *cpex_state_backend_name(uint32_t backend);

/** What a manager's state backend is and how it has been doing. Owned by the caller. */
typedef struct cpex_state_status {
    uint32_t struct_size;
    uint32_t backend;     /* enum cpex_state_backend */
    char *description;    /* e.g. "redis 127.0.0.1:6379 db 0, prefix 'cpex:'" (never a password) */
    char *origin;         /* who chose it: "default", "host options" or the YAML file */
    bool probed;          /* a probe was asked for */
    bool answers;         /* the probe succeeded (always true for memory) */
    char *message;        /* the probe's outcome: "PING answered in 0.3 ms" or why not */
    bool failing;         /* slots are failing now (an outage began and has not ended) */
    uint64_t calls;       /* slot calls that reached the backend */
    uint64_t failures;    /* of them: unavailable or timed out */
    uint64_t unavailable; /* CPEX_HOST_EUNAVAILABLE returned */
    uint64_t timeouts;    /* CPEX_HOST_ETIMEOUT returned */
    uint64_t outages;     /* times slots began failing after working (or from the start) */
    uint64_t keys;        /* memory: keys held now (expired ones not yet swept count); redis: 0 */
} cpex_state_status;

/**
 * Set status->struct_size = sizeof(cpex_state_status) first (the rest is
 * filled in). Describe the manager's state backend and, when probe_timeout > 0
 * seconds, probe it (Redis: a PING on a pooled connection, within that
 * time). A probe that fails counts like a failed slot call (and starts an
 * outage, logged once). Release with cpex_state_status_cleanup.
 * Errors: CPEX_E_INVALID, CPEX_E_NOMEM.
 */
CPEX_API cpex_status cpex_manager_state_status(struct cpex_manager *manager, double probe_timeout,
                                               cpex_state_status *status);

/** Free what a cpex_state_status holds. NULL is allowed. */
CPEX_API void cpex_state_status_cleanup(cpex_state_status *status);

#ifdef __cplusplus
}
#endif

#endif /* CPEX_STATE_H */
