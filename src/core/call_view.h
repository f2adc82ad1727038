/*
 * call_view.h — the part of the core an isolation proxy may see (like
 * registration.h for the loader): what a plugin could read during the
 * current call, so that a proxy can send a worker process exactly that —
 * never more. Implemented in host_api.c beside the slots it mirrors.
 */
#ifndef CPEX_CORE_CALL_VIEW_H
#define CPEX_CORE_CALL_VIEW_H

#include <stdint.h>

#include <jansson.h>

#include "cpex/abi.h"
#include "cpex/extensions.h"

/** What the plugin of a call may read. Borrowed, valid during the call until its next write. */
typedef struct cpex__call_view {
    uint32_t caps; /* the plugin's capability bits (model/capabilities.h) */
    const cpex_extensions
        *ext;                /* what ext_* read (its own writes over the pipeline's); may be NULL */
    const json_t *ctx_local; /* the object ctx_get(CPEX_CTX_LOCAL) reads; may be NULL */
    const json_t *ctx_global; /* the object ctx_get(CPEX_CTX_GLOBAL) reads; may be NULL */
} cpex__call_view;

/** Fill `out` for `call`. Returns 0, or -1 when `call` is not a call of this library. */
int cpex__call_view_get(const cpex_call *call, cpex__call_view *out);

#endif
