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

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "cpex/error.h"
#include "cpex/manager.h"
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
    char **hooks;           /* NULL-terminated, at least one */
    size_t hook_count;
    uint32_t mode;          /* enum cpex_mode; default sequential */
    int32_t priority;       /* default 100 */
    bool has_on_error;      /* false: the manager's default applies */
    cpex_on_error on_error;
    double timeout;         /* seconds; 0 when not given */
    char **capabilities;    /* NULL-terminated (possibly empty) */
    size_t capability_count;
    cpex__caps caps;         /* the known ones as bits */
    char **tags;            /* NULL-terminated (possibly empty) */
    size_t tag_count;
    json_t *config;         /* the `config:` block; JSON null when absent (owned ref) */
    cpex__pos pos;           /* the plugin's entry (its '-' item) */
    cpex__pos kind_pos;      /* the value of `kind:` */
    cpex__pos hooks_pos;     /* the value of `hooks:` */
} cpex__config_plugin;

/** A parsed configuration. */
typedef struct cpex__config {
    char *source;           /* file name or "<string>" */
    char *base_dir;         /* directory of the file, or NULL */
    bool has_plugin_timeout;
    double plugin_timeout;  /* seconds */
    bool has_short_circuit;
    bool short_circuit_on_deny;
    /* observation (docs/observability.md); -1 (0 for the size): not set */
    int execution_records;
    int metrics;
    int64_t audit_queue_size;
    int audit_overflow;     /* enum cpex_audit_overflow */
    double audit_max_wait;  /* seconds */
    size_t plugin_count;
    cpex__config_plugin *plugins;
    json_t *global;         /* `global:` as JSON, kept for routing; NULL when absent */
    json_t *routes;         /* `routes:` as JSON; NULL when absent */
    char **warnings;        /* NULL-terminated messages (keys accepted but not implemented) */
    size_t warning_count;
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

/** Free a config. NULL is allowed. */
void cpex__config_free(cpex__config *config);

/** Mode name to enum cpex_mode; -1 if unknown. */
int cpex__mode_from_name(const char *name);
/** on_error name to cpex_on_error; -1 if unknown. */
int cpex__on_error_from_name(const char *name);

#endif
