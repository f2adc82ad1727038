/*
 * core.h — internal types of the core layer: plugins, the registry
 * snapshot, the manager and one pipeline run. Not installed.
 */
#ifndef CPEX_CORE_CORE_H
#define CPEX_CORE_CORE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "cpex/codes.h"
#include "cpex/manager.h"
#include "core/hook_names.h"
#include "core/hub.h"
#include "core/rcu.h"
#include "core/state.h"
#include "core/registration.h"
#include "core/workers.h"
#include "model/capabilities.h"
#include "util/clock.h"
#include "util/errors.h"
#include "util/log.h"
#include "util/strv.h"

/* ------------------------------------------------------------------ */
/* Plugins                                                             */
/* ------------------------------------------------------------------ */

/**
 * A registered plugin: trusted configuration (from YAML or the host, never
 * from the plugin), the plugin's registration and its lifecycle state.
 * Reference counted: snapshots and background work hold references; the
 * last release shuts it down (if needed) and destroys it.
 */
typedef struct cpex__plugin {
    _Atomic long refs;
    uint64_t id;  /* unique per registration in this process */
    uint64_t seq; /* registration order in its manager */
    char *name;
    size_t name_len; /* strlen(name): the call struct carries it */
    char *kind;
    char *origin;
    char *isolation; /* how an isolated plugin runs (factory's text), or NULL */
    char *description;
    uint32_t mode;
    int32_t priority;
    cpex_on_error on_error;
    double timeout; /* effective, seconds */
    int64_t timeout_ns;
    uint64_t timeout_ticks; /* the same in ticks of util/ticks.h (observed invokes) */
    bool coarse_clock;      /* timed with the coarse clock (see cpex__coarse_min_timeout_ns) */
    cpex__caps caps;
    char **capabilities;          /* NULL-terminated */
    char **hooks;                 /* wired hooks, NULL-terminated */
    json_t *config;               /* owned reference; JSON null when none */
    cpex_plugin_registration reg; /* copied from the factory or host */
    cpex_handler_reg *handlers;   /* owned copy of the wired handlers */
    uint32_t *hook_ids;           /* the interned id of each handler's hook */
    uint32_t *metric_ids;         /* each handler's metric label id: CPEX__NO_METRIC until a
                                     snapshot first wires it (sinks.c), then kept */
    size_t handler_count;
    void (*release)(void *data);
    void *release_data;
    _Atomic int state;         /* cpex_plugin_state */
    _Atomic int disabled;      /* set once by on_error: disable */
    pthread_mutex_t lock;      /* guards reason */
    char *reason;              /* why failed or disabled */
    cpex__hub *hub;            /* the manager's log and background bookkeeping (a reference) */
    _Atomic int inflight;      /* handler calls on worker threads running now */
    _Atomic int shutdown_owed; /* abandoned while initialized: the last unref shuts it down */
    /* ---- routing and reload ---- */
    bool from_config;  /* loaded from a configuration: a reload may replace it */
    char *fingerprint; /* its configured entry (apply.h; reload keeps it when equal); NULL: none */
    char *state_ns;    /* namespace of its state keys; NULL: its name cannot be one */
    size_t state_ns_len;
    /* observation (observe.h) */
    struct cpex__rec_static *rec; /* what its execution records share (NULL on OOM: none) */
    bool sink_all;                /* with reg.verdict: an audit sink for every hook */
    bool api_sink;                /* registered with cpex_manager_register_sink */
    char **sink_hooks;            /* with reg.verdict and not sink_all: the hooks it observes */
} cpex__plugin;

cpex__plugin *cpex__plugin_ref(cpex__plugin *plugin);
void cpex__plugin_unref(cpex__plugin *plugin);
/** Set state to disabled (once) with a reason; logs it. True when this call disabled it. */
bool cpex__plugin_disable(cpex__plugin *plugin, const char *reason);
/** Replace the reason (copied) under the plugin's lock. */
void cpex__plugin_set_reason(cpex__plugin *plugin, const char *reason);

/* ------------------------------------------------------------------ */
/* Registry snapshot (immutable once published)                        */
/* ------------------------------------------------------------------ */

/** One handler wired to one hook. */
typedef struct cpex__hook_entry {
    cpex__plugin *plugin; /* borrowed from the snapshot's plugin list */
    cpex_handler_fn fn;
} cpex__hook_entry;

/** How long shutdown waits past the latest background deadline before it
 *  abandons handlers that are still running (and free stops waiting for
 *  the threads inside them). */
#define CPEX__ABANDON_GRACE_NS 1000000000LL

/** Threads the worker pool may add beyond worker_threads while some are stuck in hung handlers. */
#define CPEX__EXTRA_WORKERS 16u

/** Number of runnable phases (disabled is not one). */
#define CPEX_PHASES 5

/** A hook and its entries, grouped by phase and sorted by priority. */
typedef struct cpex__hook {
    const char *name; /* borrowed from the manager's hook names */
    size_t name_len;
    uint64_t hash;
    uint32_t id;              /* the name's id */
    const char *payload_type; /* bound type or NULL (any); borrowed */
    size_t payload_type_len;  /* strlen(payload_type) */
    uint32_t
        payload_builtin; /* CPEX_PAYLOAD_CMF / _JSON when payload_type is "cmf" / "json", else 0 */
    size_t count;
    cpex__hook_entry *entries; /* phase-major, then priority, then seq */
    size_t phase_start[CPEX_PHASES + 1];
    /* observation, set by cpex__snapshot_observe (observe.h) */
    const uint32_t *metric_ids; /* each entry's metric label id */
    uint32_t metric_id;         /* the hook's own */
    uint32_t sink_count;
    cpex__plugin *const *sinks; /* audit sinks observing it, in registration order */
    /* its execution records' start: made on first use (cpex__hook_template), freed with
       the snapshot */
    _Atomic(const struct cpex__rec_template *) rec_template;
} cpex__hook;

/** A host-defined payload type, as registered. */
typedef struct cpex__type_slot {
    char *name;
    cpex_payload_type type;
} cpex__type_slot;

/** What invokes read: built by writers, published atomically. */
typedef struct cpex__snapshot {
    size_t plugin_count;
    cpex__plugin **plugins; /* registration order; one reference each */
    size_t hook_count;
    cpex__hook *hooks;
    size_t table_mask; /* open-addressing table of hook indices + 1 */
    uint32_t *table;
    size_t id_count;          /* hook names known when it was built */
    const cpex__hook **by_id; /* hook name id -> its hook, or NULL (no handler) */
    size_t type_count;
    cpex__type_slot *types;              /* own array; names borrowed from the manager */
    uint64_t generation;                 /* advances by one with every publish */
    struct cpex__route_state *routing;   /* routes, conditions, route cache; NULL: unrouted */
    struct cpex__snap_obs *obs;          /* observation wiring (observe.h); NULL until wired */
    bool any_sinks;                      /* some audit sink observes some hook */
    uint64_t uid;                        /* unique in the process (registry.c) */
    struct cpex__snapshot *retired_next; /* replaced without an RCU wait (publish.c) */
} cpex__snapshot;

uint64_t cpex__hash_name(const char *name, size_t len);
/**
 * Build a snapshot for `plugins` (each gets a new reference), their hooks
 * indexed by the ids of `names`, which also tells each hook's payload type.
 * Linear in the handlers (plus a sort per hook). NULL on OOM.
 */
cpex__snapshot *cpex__snapshot_build(cpex__plugin *const *plugins, size_t count,
                                     const cpex__hook_names *names, const cpex__type_slot *types,
                                     size_t type_count);
void cpex__snapshot_free(cpex__snapshot *snap);
const cpex__hook *cpex__snapshot_find(const cpex__snapshot *snap, const char *name, size_t len);
const cpex__type_slot *cpex__snapshot_type(const cpex__snapshot *snap, const char *name,
                                           size_t len);

/* ------------------------------------------------------------------ */
/* The manager                                                         */
/* ------------------------------------------------------------------ */

/**
 * Whether `seconds` is in the range every handler timeout must be in
 * (CPEX_TIMEOUT_MIN to CPEX_TIMEOUT_MAX, cpex/manager.h); NaN is not.
 */
static inline bool cpex__timeout_valid(double seconds)
{
    return seconds >= CPEX_TIMEOUT_MIN && seconds <= CPEX_TIMEOUT_MAX;
}

typedef struct cpex__factory_slot {
    char *key;
    cpex_factory factory;
} cpex__factory_slot;

/* The manager-wide settings a configuration may override, as the host's
 * options set them: a reload starts again from these (reload.c). */
typedef struct cpex__settings_base {
    bool deny_unknown_hooks;
    bool short_circuit;
    int execution_records; /* as cpex_manager_options: 0 off, 1 on */
    int metrics;
    uint32_t audit_queue_size;
    uint32_t audit_overflow;
    double audit_max_wait;
} cpex__settings_base;

struct cpex_manager {
    cpex_manager_options opts;
    cpex__settings_base base; /* the host's settings (never changed after creation) */
    cpex__hub *hub;           /* log sink and background work; outlives the manager
                                            while abandoned handlers hold it */
    int64_t default_timeout_ns;

    pthread_mutex_t write_lock; /* serializes every change */
    _Atomic(cpex__snapshot *) snapshot;
    /* Registrations wait in `pending` until the next publish (publish.c):
       every reader of `snapshot` calls cpex__mgr_sync first. 0: nothing
       pending; CPEX__PENDING; CPEX__PENDING_RETRY (the last publish ran
       out of memory: readers retry it when the lock is free, never wait). */
    _Atomic int dirty;
    /* Copied out of `snapshot` when it is stored (publish.c), so an invoke
       of a hook with nothing to run can answer from them without entering
       a read section (invoke.c): its uid and its generation. */
    _Atomic uint64_t live_uid;
    _Atomic uint64_t live_generation;
    cpex__rcu rcu;

    size_t exact_count;
    cpex__factory_slot *exact;
    size_t scheme_count;
    cpex__factory_slot *schemes;

    size_t type_count;
    cpex__type_slot *types; /* changed under write_lock; snapshots copy it */

    cpex__hook_names names; /* every hook name seen, with its payload type */

    cpex__workers *workers;
    _Atomic bool init_called;        /* initialize ran at least once (written under write_lock) */
    _Atomic int closing;             /* shutdown began: new invokes fail closed */
    _Atomic bool shut_down;          /* written under write_lock, read by queries */
    _Atomic bool deny_unknown_hooks; /* unknown_hook deny: set once, never cleared */
    _Atomic bool short_circuit;      /* short_circuit_on_deny: the option, then the last
                                            configuration that set it */
    uint64_t next_seq;
    /* ---- routing and reload (routing.h, reload.c, watch.c) ---- */
    struct cpex__policy *policy;       /* current routing; under write_lock; NULL: none */
    uint64_t generation;               /* of the last publish; under write_lock */
    struct cpex__reload_state *reload; /* counters, callback, watcher */

    /* observation (observe.h) */
    _Atomic uint32_t obs_flags; /* CPEX__OBS_RECORDS | CPEX__OBS_METRICS */
    size_t sink_count;          /* sinks registered from code (write_lock) */
    cpex__plugin **sinks;

    /* deferred publishing (publish.c), under write_lock */
    cpex__plugin **pending; /* registered, not yet published: one reference each */
    size_t pending_count, pending_cap;
    bool publishing;         /* publishing a snapshot (lock held): a log sink that
                        reads the registry meanwhile does not publish the
                        pending registrations from inside */
    cpex__snapshot *retired; /* replaced by a reader's publish: freed after the next RCU wait */
    size_t retired_count;
    _Atomic(const void *) writer; /* the token of the thread that holds write_lock, or NULL */
};

/** Take / release write_lock (the thread is known as its holder: cpex__mgr_sync). */
void cpex__mgr_lock(cpex_manager *m);
void cpex__mgr_unlock(cpex_manager *m);
/** Publish the registrations still pending (slow path of cpex__mgr_sync). */
void cpex__mgr_sync_slow(cpex_manager *m);

/**
 * Make every registration that cpex_manager_register accepted visible in
 * m->snapshot. Every reader of the snapshot outside the write lock calls it
 * first (inside the lock, cpex__mgr_current). One load when nothing waits.
 */
#define CPEX__PENDING 1
#define CPEX__PENDING_RETRY 2
static inline void cpex__mgr_sync(cpex_manager *m)
{
    if (__builtin_expect(atomic_load_explicit(&m->dirty, memory_order_acquire), 0))
        cpex__mgr_sync_slow(m);
}

/**
 * Who is speaking when a plugin logs outside a handler call (during its
 * create, initialize, shutdown or destroy): set by the manager around those
 * calls on the calling thread, so the host table's log slot can still name
 * the plugin and reach the manager's sink.
 */
typedef struct cpex__log_scope {
    const cpex__hub *hub;
    const char *plugin;
    const struct cpex__log_scope *outer; /* the scope to restore */
} cpex__log_scope;
extern _Thread_local const cpex__log_scope *cpex__current_log_scope;

/** Speak as `plugin` through `hub` on this thread until cpex__log_scope_leave. */
static inline void cpex__log_scope_enter(cpex__log_scope *scope, const cpex__hub *hub,
                                         const char *plugin)
{
    scope->hub = hub;
    scope->plugin = plugin;
    scope->outer = cpex__current_log_scope;
    cpex__current_log_scope = scope;
}

static inline void cpex__log_scope_leave(const cpex__log_scope *scope)
{
    cpex__current_log_scope = scope->outer;
}

/** The manager's log sink (NULL manager: standard error). */
static inline const cpex__log_sink *cpex__sink_of(const struct cpex_manager *manager)
{
    return manager ? cpex__hub_sink(manager->hub) : NULL;
}

/* ------------------------------------------------------------------ */
/* Context table internals                                             */
/* ------------------------------------------------------------------ */

typedef struct cpex__ctx_local {
    uint64_t plugin_id;
    char *plugin_name;
    json_t *state; /* object */
} cpex__ctx_local;

struct cpex_context_table {
    json_t *global; /* object or NULL */
    size_t count, cap;
    cpex__ctx_local *locals;
};

/** The local state object of a plugin; created when `create`. NULL if absent/OOM. */
json_t *cpex__ctx_local_state(cpex_context_table *table, const cpex__plugin *plugin, bool create);
/** The global object; created when `create`. */
json_t *cpex__ctx_global_state(cpex_context_table *table, bool create);

/* ------------------------------------------------------------------ */
/* Results                                                             */
/* ------------------------------------------------------------------ */

/** Whether libcpex may fill `result`: there, and at least the first layout. */
static inline bool cpex__result_fillable(const cpex_pipeline_result *result)
{
    return result && result->struct_size >= CPEX_PIPELINE_RESULT_SIZE_V1;
}

/**
 * Empty a fillable result, keeping the caller's struct_size: field by
 * field (every invoke does this; a memset of the caller's size costs a
 * call). A field appended after the first layout is written only where
 * the caller's size covers it.
 */
static inline void cpex__result_reset_v1(cpex_pipeline_result *r)
{
    r->continue_processing = true;
    r->violation = NULL;
    r->payload_modified = false;
    r->modified_payload = NULL;
    r->extensions_modified = false;
    r->extensions = NULL;
    r->metadata = NULL;
    r->error_count = 0;
    r->errors = NULL;
    r->context = NULL;
    if (r->struct_size >= CPEX_PIPELINE_RESULT_SIZE_V2)
        r->no_plugin_ran = false;
}

static inline void cpex__result_reset(cpex_pipeline_result *r)
{
    cpex__result_reset_v1(r);
    if (r->struct_size >= CPEX_PIPELINE_RESULT_SIZE_EXECUTIONS) {
        r->execution_count = 0;
        r->executions = NULL;
        r->execution_size = 0;
    }
}
/** Append a soft error record with a record code of cpex/codes.h (strings
 *  copied, details taken). Returns false on OOM. */
bool cpex__records_add(cpex_error_record **records, size_t *count, const char *plugin,
                       cpex_code code, const char *message, json_t *details);
/** Append copies of the `n` records of `from`, moving each one's details
 *  over (from[i].details becomes NULL). A record that does not fit in
 *  memory is lost. */
void cpex__records_move(cpex_error_record **records, size_t *count, cpex_error_record *from,
                        size_t n);
/** Wrap owned payload data for a result (freed by result cleanup). NULL on OOM. */
cpex_payload *cpex__result_payload_new(uint32_t kind, const char *type_name, void *data,
                                       void (*free_fn)(void *, void *), void *user);
/** A new violation with any code (a plugin's own deny; strings copied;
 *  details taken, NULL: {}). NULL on OOM. */
cpex_violation *cpex__violation_new(const char *code, const char *reason, const char *description,
                                    json_t *details, const char *plugin);
/** A violation the pipeline makes: a violation code of cpex/codes.h, no
 *  description (details taken, NULL: {}; plugin may be NULL). NULL on OOM. */
cpex_violation *cpex__pipeline_violation(cpex_code code, const char *reason, json_t *details,
                                         const char *plugin);

/* ------------------------------------------------------------------ */
/* Executor                                                            */
/* ------------------------------------------------------------------ */

/** Run the pipeline of `hook` (non-empty) for one invoke. `custom` is the
 *  registered type of a CPEX_PAYLOAD_CUSTOM payload (the invoke checked it).
 *  Whether the manager is closing is read here (m->closing). */
void cpex__execute(cpex_manager *manager, const cpex__snapshot *snap, const cpex__hook *hook,
                   const cpex_payload *payload, const cpex__type_slot *custom,
                   const cpex_extensions *extensions, cpex_context_table *context,
                   cpex_pipeline_result *result);


#endif
