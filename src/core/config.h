/*
 * config.h — the YAML configuration, parsed and checked (core layer).
 *
 * cpex__config_parse reads YAML with libyaml and reports every problem of
 * the text, each naming source, line, column, plugin and key. It does not
 * look factories up: the manager reports a kind with no factory, using the
 * positions recorded here.
 */
#ifndef CPEX_CORE_CONFIG_H
#define CPEX_CORE_CONFIG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "cpex/error.h"
#include "cpex/manager.h"
#include "cpex/state.h"
#include "core/config_isolation.h"
#include "model/capabilities.h"

/** A position in the source text (1-based; 0 when unknown). */
typedef struct cpex__pos {
    int line;
    int column;
} cpex__pos;

/** One entry of `plugins:`. Every string is owned; optional ones may be NULL. */
typedef struct cpex__config_plugin {
    char *name;
    char *kind;
    char *description;
    char *author;
    char *version;
    char **hooks; /* NULL-terminated, at least one */
    size_t hook_count;
    uint32_t mode;     /* enum cpex_mode; default sequential */
    int32_t priority;  /* default 100 */
    bool has_on_error; /* false: the manager's default applies */
    cpex_on_error on_error;
    double timeout;      /* seconds; 0 when not given */
    char **capabilities; /* NULL-terminated (possibly empty) */
    size_t capability_count;
    cpex__caps caps; /* the known ones as bits */
    char **tags;     /* NULL-terminated (possibly empty) */
    size_t tag_count;
    json_t *config;                 /* the `config:` block; JSON null when absent (owned ref) */
    char *state_namespace;          /* `state_namespace:`; NULL: the name (config_state.c) */
    cpex__isolation_cfg isolation;  /* isolation, workers, sandbox (config_isolation.c) */
    char *sha256;                   /* the `sha256:` pin, 64 lowercase hex digits, or NULL */
    cpex__pos pos;                  /* the plugin's entry (its '-' item) */
    cpex__pos kind_pos;             /* the value of `kind:` */
    cpex__pos hooks_pos;            /* the value of `hooks:` */
    struct cpex__conds *conditions; /* `conditions:` (routing_config.h); NULL when absent */
    cpex__pos conditions_pos;
} cpex__config_plugin;

/** A parsed configuration. */
typedef struct cpex__config {
    char *source;   /* file name or "<string>" */
    char *base_dir; /* directory of the file, or NULL */
    bool has_plugin_timeout;
    double plugin_timeout; /* seconds */
    bool has_short_circuit;
    bool short_circuit_on_deny;
    bool unknown_hook_deny;  /* plugin_settings.unknown_hook: deny */
    bool strict_permissions; /* plugin_settings.strict_permissions: true */
    /* observation (docs/observability.md); -1 (0 for the size): not set */
    int execution_records;
    int metrics;
    int64_t audit_queue_size;
    int audit_overflow;    /* enum cpex_audit_overflow */
    double audit_max_wait; /* seconds */
    size_t plugin_count;
    cpex__config_plugin *plugins;
    bool has_state;           /* `plugin_settings.state` was given (config_state.c) */
    cpex__pos state_pos;      /* its key */
    cpex_state_options state; /* its settings; the strings are owned */
    json_t *global;           /* `global:` as JSON, kept for routing; NULL when absent */
    json_t *routes;           /* `routes:` as JSON; NULL when absent */
    char **warnings;          /* NULL-terminated messages (keys accepted but not implemented) */
    size_t warning_count;
    struct cpex__rcfg *routing; /* routes, groups, settings (routing_config.h); NULL: none */
} cpex__config;

/**
 * Parse and check `len` bytes of YAML. `source` names the text in messages
 * (NULL: "<string>"); `base_dir` is stored as given (may be NULL).
 * On success *out owns a new config. On failure returns CPEX_E_CONFIG (or
 * CPEX_E_NOMEM) with one item per problem in `err`, and *out is NULL.
 */
cpex_status cpex__config_parse(const char *yaml, size_t len, const char *source,
                               const char *base_dir, cpex__config **out, cpex_error *err);

/** Read a file and parse it; base_dir becomes the file's directory. CPEX_E_IO if unreadable. */
cpex_status cpex__config_parse_file(const char *path, cpex__config **out, cpex_error *err);

/** The absolute directory of `path` (malloc'd; its directory as written when
 *  it cannot be resolved): where a file's relative library paths resolve. */
char *cpex__config_dir_of(const char *path);

/** Free a config. NULL is allowed. */
void cpex__config_free(cpex__config *config);

/* ---- plugin_settings.state and state_namespace (config_state.c) ---- */

/** "a mapping", "a list", "an integer"... of a JSON value, for "got ..." in messages. */
const char *cpex__json_kind(const json_t *v);

/** One key of a mapping, its value converted to JSON, with positions. */
typedef struct cpex__config_item {
    const char *key;
    cpex__pos key_pos;
    cpex__pos value_pos;
    const json_t *value;
} cpex__config_item;

/** How config_state.c reports a problem through the YAML reader (counts as an error). */
typedef void (*cpex__config_report_fn)(void *ctx, cpex__pos pos, const char *key, const char *fmt,
                                       va_list ap);

/**
 * Check the keys of `plugin_settings.state` (the mapping at `at`) and fill
 * *out (strings allocated; release with cpex__config_state_cleanup, also
 * after problems). Problems go to `report`. False only when out of memory.
 */
bool cpex__config_state(const cpex__config_item *items, size_t count, cpex__pos at,
                        cpex__config_report_fn report, void *ctx, cpex_state_options *out);
void cpex__config_state_cleanup(cpex_state_options *o);
/** Whether a `state_namespace:` value is valid; else why. */
bool cpex__config_state_namespace(const char *ns, char *why, size_t why_cap);

/** Mode name to enum cpex_mode; -1 if unknown. */
int cpex__mode_from_name(const char *name);
/** on_error name to cpex_on_error; -1 if unknown. */
int cpex__on_error_from_name(const char *name);

#endif
