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
    void *log_ctx;                    /* pass to log */
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
    uint32_t struct_size;         /* sizeof(cpex_factory) */
    cpex_factory_fn create;
    void *data;                   /* passed to create */
    /** Optional: called with `data` when the manager is freed. */
    void (*destroy)(void *data);
} cpex_factory;

#ifdef __cplusplus
}
#endif

#endif /* CPEX_FACTORY_H */
