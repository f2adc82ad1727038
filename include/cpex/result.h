/*
 * cpex/result.h — what one invoke hands back.
 *
 * The caller provides the storage (usually on its stack), initializes it
 * with CPEX_PIPELINE_RESULT_INIT or cpex_pipeline_result_init(), the
 * invoke fills it and the caller releases it with
 * cpex_pipeline_result_cleanup() (after which it may be reused). An invoke
 * on which no plugin changed anything allocates nothing for it.
 */
#ifndef CPEX_RESULT_H
#define CPEX_RESULT_H

#include "cpex/export.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <jansson.h>

#include "cpex/abi.h"
#include "cpex/codes.h"
#include "cpex/context.h"
#include "cpex/extensions.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * Why the pipeline stopped. All strings owned by the result.
 * `code` is the deny's own code when a plugin described its violation, else
 * one of the violation codes of CPEX_CODE_TABLE (cpex/codes.h), which also
 * says what each means; cpex_code_lookup() tells them apart.
 */
typedef struct cpex_violation {
    char *code;        /* machine-readable, never NULL */
    char *reason;      /* short human text, never NULL */
    char *description; /* may be NULL */
    json_t *details;   /* an object, never NULL (may be empty) */
    char *plugin_name; /* the operator's name of the plugin that stopped it */
} cpex_violation;

/**
 * A soft error: something went wrong but did not stop the pipeline (or
 * happened in a phase that cannot stop it). `code` is always one of the
 * record codes of CPEX_CODE_TABLE (cpex/codes.h), which says what each means.
 */
typedef struct cpex_error_record {
    char *plugin_name; /* the operator's name, never NULL */
    char *code;        /* never NULL */
    char *message;     /* never NULL */
    json_t *details;   /* an object or NULL */
} cpex_error_record;

/**
 * The outcome of one invoke.
 *
 * Growth: `struct_size` is sizeof(cpex_pipeline_result) as the caller was
 * compiled, set by the initializers. A later libcpex that appends fields
 * fills only those the caller's size covers (and releases what it would
 * have put in the others). A result whose struct_size is below
 * CPEX_PIPELINE_RESULT_SIZE_V1 (never initialized) is not filled at all:
 * cpex_manager_invoke refuses it with CPEX_E_INVALID, since a half-written
 * result could read as "allow".
 */
typedef struct cpex_pipeline_result {
    uint32_t struct_size;      /* sizeof(cpex_pipeline_result) of the caller's build */
    bool continue_processing;  /* false when a plugin (or the pipeline) denied */
    cpex_violation *violation; /* set when continue_processing is false */
    bool payload_modified;     /* true when some plugin's modification was accepted */
    /**
     * The final payload when payload_modified; its data is owned by the
     * result (a cpex_cmf_message, a json_t, or host-type data freed with the
     * type's free). NULL otherwise: the caller's payload is final.
     * A denied result keeps what earlier plugins changed (state is never
     * silently lost); a host normally ignores it on deny.
     */
    cpex_payload *modified_payload;
    bool extensions_modified;    /* true when some plugin's extension write was accepted */
    cpex_extensions *extensions; /* the final extensions when modified (one reference, owned) */
    json_t *metadata;            /* merged metadata of all plugins, or NULL */
    size_t error_count;
    cpex_error_record *errors; /* soft errors in the order they happened */
    /**
     * The context table to pass into the next invoke of the same request.
     * Owned by the result until taken with cpex_pipeline_result_take_context.
     * NULL when no plugin stored state and none was passed in.
     */
    cpex_context_table *context;

    /* ---- appended: the second layout (CPEX_PIPELINE_RESULT_SIZE_V2) ---- */
    /**
     * True when the invoke found no plugin to run for its hook, so the
     * decision is the framework's default allow (or the unknown_hook deny,
     * see below) rather than any plugin's: no plugin serves the hook (a
     * mistyped or unconfigured name, a trailing space), every plugin that
     * lists it is configured `mode: disabled`, or every one was disabled
     * at run time by on_error: disable. False when at least one plugin
     * was to run, also when it then failed, timed out, was not initialized
     * or the payload type did not fit. A manager with unknown_hook deny
     * (cpex_manager_options, `plugin_settings.unknown_hook`) denies the
     * first two cases with the violation code `unknown_hook`; the third
     * stays an allow. Written only when struct_size covers it: a caller
     * built against an older header never sees it.
     */
    bool no_plugin_ran;
    /* ---- execution records (since 0.2; docs/observability.md) ---- */
    /**
     * One record per handler call of this invoke, in execution order, when
     * execution records are on (cpex_manager_options.execution_records or
     * plugin_settings.execution_records; off by default) and the caller's
     * struct_size covers these fields; else 0 / NULL. Fire-and-forget calls
     * finish after the invoke returns and are not here (audit sinks and the
     * metrics get them). Owned by the result. The array's stride is
     * `execution_size`: read record i with cpex_pipeline_result_execution().
     */
    size_t execution_count;
    uint32_t execution_size;
    const cpex_execution_record *executions;

    /* ---- since 0.2: routing and reload ---- */
    /**
     * The registry generation the invoke ran on (cpex_manager_generation):
     * every load, reload, registration and unregistration publishes a new
     * one. An invoke runs entirely on one generation, so a result says
     * which policy decided it. Written only when struct_size covers it.
     */
    uint64_t generation;
} cpex_pipeline_result;

/** The size of the layout that holds `generation`. */
#define CPEX_PIPELINE_RESULT_SIZE_GENERATION                                                       \
    (offsetof(cpex_pipeline_result, generation) + sizeof(uint64_t))

/** The size of the first layout: the least struct_size libcpex fills. */
#define CPEX_PIPELINE_RESULT_SIZE_V1                                                               \
    (offsetof(cpex_pipeline_result, context) + sizeof(cpex_context_table *))

/** The size of the layout with no_plugin_ran. */
#define CPEX_PIPELINE_RESULT_SIZE_V2 (offsetof(cpex_pipeline_result, no_plugin_ran) + sizeof(bool))
/** The least struct_size whose result gets execution records. */
#define CPEX_PIPELINE_RESULT_SIZE_EXECUTIONS                                                       \
    (offsetof(cpex_pipeline_result, executions) + sizeof(const cpex_execution_record *))

/** Static initializer for an empty result (continue_processing true). */
#define CPEX_PIPELINE_RESULT_INIT                                                                  \
    {                                                                                              \
        (uint32_t)sizeof(cpex_pipeline_result), true, NULL, false, NULL, false, NULL, NULL, 0,     \
            NULL, NULL, false, 0, 0, NULL, 0                                                       \
    }

/** Record `index` of a result's executions (with its stride), or NULL past the end. */
static inline const cpex_execution_record *
cpex_pipeline_result_execution(const cpex_pipeline_result *result, size_t index)
{
    if (!result || result->struct_size < CPEX_PIPELINE_RESULT_SIZE_EXECUTIONS ||
        index >= result->execution_count || !result->executions)
        return NULL;
    return (const cpex_execution_record *)(const void *)((const char *)result->executions +
                                                         index * result->execution_size);
}

/** The name of an enum cpex_exec_status value ("completed", "error", ...); "unknown" otherwise. */
CPEX_API const char *cpex_exec_status_name(uint32_t status);

/**
 * Make `result` empty (continue_processing true) and set its struct_size to
 * the caller's sizeof (inline, so the size is the caller's). Allocates
 * nothing and frees nothing.
 */
static inline void cpex_pipeline_result_init(cpex_pipeline_result *result)
{
    memset(result, 0, sizeof *result);
    result->struct_size = (uint32_t)sizeof *result;
    result->continue_processing = true;
}

/**
 * Free everything `result` owns and make it empty (continue_processing
 * true; struct_size stays, so the result may be reused). NULL, and a
 * result that was never initialized, are left alone.
 */
CPEX_API void cpex_pipeline_result_cleanup(cpex_pipeline_result *result);

/** Take the context table out of the result; the caller then owns it. */
CPEX_API cpex_context_table *cpex_pipeline_result_take_context(cpex_pipeline_result *result);

/**
 * The final CMF message of a result: the modified one if any, else
 * `original`. Borrowed. NULL if the final payload is not CMF.
 */
CPEX_API const cpex_cmf_message *cpex_pipeline_result_cmf(const cpex_pipeline_result *result,
                                                          const cpex_cmf_message *original);

/**
 * The result as JSON (for logs and the CLI). Caller owns it. NULL on OOM.
 * Execution records, when present, are under "executions" (each as
 * cpex_execution_record_to_json writes it).
 */
CPEX_API json_t *cpex_pipeline_result_to_json(const cpex_pipeline_result *result);

/**
 * One execution record as a JSON object: plugin_name, plugin_kind, hook_name,
 * mode, status, requested_allow, effective_allow, matched, applied,
 * payload_modified, extensions_modified, start_unix_ns, duration_ns,
 * error_code, reason, config_keys, trace_id, span_id. Optional fields that
 * are unknown or unset are left out (requested_allow and matched when there
 * was no result; error_code, reason, plugin_kind, trace_id, span_id when
 * absent). Caller owns it; NULL on OOM.
 */
CPEX_API json_t *cpex_execution_record_to_json(const cpex_execution_record *record);

/** Release a violation allocated by libcpex (its strings and the struct). */
CPEX_API void cpex_violation_free(cpex_violation *violation);

/** Release the contents of an error record (not the struct itself). */
CPEX_API void cpex_error_record_cleanup(cpex_error_record *record);

#ifdef __cplusplus
}
#endif

#endif /* CPEX_RESULT_H */
