/*
 * cpex/factory.h — factories turn a plugin's configuration into a plugin.
 *
 * The manager looks a `kind` up by exact match first, then by its scheme
 * (the text before the first ':', when non-empty). The `lib:` loader of
 * shared libraries is a scheme factory like any a host may register.
 *
 * Ownership: a product a factory returns with CPEX_OK is the manager's,
 * whether the manager then accepts the plugin or refuses it (it calls the
 * registration's destroy, then `release`, and frees `origin` either way).
 */
#ifndef CPEX_FACTORY_H
#define CPEX_FACTORY_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "cpex/abi.h"
#include "cpex/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Where a plugin runs (enum values fixed). */
enum cpex_isolation_mode {
    CPEX_ISOLATION_NONE = 0,   /* in the host process: the default, and the fast path */
    CPEX_ISOLATION_PROCESS = 1 /* in a sandboxed worker process (docs/isolation.md) */
};

/**
 * The operator's `isolation:`, `workers:` and `sandbox:` keys of one plugin
 * (docs/configuration.md). Borrowed, valid during the factory call. A zero
 * in a numeric field means "the default" (given per field); a factory
 * that reads fields past `struct_size` treats them as zero.
 */
typedef struct cpex_isolation_options {
    uint32_t struct_size;
    uint32_t mode;                 /* enum cpex_isolation_mode */
    uint32_t workers;              /* calls the worker serves at once; 0: 2 */
    uint32_t network;              /* 1: the plugin may create sockets */
    const char *const *read_paths; /* beyond the library and the system libraries */
    size_t read_path_count;
    const char *const *write_paths;
    size_t write_path_count;
    uint64_t memory_mb;              /* data size limit of the worker; 0: 256 */
    double cpu_seconds_per_call;     /* CPU time of one handler call; 0: no limit */
    uint32_t require;                /* 1: a protection the kernel lacks is an error */
    uint32_t max_crashes_per_minute; /* then the plugin is disabled; 0: 10 */
    double load_timeout;             /* seconds for create and initialize; 0: 10 */
    uint32_t open_files;             /* open file limit of the worker; 0: 64 */
    uint32_t reserved;
} cpex_isolation_options;

/** What the manager hands a factory. Borrowed, valid during the call. */
typedef struct cpex_factory_request {
    uint32_t struct_size;
    uint32_t reserved;
    const cpex_plugin_config *config; /* the plugin's configuration (ABI view) */
    const json_t *config_block;       /* its `config:` block (JSON null when absent) */
    const char *source;               /* configuration file or name, or NULL */
    const char *base_dir;             /* directory relative paths resolve against, or NULL */
    const cpex_host_api *host;        /* the host table to hand to plugins */
    /** Log a line under this plugin's name through the manager's log sink. */
    void (*log)(void *log_ctx, uint32_t level, const char *message);
    void *log_ctx; /* pass to log */
    /* ---- appended (read them only when struct_size covers them) ---- */
    /** NULL, or mode CPEX_ISOLATION_NONE: in process. Otherwise the
        operator asked for process isolation: a factory that cannot give it
        leaves `isolated` of the product 0 and the manager refuses the plugin. */
    const cpex_isolation_options *isolation;
    /** The worker program to run isolated plugins (the manager option
        worker_path), or NULL to find it (docs/isolation.md). */
    const char *worker_path;
    /** The plugin's effective on_error (enum cpex_on_error of manager.h). */
    uint32_t on_error;
    uint32_t reserved2;
    /* ---- appended: plugin files (docs/configuration.md, "Plugin files") ---- */
    /**
     * The plugin's `sha256:` pin, 64 lowercase hex digits, or NULL. A
     * factory that loads a file checks it before any code of the file runs
     * and sets `sha256_checked` in its product; the manager refuses a
     * plugin whose pin no one checked.
     */
    const char *sha256;
    /**
     * 1: refuse a file other users could replace (writable by group or
     * others, or owned by another user, the file or a directory above it);
     * 0: load it with a warning. From plugin_settings.strict_permissions
     * or cpex_manager_options.strict_permissions.
     */
    uint32_t strict_permissions;
} cpex_factory_request;

/**
 * What a factory fills in. The manager zero-fills it and sets
 * registration.struct_size before the call.
 */
typedef struct cpex_factory_product {
    /** The plugin: its instance, callbacks and handlers (validated by the manager). */
    cpex_plugin_registration registration;
    /**
     * Optional: called once after the plugin's destroy, to let go of what
     * the factory holds for it (the loader closes its library here).
     */
    void (*release)(void *release_data);
    void *release_data;
    /** Optional, malloc'd, taken over by the manager: where the plugin came
        from (the loader puts the resolved library path here). */
    char *origin;
    /* ---- appended (the manager zero-fills them) ---- */
    /** 1 when the factory honoured a process isolation request. */
    uint32_t isolated;
    uint32_t reserved;
    /** Optional, malloc'd, taken over by the manager: how the plugin is
        isolated and which protections are in force (cpex_plugin_info.isolation). */
    char *isolation_info;
    /* ---- appended ---- */
    /** Set to 1 when the factory checked request->sha256 (see there). */
    uint32_t sha256_checked;
} cpex_factory_product;

/**
 * Create a plugin. Return CPEX_OK with `out` filled, or an error status and
 * one or more items in `err` whose messages say what went wrong and what to
 * do (the manager adds the file, line and plugin name in front). On failure
 * the factory must leave nothing allocated.
 */
typedef cpex_status (*cpex_factory_fn)(void *factory_data, const cpex_factory_request *request,
                                       cpex_factory_product *out, cpex_error *err);

/** A factory. The manager copies the struct. */
typedef struct cpex_factory {
    uint32_t struct_size; /* sizeof(cpex_factory) */
    cpex_factory_fn create;
    void *data; /* passed to create */
    /** Optional: called with `data` when the manager is freed. */
    void (*destroy)(void *data);
} cpex_factory;

#ifdef __cplusplus
}
#endif

#endif /* CPEX_FACTORY_H */
