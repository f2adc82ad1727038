/*
 * cpex/observe.h — observability: audit sinks registered from code, and
 * per-plugin metrics (a snapshot for the host, Prometheus text for a
 * scraper). Execution records are on the pipeline result (result.h);
 * docs/observability.md explains all three.
 */
#ifndef CPEX_OBSERVE_H
#define CPEX_OBSERVE_H

#include "cpex/export.h"

#include <stddef.h>
#include <stdint.h>

#include "cpex/abi.h"
#include "cpex/error.h"
#include "cpex/manager.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------ */
/* Audit sinks from code                                               */
/* ------------------------------------------------------------------ */

/**
 * An audit sink the host registers from code: a verdict handler (abi.h,
 * cpex_verdict_fn) that sees the final verdict of every invoke of the
 * hooks it observes. Fill with cpex_sink_spec_init, then set at least
 * `name` and `verdict`.
 */
typedef struct cpex_sink_spec {
    uint32_t struct_size;
    const char *name;        /* required; unique among plugins and sinks */
    cpex_verdict_fn verdict; /* required */
    void *instance;          /* passed to `verdict` and `destroy` */
    /** Optional: called once when the sink is removed (unregistered, or the
     *  manager freed), after its last verdict call returned. */
    void (*destroy)(void *instance);
    const char *const *hooks; /* observe only these hooks; NULL: every hook */
    size_t hook_count;
    const char *const *capabilities; /* which extension fields it reads (docs/extensions.md) */
    size_t capability_count;
    double timeout;         /* seconds per verdict call; 0: the manager's default */
    cpex_on_error on_error; /* ignore (default) or disable; fail counts as ignore: a
                                        verdict is final, a sink cannot halt anything */
} cpex_sink_spec;


/** Fill `spec` with defaults (name and verdict NULL, on_error ignore). */
CPEX_API void cpex_sink_spec_init(cpex_sink_spec *spec);

/**
 * Register an audit sink from code. It is the manager's until it is
 * unregistered or the manager freed, and it survives every configuration
 * load and reload (a sink from YAML comes and goes with its plugin).
 * Ownership: the manager takes `instance` whether this succeeds or fails:
 * on failure `destroy` (when set) is called before returning.
 * Errors: CPEX_E_INVALID (no name or verdict, bad spec), CPEX_E_CONFIG
 * (unknown capability), CPEX_E_EXISTS (the name is taken), CPEX_E_STATE
 * (after shutdown), CPEX_E_NOMEM.
 * [thread: any; a change: never from inside a handler]
 */
CPEX_API cpex_status cpex_manager_register_sink(cpex_manager *manager, const cpex_sink_spec *spec,
                                                cpex_error *err);

/**
 * Remove a sink registered with cpex_manager_register_sink. Verdicts
 * already queued for it are still delivered; `destroy` runs after the last.
 * Errors: CPEX_E_NOT_FOUND.
 */
CPEX_API cpex_status cpex_manager_unregister_sink(cpex_manager *manager, const char *name,
                                                  cpex_error *err);

/* ------------------------------------------------------------------ */
/* Metrics                                                             */
/* ------------------------------------------------------------------ */

/**
 * Latency buckets: fixed and log-scale. Bucket i counts the calls that
 * took at most cpex_stats_bucket_le_ns(i) = 2^(10+i) ns (1.024 µs, 2.048
 * µs, ... about 17 s) and more than the bucket before; the last bucket has
 * no upper bound.
 */
#define CPEX_STATS_BUCKETS 26

/** What a plugin stats row counts. */
typedef enum cpex_stats_kind {
    CPEX_STATS_HANDLER = 0, /* a plugin's handler calls on one hook */
    CPEX_STATS_SINK = 1     /* an audit sink's verdict calls for one hook */
} cpex_stats_kind;

/** Counts of one plugin (or sink) on one hook, summed over every thread. */
typedef struct cpex_plugin_stats {
    uint32_t struct_size;
    uint32_t kind;      /* enum cpex_stats_kind */
    const char *plugin; /* the operator's name (a plugin's, or a sink's) */
    const char *hook;
    uint64_t invocations; /* calls dispatched, every outcome */
    uint64_t allows;      /* completed and allowed (a sink's delivered verdicts) */
    uint64_t denies;      /* completed with a deny (dropped ones included) */
    uint64_t errors;      /* CPEX_ERROR, an unknown decision, or not initialized */
    uint64_t timeouts;
    uint64_t disables;       /* times one of these calls disabled the plugin (on_error) */
    uint64_t cancelled;      /* concurrent calls no longer awaited */
    uint64_t not_started;    /* worker-thread calls still queued at their deadline */
    uint64_t duration_count; /* calls that were timed (every call that ran) */
    uint64_t duration_sum_ns;
    uint64_t buckets[CPEX_STATS_BUCKETS]; /* per bucket, not cumulative */
} cpex_plugin_stats;

/** Counts of one hook. */
typedef struct cpex_hook_stats {
    uint32_t struct_size;
    uint32_t reserved;
    const char *hook;
    uint64_t invokes; /* invokes that ran its pipeline (it had a plugin or a sink) */
    uint64_t denies;  /* of those, the ones denied */
} cpex_hook_stats;

/**
 * A snapshot of a manager's metrics, in one allocation owned by the
 * caller (cpex_stats_free). The arrays' strides are given: read element i
 * with cpex_stats_plugin() / cpex_stats_hook().
 */
typedef struct cpex_stats {
    uint32_t struct_size;
    uint32_t metrics_on; /* 1 when the manager counts (metrics option or setting) */
    size_t plugin_count; /* rows: plugins and sinks by hook, registration order */
    const cpex_plugin_stats *plugins;
    uint32_t plugin_stats_size;
    uint32_t hook_stats_size;
    size_t hook_count;
    const cpex_hook_stats *hooks;
    /* the audit queue (counted whether or not metrics are on) */
    uint64_t audit_enqueued;  /* verdicts handed to the queue */
    uint64_t audit_delivered; /* verdicts whose sinks were all called */
    uint64_t audit_dropped;   /* verdicts lost: the queue was full past the wait, or drop mode */
    uint32_t audit_depth;     /* verdicts waiting now */
    uint32_t audit_capacity;
} cpex_stats;

/**
 * A snapshot of the metrics: every plugin and sink with its hooks (those
 * registered now, zeros included, and those gone that counted something),
 * every hook that ran. Summing the per-thread counters takes no lock an
 * invoke waits for. Errors: CPEX_E_INVALID, CPEX_E_NOMEM.
 */
CPEX_API cpex_status cpex_manager_stats(const cpex_manager *manager, cpex_stats **out);

/** Free a snapshot. NULL is allowed. */
CPEX_API void cpex_stats_free(cpex_stats *stats);

/** Row `index` of a snapshot's plugins, or NULL past the end. */
static inline const cpex_plugin_stats *cpex_stats_plugin(const cpex_stats *stats, size_t index)
{
    if (!stats || index >= stats->plugin_count)
        return NULL;
    return (const cpex_plugin_stats *)(const void *)((const char *)stats->plugins +
                                                     index * stats->plugin_stats_size);
}

/** Row `index` of a snapshot's hooks, or NULL past the end. */
static inline const cpex_hook_stats *cpex_stats_hook(const cpex_stats *stats, size_t index)
{
    if (!stats || index >= stats->hook_count)
        return NULL;
    return (const cpex_hook_stats *)(const void *)((const char *)stats->hooks +
                                                   index * stats->hook_stats_size);
}

/** Upper bound of latency bucket `index` in nanoseconds (INT64_MAX for the last). */
CPEX_API int64_t cpex_stats_bucket_le_ns(size_t index);

/**
 * The q-quantile (0 < q < 1; 0.5 is the median) of a row's latencies, in
 * nanoseconds, estimated from the buckets (linear inside a bucket, as
 * Prometheus' histogram_quantile does); -1 when nothing was timed.
 */
CPEX_API double cpex_plugin_stats_quantile(const cpex_plugin_stats *row, double q);

/**
 * The metrics in the Prometheus text exposition format (version 0.0.4):
 * HELP and TYPE for every family, label values escaped. A new
 * NUL-terminated string; free it with free(). NULL on OOM or a NULL
 * manager. docs/observability.md lists the families.
 */
CPEX_API char *cpex_manager_metrics_text(const cpex_manager *manager);

#ifdef __cplusplus
}
#endif

#endif /* CPEX_OBSERVE_H */
