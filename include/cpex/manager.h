/*
 * cpex/manager.h — the plugin manager: factories, configuration,
 * registration, lifecycle, queries and invoke.
 *
 * Ownership: a function here that takes ownership of something (a factory's
 * data, a registration's instance, a context table, custom payload data)
 * takes it whether it succeeds or fails; docs/abi.md has the table.
 *
 * Thread safety: cpex_manager_invoke, the queries and
 * cpex_manager_wait_background may be called from any number of threads at
 * once. Changes (load, register, unregister, initialize, shutdown) are
 * serialized by the manager and wait for invokes in flight to finish with
 * the old registry; never call them from inside a handler. Nor
 * cpex_manager_hook and cpex_manager_schemes: they take the same lock, so
 * inside a handler they wait for a change that waits for that handler.
 * Resolve hook handles at start-up.
 */
#ifndef CPEX_MANAGER_H
#define CPEX_MANAGER_H

#include "cpex/export.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <jansson.h>

#include "cpex/abi.h"
#include "cpex/error.h"
#include "cpex/extensions.h"
#include "cpex/context.h"
#include "cpex/factory.h"
#include "cpex/payload.h"
#include "cpex/result.h"
#include "cpex/state.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Opaque manager. */
typedef struct cpex_manager cpex_manager;

/** What a plugin does when it fails (enum values fixed). */
typedef enum cpex_on_error {
    CPEX_ON_ERROR_FAIL = 0,   /* halt the pipeline (where the phase can halt) */
    CPEX_ON_ERROR_IGNORE = 1, /* record a soft error and go on */
    CPEX_ON_ERROR_DISABLE = 2 /* record, go on, never call this plugin again */
} cpex_on_error;

/**
 * A log sink. `level` is enum cpex_log_level; `plugin` may be NULL.
 * May be called from any thread.
 */
typedef void (*cpex_log_fn)(void *user, uint32_t level, const char *plugin, const char *message);

/**
 * The range of every handler timeout, in seconds: a plugin's `timeout:`,
 * `plugin_settings.plugin_timeout`, cpex_manager_options.default_timeout
 * and cpex_plugin_spec.timeout. A value outside it (negative, zero, below
 * a millisecond, above a day, NaN, infinite) is refused where it is given:
 * a configuration error naming the key, or CPEX_E_INVALID from the call.
 */
#define CPEX_TIMEOUT_MIN 0.001
#define CPEX_TIMEOUT_MAX 86400.0

/**
 * What an invoke does when no plugin is configured to run for its hook
 * (cpex_manager_options.unknown_hook, `plugin_settings.unknown_hook`).
 */
typedef enum cpex_unknown_hook {
    /** Allow, payload untouched, with no_plugin_ran set (the framework's contract). */
    CPEX_UNKNOWN_HOOK_ALLOW = 0,
    /**
     * Deny with the violation code `unknown_hook`: for hosts whose hook
     * names come from outside, where a mistyped name must not pass
     * unchecked. A hook whose plugins were all disabled at run time
     * (on_error: disable) is still known and stays allowed.
     */
    CPEX_UNKNOWN_HOOK_DENY = 1
} cpex_unknown_hook;

/** Manager settings. Fill with cpex_manager_options_init, then change. */
typedef struct cpex_manager_options {
    uint32_t struct_size;
    double default_timeout; /* seconds per handler call, CPEX_TIMEOUT_MIN to _MAX; default 30 */
    cpex_on_error default_on_error; /* for plugins registered without one; default fail */
    uint32_t worker_threads;        /* concurrent and background phases; default 2 */
    bool short_circuit_on_deny;     /* an explicit concurrent deny stops waiting; default true */
    cpex_log_fn log;                /* NULL: warnings and errors go to stderr */
    void *log_user;
    uint32_t log_level; /* lowest level passed to `log`; default CPEX_LOG_WARN */
    /**
     * Since 0.2: the most worker threads the pool may grow to while some of
     * its threads are stuck inside handlers past their deadline, so that a
     * hung plugin cannot starve the others. Default (0): worker_threads +
     * 16. A value below worker_threads means worker_threads (no growth).
     */
    uint32_t max_worker_threads;
    /* Appended (hosts built before pass a smaller struct_size): */
    const cpex_state_options *state; /* plugin state (cpex/state.h); NULL: the memory
                                        backend, unless a configuration's
                                        plugin_settings.state chooses one. Copied. */
    /** The cpex-worker program that runs plugins configured with
        `isolation: process`; NULL: $CPEX_WORKER, else found beside libcpex
        (docs/isolation.md). Copied by cpex_manager_new. */
    const char *worker_path;
    /* ---- appended (a caller built before them gets the defaults) ---- */
    /**
     * cpex_unknown_hook; default allow. A configuration that sets
     * `plugin_settings.unknown_hook: deny` turns deny on for the whole
     * manager when it is published; nothing turns it off again.
     */
    uint32_t unknown_hook;
    /**
     * true: refuse a plugin library others could replace (see
     * docs/configuration.md, "Plugin files"), as if every configuration
     * set `plugin_settings.strict_permissions: true`; default false (warn).
     */
    bool strict_permissions;

    /* ---- observability (since 0.2; docs/observability.md) ---- */
    /**
     * Fill cpex_pipeline_result.executions (one record per handler call).
     * Default false; plugin_settings.execution_records of a loaded
     * configuration overrides it.
     */
    bool execution_records;
    /**
     * Count calls, outcomes and latencies per plugin and hook
     * (cpex_manager_stats, cpex_manager_metrics_text). Default false;
     * plugin_settings.metrics overrides it.
     */
    bool metrics;
    /** Verdicts waiting for the audit sinks, at most; default 1024 (1 .. 1048576). */
    uint32_t audit_queue_size;
    /** enum cpex_audit_overflow: what an invoke does when that queue is full; default block. */
    uint32_t audit_overflow;
    /**
     * With CPEX_AUDIT_BLOCK: how long an invoke waits for room, in seconds,
     * before it drops its verdict (counted); default 1. Never waits for a
     * sink stuck in a call past its deadline.
     */
    double audit_max_wait;
} cpex_manager_options;

/** What an invoke does with its verdict when the audit queue is full. */
typedef enum cpex_audit_overflow {
    CPEX_AUDIT_BLOCK = 0, /* wait for room (up to audit_max_wait), then drop and count */
    CPEX_AUDIT_DROP = 1   /* drop at once and count: never wait */
} cpex_audit_overflow;

/** The YAML name of a mode ("sequential", …); "unknown" for other values. */
CPEX_API const char *cpex_mode_name(uint32_t mode);

/** The YAML name of an on_error value ("fail", …); "unknown" for other values. */
CPEX_API const char *cpex_on_error_name(cpex_on_error on_error);

/** Fill `options` with the defaults. */
CPEX_API void cpex_manager_options_init(cpex_manager_options *options);

/**
 * Create a manager (NULL options: defaults). Starts its worker threads.
 * Errors: CPEX_E_INVALID, CPEX_E_NOMEM.
 */
CPEX_API cpex_status cpex_manager_new(const cpex_manager_options *options, cpex_manager **out,
                                      cpex_error *err);

/**
 * Shut down (if not yet), destroy every plugin, release factories and free
 * the manager. NULL is allowed.
 */
CPEX_API void cpex_manager_free(cpex_manager *manager);

/**
 * Register a factory for the exact kind `kind` (copied). The manager copies
 * the struct and takes ownership of `factory->data`: it calls
 * `factory->destroy(data)` when the factory is replaced, when the manager is
 * freed, and — if this call fails — before it returns. Replaces an earlier
 * one for the same kind (and destroys it).
 * Errors: CPEX_E_INVALID (no kind, a factory without create or with a
 * struct_size below sizeof(cpex_factory)), CPEX_E_NOMEM.
 */
CPEX_API cpex_status cpex_manager_register_factory(cpex_manager *manager, const char *kind,
                                                   const cpex_factory *factory, cpex_error *err);

/**
 * Register a factory for every kind "<scheme>:…" (scheme copied; must be
 * non-empty and contain no ':'). Replaces an earlier one for the scheme.
 * Takes ownership of `factory->data` as cpex_manager_register_factory does,
 * on failure too. Errors: CPEX_E_INVALID, CPEX_E_NOMEM.
 */
CPEX_API cpex_status cpex_manager_register_scheme(cpex_manager *manager, const char *scheme,
                                                  const cpex_factory *factory, cpex_error *err);

/**
 * The registered schemes, sorted, as a NULL-terminated array of strings.
 * Free with cpex_strv_free. NULL on OOM.
 * [thread: any, but not inside a handler: takes the manager's write lock]
 */
CPEX_API char **cpex_manager_schemes(const cpex_manager *manager);

/** Free a NULL-terminated array of strings returned by libcpex. */
CPEX_API void cpex_strv_free(char **strings);

/**
 * Register a host-defined payload type (see payload.h). CPEX_E_EXISTS if
 * the name is taken ("cmf" and "json" are built in).
 */
CPEX_API cpex_status cpex_manager_register_payload_type(cpex_manager *manager,
                                                        const cpex_payload_type *type,
                                                        cpex_error *err);

/**
 * Bind a hook name to a payload type name. The cmf.* hooks are bound to
 * "cmf" from the start, except cmf.http_request, bound to "json" (its
 * payload is {method, path, query, host, scheme}; docs/pipeline.md). A handler whose declared payload type differs from
 * its hook's is refused at registration; an invoke whose payload type
 * differs is denied with payload_type_mismatch. A hook not bound is bound
 * by the first handler that declares a type.
 */
CPEX_API cpex_status cpex_manager_define_hook(cpex_manager *manager, const char *hook,
                                              const char *payload_type, cpex_error *err);

/**
 * Load a YAML configuration file: parse it, check it (every problem is
 * reported, each naming file, line, column, plugin and key), create every
 * plugin through its factory, and publish them all at once. Loads add to
 * what is registered; a file with routing keys (routes, groups, global,
 * routing settings, conditions) replaces the routing of an earlier load
 * (cpex/reload.h replaces a whole configuration). If anything fails, nothing is published and every
 * plugin created is destroyed. If the manager is already initialized, the
 * new plugins are initialized before they are published.
 * Errors: CPEX_E_IO, CPEX_E_CONFIG, CPEX_E_LOAD, CPEX_E_EXISTS, CPEX_E_PLUGIN,
 * CPEX_E_NOMEM.
 */
CPEX_API cpex_status cpex_manager_load_file(cpex_manager *manager, const char *path,
                                            cpex_error *err);

/**
 * As cpex_manager_load_file, from `len` bytes of YAML. `source` names the
 * text in messages (NULL: "<string>"); `base_dir` is where relative library
 * paths resolve (NULL: the current directory).
 */
CPEX_API cpex_status cpex_manager_load_string(cpex_manager *manager, const char *yaml, size_t len,
                                              const char *source, const char *base_dir,
                                              cpex_error *err);

/** How a plugin registered from code is configured. */
typedef struct cpex_plugin_spec {
    uint32_t struct_size;
    const char *name;                /* required, unique */
    const char *kind;                /* informational; may be NULL */
    uint32_t mode;                   /* enum cpex_mode; default sequential */
    int32_t priority;                /* lower runs first; default 100 */
    cpex_on_error on_error;          /* default: the manager's default */
    double timeout;                  /* seconds, CPEX_TIMEOUT_MIN to _MAX; 0: the manager's */
    const char *const *capabilities; /* names, see docs/extensions.md */
    size_t capability_count;
    const char *const *hooks; /* wire only these hooks; NULL: every handler */
    size_t hook_count;
    const json_t *config; /* copied; what the plugin config query returns */
    /* Appended (hosts built before pass a smaller struct_size): */
    const char *state_namespace; /* the namespace of its state keys; NULL: its name */
} cpex_plugin_spec;

/** Fill `spec` with defaults (name NULL). */
CPEX_API void cpex_plugin_spec_init(cpex_plugin_spec *spec);

/**
 * Register a plugin compiled into the host. The registration is copied
 * (its handler array and strings must live until the plugin's destroy).
 * Validated like a dynamic plugin's: at least one handler, no NULL
 * function, no empty hook name, no two handlers for one hook, declared
 * payload types known and matching their hooks.
 * If the manager is initialized, the plugin is initialized now. Every
 * error above is reported by this call. An invoke or query that starts
 * after it returns sees the plugin; registrations in a row are published
 * together, by the first call that reads the registry after them, so n of
 * them cost one registry build, not n.
 *
 * Ownership: the manager takes the registration's instance whether this
 * succeeds or fails. On success it calls `destroy` once, after `shutdown`,
 * when the plugin is unregistered or the manager freed; on every failure
 * (bad spec, bad registration, name taken, unknown payload type, initialize
 * failure, out of memory, NULL manager) it calls `destroy` before
 * returning. Only a registration too small to hold `destroy` (struct_size
 * below CPEX_REGISTRATION_SIZE_1_0) is not destroyed.
 *
 * Errors: CPEX_E_INVALID, CPEX_E_EXISTS, CPEX_E_CONFIG, CPEX_E_TYPE,
 * CPEX_E_LOAD (a registration a plugin could not present: too small, no
 * handlers, a NULL function, …), CPEX_E_STATE (after shutdown),
 * CPEX_E_PLUGIN, CPEX_E_NOMEM.
 */
CPEX_API cpex_status cpex_manager_register(cpex_manager *manager, const cpex_plugin_spec *spec,
                                           const cpex_plugin_registration *registration,
                                           cpex_error *err);

/**
 * Remove a plugin. Invokes in flight finish with it; then it is shut down
 * (if initialized) and destroyed once nothing uses it.
 * Errors: CPEX_E_NOT_FOUND.
 */
CPEX_API cpex_status cpex_manager_unregister(cpex_manager *manager, const char *name,
                                             cpex_error *err);

/**
 * Call initialize on every plugin not yet initialized, in registration
 * order. Every failure is reported (one item each, with the plugin's own
 * message); a failed plugin stays registered in state "failed" and fails
 * closed: each invoke that reaches it treats it as a handler error under
 * its on_error. Calling again retries only what is not initialized.
 * Errors: CPEX_E_PLUGIN, CPEX_E_STATE (after shutdown).
 */
CPEX_API cpex_status cpex_manager_initialize(cpex_manager *manager, cpex_error *err);

/**
 * Wait for background work, then call shutdown on every initialized plugin
 * once, in reverse registration order. After it, invokes see every plugin
 * as not initialized. Idempotent.
 */
CPEX_API void cpex_manager_shutdown(cpex_manager *manager);

/** Whether initialize has succeeded for every plugin and shutdown has not run. */
CPEX_API bool cpex_manager_is_initialized(const cpex_manager *manager);

/** Whether any plugin has a handler wired for `hook` (disabled ones included). */
CPEX_API bool cpex_manager_has_hooks_for(const cpex_manager *manager, const char *hook);

/** Number of registered plugins. */
CPEX_API size_t cpex_manager_plugin_count(const cpex_manager *manager);

/**
 * The plugin names in registration order, NULL-terminated. Free with
 * cpex_strv_free. NULL on OOM.
 */
CPEX_API char **cpex_manager_plugin_names(const cpex_manager *manager);

/** Lifecycle states of a plugin. */
typedef enum cpex_plugin_state {
    CPEX_STATE_CREATED = 0,
    CPEX_STATE_INITIALIZED = 1,
    CPEX_STATE_FAILED = 2, /* initialize failed; see reason */
    CPEX_STATE_SHUT_DOWN = 3
} cpex_plugin_state;

/*
 * The first spellings of the states, kept so that older host code still
 * builds. They shared the prefix CPEX_PLUGIN_ with the create statuses of
 * abi.h; new code uses CPEX_STATE_*.
 */
#define CPEX_PLUGIN_CREATED CPEX_STATE_CREATED
#define CPEX_PLUGIN_INITIALIZED CPEX_STATE_INITIALIZED
#define CPEX_PLUGIN_FAILED CPEX_STATE_FAILED
#define CPEX_PLUGIN_SHUT_DOWN CPEX_STATE_SHUT_DOWN

/**
 * A copy of what the manager knows about one plugin. Owned by the caller;
 * initialize it with CPEX_PLUGIN_INFO_INIT or cpex_plugin_info_init().
 *
 * Growth: `struct_size` is sizeof(cpex_plugin_info) as the caller was
 * compiled, set by the initializers. A later libcpex that appends fields
 * fills only those the caller's size covers (and copies nothing for the
 * others). An info whose struct_size is below CPEX_PLUGIN_INFO_SIZE_V1
 * (never initialized) is refused with CPEX_E_INVALID and not written.
 */
typedef struct cpex_plugin_info {
    uint32_t struct_size; /* sizeof(cpex_plugin_info) of the caller's build */
    char *name;
    char *kind;             /* may be NULL for code-registered plugins */
    char *origin;           /* e.g. the resolved library path; may be NULL */
    char *reported_name;    /* what the plugin calls itself; may be NULL */
    char *reported_version; /* may be NULL */
    char *description;      /* from the configuration; may be NULL */
    uint32_t mode;          /* configured enum cpex_mode */
    int32_t priority;
    cpex_on_error on_error;
    double timeout; /* effective, seconds */
    cpex_plugin_state state;
    bool disabled;       /* disabled at run time by on_error: disable */
    char *reason;        /* why failed or disabled; may be NULL */
    char **hooks;        /* wired hooks, NULL-terminated */
    char **capabilities; /* NULL-terminated */
    json_t *config;      /* a copy of the config block (the caller owns it) */
    /** NULL in process; for `isolation: process`, how the plugin is isolated
        and which protections are in force (one line, from its factory). */
    char *isolation;

    /* ---- audit sinks (since 0.2; docs/observability.md) ---- */
    bool audit_sink; /* it registered a verdict handler: it receives verdicts */
    /** The hooks whose verdicts it receives, NULL-terminated; NULL when it
     *  receives every hook's (or is no sink). */
    char **sink_hooks;
} cpex_plugin_info;

/** The size of the first layout: the least struct_size libcpex fills. */
#define CPEX_PLUGIN_INFO_SIZE_V1 (offsetof(cpex_plugin_info, config) + sizeof(json_t *))
/** The least struct_size whose info says whether the plugin is an audit sink. */
#define CPEX_PLUGIN_INFO_SIZE_SINKS (offsetof(cpex_plugin_info, sink_hooks) + sizeof(char **))

/** Static initializer for an empty info. */
#define CPEX_PLUGIN_INFO_INIT                                                                      \
    {                                                                                              \
        (uint32_t)sizeof(cpex_plugin_info), NULL, NULL, NULL, NULL, NULL, NULL, 0, 0,              \
            CPEX_ON_ERROR_FAIL, 0.0, CPEX_STATE_CREATED, false, NULL, NULL, NULL, NULL, NULL,      \
            false, NULL                                                                            \
    }

/**
 * Make `info` empty and set its struct_size to the caller's sizeof (inline,
 * so the size is the caller's). Frees nothing.
 */
static inline void cpex_plugin_info_init(cpex_plugin_info *info)
{
    memset(info, 0, sizeof *info);
    info->struct_size = (uint32_t)sizeof *info;
}

/**
 * Fill `info` (initialized, or cleaned up after an earlier use; anything it
 * held is overwritten, not freed) with a copy of what is known about plugin
 * `name`. Release with cpex_plugin_info_cleanup.
 * Errors: CPEX_E_INVALID (NULL argument, or an info whose struct_size is
 * below CPEX_PLUGIN_INFO_SIZE_V1: nothing is written), CPEX_E_NOT_FOUND,
 * CPEX_E_NOMEM (the info is left empty).
 */
CPEX_API cpex_status cpex_manager_plugin_info(const cpex_manager *manager, const char *name,
                                              cpex_plugin_info *info);

/**
 * Free what a cpex_plugin_info holds and make it empty (struct_size stays).
 * NULL, and an info that was never initialized, are left alone.
 */
CPEX_API void cpex_plugin_info_cleanup(cpex_plugin_info *info);

/**
 * A copy of the `config:` block of plugin `name` (the caller json_decref's
 * it), or NULL if there is no such plugin or memory is short.
 */
CPEX_API json_t *cpex_manager_plugin_config(const cpex_manager *manager, const char *name);

/**
 * Run hook `hook` on `payload` and `extensions` (either may be NULL)
 * (`cmf.prompt_pre_invoke` / `cmf.prompt_post_invoke` are the hooks
 * `cmf.prompt_pre_fetch` / `cmf.prompt_post_fetch`). With routing
 * (docs/configuration.md), the plugins that run are those routed to the
 * entity of the extensions' meta slot; without an entity, every plugin of
 * the hook. Then fill `result`: initialized by the caller (CPEX_PIPELINE_RESULT_INIT or
 * cpex_pipeline_result_init), or cleaned up after an earlier invoke; this
 * function overwrites it without freeing what it held. Release it with
 * cpex_pipeline_result_cleanup. `context` is consumed on every path, a
 * failed one too: pass the table of the previous invoke of the same
 * request, or NULL; the result holds the table for the next one. The
 * caller keeps ownership of payload and extensions; background work keeps
 * its own copies.
 * Returns CPEX_OK once the result is filled: every outcome of the
 * pipeline, including running out of memory, is in the result, so read
 * the decision there. Errors: CPEX_E_INVALID when `result` is NULL or its
 * struct_size is below CPEX_PIPELINE_RESULT_SIZE_V1 (never initialized:
 * nothing is run or written, and the manager logs why), or when `manager`
 * or `hook` is NULL (then the result holds a deny, "invalid_argument").
 */
CPEX_API cpex_status cpex_manager_invoke(cpex_manager *manager, const char *hook,
                                         const cpex_payload *payload,
                                         const cpex_extensions *extensions,
                                         cpex_context_table *context, cpex_pipeline_result *result);

/**
 * A hook resolved once. Opaque; valid as long as `manager`, across every
 * load, reload, registration and unregistration (a hook that gains or loses
 * plugins keeps its handle). Resolve the hooks a host invokes at start-up
 * and invoke with cpex_manager_invoke_hook: it skips hashing and comparing
 * the name on every call.
 */
typedef struct cpex_hook_handle cpex_hook_handle;

/**
 * The handle of hook `hook` (any name; one no plugin serves yet is fine).
 * The manager owns it: never free it. NULL with CPEX_E_INVALID in `err` for
 * a NULL manager or hook, CPEX_E_NOMEM when memory is short.
 * [thread: any; takes the manager's write lock, so not on a hot path and
 *  never inside a handler]
 */
CPEX_API const cpex_hook_handle *cpex_manager_hook(cpex_manager *manager, const char *hook,
                                                   cpex_error *err);

/** The name of a handle's hook (owned by the manager). */
CPEX_API const char *cpex_hook_handle_name(const cpex_hook_handle *hook);

/**
 * cpex_manager_invoke by handle: the same contract, results and errors;
 * also CPEX_E_INVALID (with an "invalid_argument" deny) for a handle of
 * another manager.
 */
CPEX_API cpex_status cpex_manager_invoke_hook(cpex_manager *manager, const cpex_hook_handle *hook,
                                              const cpex_payload *payload,
                                              const cpex_extensions *extensions,
                                              cpex_context_table *context,
                                              cpex_pipeline_result *result);

/**
 * Wait until no background work is running — fire-and-forget handlers and
 * verdicts queued for audit sinks — at most `timeout` seconds: any number;
 * negative or infinite means no limit, 0 only looks, and a huge finite one
 * waits as long as the clock can count (it saturates, it never wraps into
 * the past). CPEX_OK when idle, CPEX_E_STATE if work remains at the
 * deadline, CPEX_E_INVALID for a NULL manager or a NaN timeout (nothing is
 * waited for).
 */
CPEX_API cpex_status cpex_manager_wait_background(cpex_manager *manager, double timeout);

/**
 * Take the soft errors that background handlers produced since the last
 * call. Returns their number and stores an array the caller frees with
 * cpex_error_records_free (NULL when none).
 */
CPEX_API size_t cpex_manager_take_background_errors(cpex_manager *manager,
                                                    cpex_error_record **records);

/** Free an array of `count` records returned by libcpex. */
CPEX_API void cpex_error_records_free(cpex_error_record *records, size_t count);

/**
 * For handlers compiled into the host whose hook carries a host-defined
 * payload type: replace the payload with `data` (taken over, freed with the
 * type's free). Refused (and `data` freed) where the mode may not modify.
 * The one exception to "taken on failure too": when `call` is not a call of
 * this library or its hook carries no custom type (CPEX_E_INVALID), there
 * is no type's free to call, and `data` stays the caller's.
 * Errors: CPEX_E_INVALID (not a call of this library, or not a custom
 * payload), CPEX_E_STATE (the mode may not modify).
 */
CPEX_API cpex_status cpex_call_set_payload_custom(const cpex_call *call, void *data);

/**
 * The host table this manager hands to plugins (same for all managers of
 * one libcpex). Useful to call plugin-style helpers from host code.
 */
CPEX_API const cpex_host_api *cpex_host_api_get(void);

#ifdef __cplusplus
}
#endif

#endif /* CPEX_MANAGER_H */
