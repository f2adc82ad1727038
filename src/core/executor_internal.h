/*
 * executor_internal.h — what executor.c and executor_tasks.c share.
 */
#ifndef CPEX_CORE_EXECUTOR_INTERNAL_H
#define CPEX_CORE_EXECUTOR_INTERNAL_H

#include <stdbool.h>

#include "core/call.h"

typedef struct cpex__pipeline {
    cpex_manager *manager;
    const cpex__snapshot *snap;
    const cpex__hook *hook;
    cpex_payload payload;        /* current view */
    cpex__payload_ops ops;
    void *owned_payload;         /* current data when a plugin replaced it */
    const cpex_extensions *ext;  /* current extensions */
    cpex_extensions *owned_ext;  /* set when a plugin's writes were accepted */
    cpex_context_table *ctx;
    cpex_pipeline_result *res;
    bool closing;
} cpex__pipeline;

/** Stop the pipeline with `v` (an internal_error when NULL). */
static inline void cpex__ex_halt(cpex__pipeline *pl, cpex_violation *v)
{
    pl->res->continue_processing = false;
    if (!v) /* out of memory building it: still deny, with a fixed text */
        v = cpex__pipeline_violation(CPEX_CODE_INTERNAL_ERROR, "out of memory", NULL, NULL);
    pl->res->violation = v;
}

/* executor_tasks.c */
/** The concurrent phase. Returns false when the pipeline halted. */
bool cpex__ex_run_concurrent(cpex__pipeline *pl);
/** Start the fire-and-forget handlers. */
void cpex__ex_run_fire_and_forget(cpex__pipeline *pl);

#endif
