/*
 * config_check.h — what the checks of the YAML configuration share (core
 * layer, internal): the state of one check, and its reporting
 * (config_report.c). config_yaml.c sets the state up and checks the top
 * level; it hands plugin_settings to config_settings.c and the entries of
 * plugins to config_plugins.c, which report through the same state.
 */
#ifndef CPEX_CORE_CONFIG_CHECK_H
#define CPEX_CORE_CONFIG_CHECK_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "core/config.h"
#include "core/yaml_tree.h"
#include "util/errors.h"

/** The state of one check of a configuration. */
typedef struct cpex__cfg_ctx {
    cpex__ydiag diag; /* first member: cpex__cfg_report_diag turns it back into the ctx */
    const char *source;
    cpex_error *err;
    cpex__config *cfg;
    size_t errors;      /* problems found (reported or not) */
    bool muted;         /* CFG_MAX_ERRORS (config_report.c) reached */
    const char *plugin; /* name of the plugin being checked, or NULL */
    size_t plugin_no;   /* 1-based entry number of that plugin; 0 outside plugins */
    json_t *names;      /* plugin name -> line of its first definition */
} cpex__cfg_ctx;

/* ---- reporting (config_report.c) ---- */

/** Report a configuration problem at `pos`, naming the current plugin (counts as an error). */
void cpex__cfg_report_at(cpex__cfg_ctx *c, cpex__pos pos, const char *key, const char *fmt,
                         va_list ap);
/** The same at node `at` (NULL: no position). */
void cpex__cfg_report(cpex__cfg_ctx *c, const cpex__ynode *at, const char *key, const char *fmt,
                      ...) __attribute__((format(printf, 4, 5)));
/** The tree's cpex__ydiag report: `diag` is the ctx's first member. */
void cpex__cfg_report_diag(cpex__ydiag *diag, cpex__pos pos, const char *key, const char *fmt,
                           va_list ap);
/** Add a warning "<file>:<line>:<col>: [plugin '<p>': ]<text>" to the config. */
void cpex__cfg_warn(cpex__cfg_ctx *c, const cpex__ynode *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- the sections config_yaml.c hands over ---- */

/** The top-level `plugin_settings:` value (config_settings.c). */
void cpex__cfg_settings(cpex__cfg_ctx *c, const cpex__ynode *v);
/** The top-level `plugins:` value, each entry checked (config_plugins.c). */
void cpex__cfg_plugins(cpex__cfg_ctx *c, const cpex__ynode *v);

#endif
