/*
 * executor_internal.h — what executor.c and executor_tasks.c share.
 */
#ifndef CPEX_CORE_EXECUTOR_INTERNAL_H
#define CPEX_CORE_EXECUTOR_INTERNAL_H

#include <stdbool.h>

#include "core/call.h"
#include "core/core.h"

typedef enum cpex__outcome_kind { CPEX__OUT_ALLOW, CPEX__OUT_DENY, CPEX__OUT_ERROR, CPEX__OUT_TIMEOUT } cpex__outcome_kind;

typedef struct cpex__outcome {
    cpex__outcome_kind kind;
    const char *record_code; /* for CPEX__OUT_ERROR: "error", "bad_decision", "not_initialized" */
    int64_t end;             /* clock reading after the call (the start when not called) */
    char message[512];       /* for CPEX__OUT_ERROR; written only then */
} cpex__outcome;

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

/** Whether the call's plugin may run; if not, *out says why (fail closed). */
bool cpex__ex_plugin_ready(const cpex__call_state *cs, cpex__outcome *out);
/** Call the handler (deadline from `start`, CLOCK_MONOTONIC) and classify what it returned. */
void cpex__ex_call_handler(cpex__call_state *cs, cpex_handler_fn fn, int64_t start, cpex__outcome *out);
/** The violation of a deny: the plugin's own, or `fallback_code` (fail closed). */
cpex_violation *cpex__ex_take_violation(cpex__call_state *cs, const char *fallback_code);
/** A failure as a halting violation (on_error: fail). */
cpex_violation *cpex__ex_failure_violation(const cpex__plugin *p, const cpex__outcome *o);
/** Record a failure as a soft error. */
void cpex__ex_record_failure(cpex__call_state *cs, const cpex__outcome *o);
/** Disable a plugin because of a failure (on_error: disable). */
void cpex__ex_disable_for(cpex__plugin *p, const cpex__outcome *o);
/** Merge a call's metadata into the accumulated object (copies). False on OOM. */
bool cpex__ex_merge_metadata(json_t **into, json_t *from);
/** Stop the pipeline with `v` (an internal_error when NULL). */
void cpex__ex_halt(cpex__pipeline *pl, cpex_violation *v);

/* executor_tasks.c */
/** The concurrent phase. Returns false when the pipeline halted. */
bool cpex__ex_run_concurrent(cpex__pipeline *pl);
/** Start the fire-and-forget handlers. */
void cpex__ex_run_fire_and_forget(cpex__pipeline *pl);

#endif
