/*
 * executor_internal.h — what executor.c and executor_tasks.c share.
 */
#ifndef CPEX_CORE_EXECUTOR_INTERNAL_H
#define CPEX_CORE_EXECUTOR_INTERNAL_H

#include <stdbool.h>

#include "core/call.h"
#include "core/observe.h"

/* What an observed invoke carries along (executor.c sets it up only when
 * records, metrics or sinks are on; the pipeline's `obs` is NULL else). */
typedef struct cpex__pl_obs {
    cpex__recs *recs;         /* records being made, or NULL */
    cpex__mshard *shard;      /* this thread's metrics, or NULL (metrics off) */
    cpex__tick_clock clock;   /* the caller-thread phases' clock (observe.h) */
    const uint32_t *ids;      /* the hook entries' metric ids (NULL: not wired) */
    bool sinks;               /* the verdict goes to audit sinks */
    bool result_records;      /* the result takes the records */
    cpex__verdict_item *item; /* the verdict, once made (before fire-and-forget) */
    bool item_faf;            /* it waits for fire-and-forget records */
    bool verdict_done;        /* it was made (or dropped) */
} cpex__pl_obs;

/** What one call came to, for its record and its counters. */
typedef struct cpex__rec_info {
    uint32_t status;   /* enum cpex_exec_status */
    int32_t requested; /* CPEX_ALLOW, CPEX_DENY or -1 */
    bool halted;       /* it stopped the pipeline */
    bool payload_modified, extensions_modified;
    bool disabled;             /* it disabled its plugin */
    bool ran;                  /* the handler was called (timed) */
    const char *code, *reason; /* borrowed; copied into the record */
} cpex__rec_info;

typedef struct cpex__pipeline {
    cpex_manager *manager;
    const cpex__snapshot *snap;
    const cpex__hook *hook;
    cpex_payload payload; /* current view */
    cpex__payload_ops ops;
    void *owned_payload;        /* current data when a plugin replaced it */
    const cpex_extensions *ext; /* current extensions */
    cpex_extensions *owned_ext; /* set when a plugin's writes were accepted */
    cpex_context_table *ctx;
    cpex_pipeline_result *res;
    bool closing;
    cpex__pl_obs *obs; /* NULL: nothing observed (the common case) */
} cpex__pipeline;

/** Stop the pipeline with `v` (an internal_error when NULL). */
static inline void cpex__ex_halt(cpex__pipeline *pl, cpex_violation *v)
{
    pl->res->continue_processing = false;
    if (!v) /* out of memory building it: still deny, with a fixed text */
        v = cpex__pipeline_violation(CPEX_CODE_INTERNAL_ERROR, "out of memory", NULL, NULL);
    pl->res->violation = v;
}

/** Record and count call `entry` of plugin `p` (observed invokes only). */
void cpex__ex_observe(cpex__pipeline *pl, size_t entry, cpex__plugin *p, const cpex__rec_info *ri,
                      uint64_t t0, uint64_t t1);
/** The record fields and counters of a finished call, from its info. */
void cpex__ex_fill_record(cpex__recs *recs, cpex_execution_record *rec, const cpex__rec_info *ri,
                          uint64_t t0, uint64_t t1);

/* executor_tasks.c */
/** The concurrent phase. Returns false when the pipeline halted. */
bool cpex__ex_run_concurrent(cpex__pipeline *pl);
/** Start the fire-and-forget handlers. */
void cpex__ex_run_fire_and_forget(cpex__pipeline *pl);

#endif
