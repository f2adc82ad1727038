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

#include "cpex/manager.h"
#include "core/rcu.h"
#include "core/workers.h"
#include "model/capabilities.h"
#include "util/errors.h"

/* ------------------------------------------------------------------ */
/* Plugins                                                             */
/* ------------------------------------------------------------------ */

/**
 * A registered plugin: trusted configuration (from YAML or the host, never
 * from the plugin), the plugin's registration and its lifecycle state.
 * Reference counted: snapshots and background work hold references; the
 * last release shuts it down (if needed) and destroys it.
 */
typedef struct cpex_plugin {
    _Atomic long refs;
    uint64_t id;          /* unique per registration in this process */
    uint64_t seq;         /* registration order in its manager */
    char *name;
    size_t name_len;      /* strlen(name): the call struct carries it */
    char *kind;
    char *origin;
    char *description;
    uint32_t mode;
    int32_t priority;
    cpex_on_error on_error;
    double timeout;       /* effective, seconds */
    int64_t timeout_ns;
    cpex_caps caps;
    char **capabilities;  /* NULL-terminated */
    char **hooks;         /* wired hooks, NULL-terminated */
    json_t *config;       /* owned reference; JSON null when none */
    cpex_plugin_registration reg; /* copied from the factory or host */
    cpex_handler_reg *handlers;   /* owned copy of the wired handlers */
    size_t handler_count;
    void (*release)(void *data);
    void *release_data;
    _Atomic int state;    /* cpex_plugin_state */
    _Atomic int disabled; /* set once by on_error: disable */
    pthread_mutex_t lock; /* guards reason */
    char *reason;         /* why failed or disabled */
    struct cpex_manager *manager; /* for logging only; not a reference */
} cpex_plugin;

cpex_plugin *cpex_plugin_ref(cpex_plugin *plugin);
void cpex_plugin_unref(cpex_plugin *plugin);
/**
 * Check a registration as a hostile plugin could present it: its size,
 * at least one handler, no NULL function, no empty hook name, no two
 * handlers for one hook. `from` names its origin in messages. Used by the
 * manager for every plugin, and by the loader before it filters handlers
 * by a `#` fragment (so a fragment cannot hide a broken list).
 */
cpex_status cpex_registration_check(const cpex_plugin_registration *reg, const char *from,
                                    const cpex_where *where, cpex_error *err);

/** Set state to disabled (once) with a reason; logs it. */
void cpex_plugin_disable(cpex_plugin *plugin, const char *reason);
/** Replace the reason (copied) under the plugin's lock. */
void cpex_plugin_set_reason(cpex_plugin *plugin, const char *reason);

/* ------------------------------------------------------------------ */
/* Registry snapshot (immutable once published)                        */
/* ------------------------------------------------------------------ */

/** One handler wired to one hook. */
typedef struct cpex_hook_entry {
    cpex_plugin *plugin; /* borrowed from the snapshot's plugin list */
    cpex_handler_fn fn;
} cpex_hook_entry;

/** Number of runnable phases (disabled is not one). */
#define CPEX_PHASES 5

/** A hook and its entries, grouped by phase and sorted by priority. */
typedef struct cpex_hook {
    char *name;
    size_t name_len;
    uint64_t hash;
    char *payload_type;          /* bound type or NULL (any) */
    size_t payload_type_len;     /* strlen(payload_type) */
    size_t count;
    cpex_hook_entry *entries;    /* phase-major, then priority, then seq */
    size_t phase_start[CPEX_PHASES + 1];
} cpex_hook;

/** A host-defined payload type, as registered. */
typedef struct cpex_type_slot {
    char *name;
    cpex_payload_type type;
} cpex_type_slot;

/** Hook -> payload type binding. */
typedef struct cpex_binding {
    char *hook;
    char *type;
} cpex_binding;

/** What invokes read: built by writers, published atomically. */
typedef struct cpex_snapshot {
    size_t plugin_count;
    cpex_plugin **plugins;       /* registration order; one reference each */
    size_t hook_count;
    cpex_hook *hooks;
    size_t table_mask;           /* open-addressing table of hook indices + 1 */
    uint32_t *table;
    size_t type_count;
    cpex_type_slot *types;       /* own array; names borrowed from the manager */
} cpex_snapshot;

uint64_t cpex_hash_name(const char *name, size_t len);
/** Build a snapshot for `plugins` (each gets a new reference). NULL on OOM. */
cpex_snapshot *cpex_snapshot_build(cpex_plugin *const *plugins, size_t count,
                                   const cpex_binding *bindings, size_t binding_count,
                                   const cpex_type_slot *types, size_t type_count);
void cpex_snapshot_free(cpex_snapshot *snap);
const cpex_hook *cpex_snapshot_find(const cpex_snapshot *snap, const char *name, size_t len);
const cpex_type_slot *cpex_snapshot_type(const cpex_snapshot *snap, const char *name,
                                         size_t len);

/* ------------------------------------------------------------------ */
/* The manager                                                         */
/* ------------------------------------------------------------------ */

typedef struct cpex_factory_slot {
    char *key;
    cpex_factory factory;
} cpex_factory_slot;

struct cpex_manager {
    cpex_manager_options opts;
    int64_t default_timeout_ns;

    pthread_mutex_t write_lock;          /* serializes every change */
    _Atomic(cpex_snapshot *) snapshot;
    cpex_rcu rcu;

    size_t exact_count;
    cpex_factory_slot *exact;
    size_t scheme_count;
    cpex_factory_slot *schemes;

    size_t type_count;
    cpex_type_slot *types;               /* changed under write_lock; snapshots copy it */

    size_t binding_count;
    cpex_binding *bindings;

    cpex_workers *workers;
    bool init_called;                    /* initialize ran at least once */
    _Atomic int closing;                 /* shutdown began: new invokes fail closed */
    bool shut_down;
    uint64_t next_seq;

    /* background (fire-and-forget) work */
    pthread_mutex_t bg_lock;
    pthread_cond_t bg_idle;
    long bg_pending;
    size_t bg_error_count, bg_error_cap;
    cpex_error_record *bg_errors;
};

/**
 * Who is speaking when a plugin logs outside a handler call (during its
 * create, initialize, shutdown or destroy): set by the manager around those
 * calls on the calling thread, so the host table's log slot can still name
 * the plugin and reach the manager's sink.
 */
typedef struct cpex_log_scope {
    const struct cpex_manager *manager;
    const char *plugin;
    const struct cpex_log_scope *outer; /* the scope to restore */
} cpex_log_scope;
extern _Thread_local const cpex_log_scope *cpex_current_log_scope;

/** Speak as `plugin` of `manager` on this thread until cpex_log_scope_leave. */
static inline void cpex_log_scope_enter(cpex_log_scope *scope, const struct cpex_manager *manager,
                                        const char *plugin)
{
    scope->manager = manager;
    scope->plugin = plugin;
    scope->outer = cpex_current_log_scope;
    cpex_current_log_scope = scope;
}

static inline void cpex_log_scope_leave(const cpex_log_scope *scope)
{
    cpex_current_log_scope = scope->outer;
}

/** Log through the manager's sink (manager may be NULL: stderr). */
void cpex_log(const cpex_manager *manager, uint32_t level, const char *plugin, const char *fmt,
              ...) __attribute__((format(printf, 4, 5)));

/** Monotonic clock in nanoseconds. */
int64_t cpex_now_ns(void);

/* ------------------------------------------------------------------ */
/* Context table internals                                             */
/* ------------------------------------------------------------------ */

typedef struct cpex_ctx_local {
    uint64_t plugin_id;
    char *plugin_name;
    json_t *state;   /* object */
} cpex_ctx_local;

struct cpex_context_table {
    json_t *global;  /* object or NULL */
    size_t count, cap;
    cpex_ctx_local *locals;
};

/** The local state object of a plugin; created when `create`. NULL if absent/OOM. */
json_t *cpex_ctx_local_state(cpex_context_table *table, const cpex_plugin *plugin, bool create);
/** The global object; created when `create`. */
json_t *cpex_ctx_global_state(cpex_context_table *table, bool create);

/* ------------------------------------------------------------------ */
/* Results                                                             */
/* ------------------------------------------------------------------ */

/** Append a soft error record (strings copied). Returns false on OOM. */
bool cpex_records_add(cpex_error_record **records, size_t *count, const char *plugin,
                      const char *code, const char *message, json_t *details);
/** Wrap owned payload data for a result (freed by result cleanup). NULL on OOM. */
cpex_payload *cpex_result_payload_new(uint32_t kind, const char *type_name, void *data,
                                      void (*free_fn)(void *, void *), void *user);
/** A new violation (strings copied; details taken, NULL: {}). NULL on OOM. */
cpex_violation *cpex_violation_new(const char *code, const char *reason, const char *description,
                                   json_t *details, const char *plugin);

/* ------------------------------------------------------------------ */
/* Executor                                                            */
/* ------------------------------------------------------------------ */

/** Run the pipeline of `hook` (non-empty) for one invoke. `custom` is the
 *  registered type of a CPEX_PAYLOAD_CUSTOM payload (the invoke checked it). */
void cpex_execute(cpex_manager *manager, const cpex_snapshot *snap, const cpex_hook *hook,
                  const cpex_payload *payload, const cpex_type_slot *custom,
                  const cpex_extensions *extensions, cpex_context_table *context, bool closing,
                  cpex_pipeline_result *result);


#endif
