/*
 * call.h — the host's side of one handler call: what the host table's
 * slots reach through cpex_call.host_private. Shared by executor.c and
 * host_api.c.
 */
#ifndef CPEX_CORE_CALL_H
#define CPEX_CORE_CALL_H

#include <stdbool.h>

#include "core/core.h"
#include "cpex/extensions.h"

#define CPEX_CALL_MAGIC 0x63706578u /* "cpex": catches a plugin passing a stray pointer */

/* How to clone and free payload data of the kind / type a hook carries. */
typedef struct cpex__payload_ops {
    uint32_t kind;           /* enum cpex_payload_kind; 0 when there is no payload */
    const char *type_name;
    void *(*clone)(const void *data, void *user);
    void (*free)(void *data, void *user);
    void *user;
} cpex__payload_ops;

typedef struct cpex__call_state {
    cpex_call call;                /* what the handler sees */
    uint32_t magic;
    cpex_manager *manager;
    cpex__plugin *plugin;
    uint32_t mode;
    bool can_modify;               /* sequential and transform */
    bool closed;                   /* the invoke began after shutdown started */
    const cpex__payload_ops *ops;        /* the payload's type (the pipeline's or task's) */

    /* extensions: what the plugin reads, and its copy-on-write changes */
    const cpex_extensions *ext;
    cpex_extensions *pending_ext;

    /* what the handler produced */
    void *new_payload;             /* owned; of ops->kind, freed with ops->free */
    cpex_violation *violation;
    char *error_message;
    json_t *metadata;

    /* soft errors go here */
    cpex_error_record **records;
    size_t *record_count;

    /* context: serial modes write the live table; others a scratch copy */
    bool snapshot_ctx;
    cpex_context_table **table;    /* serial: the pipeline's table (created on write) */
    json_t *base_local, *base_global;       /* snapshot modes: what reads see (borrowed) */
    json_t *scratch_local, *scratch_global; /* snapshot modes: writes, discarded */
} cpex__call_state;

/** The call state behind a call, or NULL if the pointer is not one of ours. */
static inline cpex__call_state *cpex__call_state_of(const cpex_call *call)
{
    if (!call || !call->host_private)
        return NULL;
    cpex__call_state *cs = (cpex__call_state *)call->host_private;
    return cs->magic == CPEX_CALL_MAGIC ? cs : NULL;
}

/** Record a soft error for the call's plugin (formatted). */
void cpex__call_record(cpex__call_state *cs, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/** Release everything the call state owns (not the struct). */
void cpex__call_state_cleanup(cpex__call_state *cs);

/** What every call shares, wherever it runs; the rest is the caller's to set. */
typedef struct cpex__call_setup {
    cpex_manager *manager;
    const char *hook;
    size_t hook_len;
    const cpex_payload *payload;   /* the view handlers get (NULL: none) */
    const cpex__payload_ops *ops;
    const cpex_extensions *ext;
    bool closing;
    cpex_error_record **records;
    size_t *record_count;
} cpex__call_setup;

/** Start a call state for plugin `p` in `mode` (zeroes everything else). */
void cpex__call_state_init(cpex__call_state *cs, const cpex__call_setup *setup, cpex__plugin *p,
                          uint32_t mode);


#endif
