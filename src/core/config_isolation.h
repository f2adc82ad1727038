/*
 * config_isolation.h — a plugin's `isolation:`, `workers:` and `sandbox:`
 * keys (docs/configuration.md, docs/isolation.md), checked apart from the
 * YAML reader: config_plugins.c converts each value to JSON and hands it
 * here, so the rules of these keys live in one file.
 */
#ifndef CPEX_CORE_CONFIG_ISOLATION_H
#define CPEX_CORE_CONFIG_ISOLATION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "cpex/factory.h"

/** The keys as read. Zero means "not given": the factory's default applies. */
typedef struct cpex__isolation_cfg {
    uint32_t mode; /* enum cpex_isolation_mode */
    bool has_mode, has_sandbox, has_workers;
    uint32_t workers;
    bool network;
    char **read_paths; /* NULL-terminated or NULL */
    size_t read_path_count;
    char **write_paths;
    size_t write_path_count;
    uint64_t memory_mb;
    double cpu_seconds_per_call;
    bool require;
    uint32_t max_crashes_per_minute;
    double load_timeout;
    uint32_t open_files;
} cpex__isolation_cfg;

/** How a problem is reported: `key` is the dotted key ("sandbox.memory_mb"). */
typedef void (*cpex__isolation_report_fn)(void *ctx, const char *key, const char *message);

/** The plugin keys handled here, for the unknown-key did-you-mean. */
#define CPEX__ISOLATION_KEYS "isolation", "workers", "sandbox"

/**
 * Check the value of plugin key `key` ("isolation", "workers" or
 * "sandbox") and store it in `iso`. Problems go to `report`. Returns
 * false only when memory ran out.
 */
bool cpex__isolation_key(cpex__isolation_cfg *iso, const char *key, const json_t *value,
                         cpex__isolation_report_fn report, void *ctx);

/** Checks across the keys, once the plugin's entry is read (`sandbox` without isolation). */
void cpex__isolation_finish(const cpex__isolation_cfg *iso, cpex__isolation_report_fn report,
                            void *ctx);

/** The ABI view for a factory request; borrows the path arrays of `iso`. */
void cpex__isolation_options(const cpex__isolation_cfg *iso, cpex_isolation_options *out);

/** Free what `iso` holds and zero it. */
void cpex__isolation_cleanup(cpex__isolation_cfg *iso);

#endif
