/*
 * routing_config.h — the routing part of a configuration, as parsed
 * (core layer, internal): plugin_settings.routing_enabled and
 * route_cache_max_entries, `routes:`, `global:` (policies, defaults),
 * top-level `groups:` and each plugin's `conditions:`.
 *
 * config_routes.c, config_groups.c and config_conditions.c read these
 * from the YAML tree with positions, so that every problem found later (an
 * unknown plugin a route names, an override that cannot be built) still
 * points at its line. What they mean at run time is routing.h's business.
 */
#ifndef CPEX_CORE_ROUTING_CONFIG_H
#define CPEX_CORE_ROUTING_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "core/config.h"
#include "core/yaml_tree.h"

/** The entity types a route can match (the route's matcher key). */
enum { CPEX__ENT_TOOL, CPEX__ENT_RESOURCE, CPEX__ENT_PROMPT, CPEX__ENT_LLM, CPEX__ENT_COUNT };

/** "tool", "resource", "prompt", "llm"; NULL out of range. */
const char *cpex__entity_name(int entity);

/** How a route's matcher compares an entity name. */
typedef enum cpex__match_kind {
    CPEX__MATCH_ANY,   /* exactly "*" */
    CPEX__MATCH_GLOB,  /* a string with '*' or '?' */
    CPEX__MATCH_EXACT, /* any other string */
    CPEX__MATCH_LIST   /* a list of exact names */
} cpex__match_kind;

/** Default of plugin_settings.route_cache_max_entries (as CPEX). */
#define CPEX__ROUTE_CACHE_DEFAULT 10000u
/** The largest route_cache_max_entries accepted (bounds the table's memory). */
#define CPEX__ROUTE_CACHE_MAX 1000000u

/** One item of a `plugins:` list: a name, and a config override or none. */
typedef struct cpex__rref {
    char *name;
    json_t *override; /* the override's `config:` value; NULL for a bare name */
    cpex__pos pos;
    struct cpex__plugin *instance; /* once in a policy: the override's instance (the policy's) */
} cpex__rref;

typedef struct cpex__rref_list {
    size_t count;
    cpex__rref *items;
} cpex__rref_list;

/** A policy group: `groups.<name>`, `global.policies.<name>` or `global.defaults.<type>`. */
typedef struct cpex__rgroup {
    char *name;  /* the group's name, or the entity type for a default */
    char *where; /* "groups.pii", "global.policies.all", "global.defaults.tool" */
    cpex__rref_list plugins;
    cpex__pos pos; /* its key: the order groups are defined in */
} cpex__rgroup;

typedef struct cpex__rroute {
    size_t index; /* 0-based, in file order */
    cpex__pos pos;
    int entity;   /* CPEX__ENT_*, or -1 (none or several: reported when routing is on) */
    int matchers; /* how many of tool/resource/prompt/llm it set */
    cpex__match_kind kind;
    char *pattern; /* ANY, GLOB, EXACT */
    char **names;  /* LIST (NULL-terminated) */
    size_t name_count;
    int specificity; /* the matcher's score plus 10 for `when` (scope adds 100 at match time) */
    char *scope;     /* meta.scope, or NULL */
    char **tags;     /* meta.tags, NULL-terminated (possibly empty) */
    size_t tag_count;
    char **groups; /* groups:, NULL-terminated (possibly empty) */
    size_t group_count;
    cpex__pos *group_pos; /* position of each groups: entry */
    char *when;           /* kept, never evaluated */
    cpex__rref_list plugins;
} cpex__rroute;

/** Fields of one condition (a plugin's `conditions:` entry). */
enum {
    CPEX__C_SERVER_IDS,
    CPEX__C_TENANT_IDS,
    CPEX__C_TOOLS,
    CPEX__C_PROMPTS,
    CPEX__C_RESOURCES,
    CPEX__C_AGENTS,
    CPEX__C_USER_PATTERNS,
    CPEX__C_CONTENT_TYPES,
    CPEX__C_COUNT
};

/** One condition: each field present (non-NULL) must match. */
typedef struct cpex__cond {
    char **field[CPEX__C_COUNT]; /* NULL-terminated; NULL when absent */
} cpex__cond;

typedef struct cpex__conds {
    size_t count; /* 0: always runs */
    cpex__cond *items;
} cpex__conds;

/** The routing sections of one file. */
typedef struct cpex__rcfg {
    bool present;     /* the file set any routing key (or a plugin's conditions) */
    bool enabled;     /* plugin_settings.routing_enabled */
    size_t cache_max; /* plugin_settings.route_cache_max_entries */
    size_t route_count;
    cpex__rroute *routes;
    size_t group_count;   /* merged: `groups:` wins over `global.policies` */
    cpex__rgroup *groups; /* in the order they are defined in the file */
    size_t default_count;
    cpex__rgroup *defaults;
} cpex__rcfg;

/* ---- parsing (config_route*.c, config_groups.c, config_conditions.c) ---- */

/** The routing of `cfg`, created empty on first use; NULL on OOM (diag->nomem set). */
cpex__rcfg *cpex__rcfg_of(cpex__ydiag *diag, cpex__config *cfg);

/** plugin_settings.routing_enabled (`which` 0) or .route_cache_max_entries (1). */
void cpex__rcfg_setting(cpex__ydiag *diag, cpex__config *cfg, int which, const cpex__ynode *v);
/** The top-level `routes:` value. */
void cpex__rcfg_routes(cpex__ydiag *diag, cpex__config *cfg, const cpex__ynode *v);
/** The top-level `global:` value. */
void cpex__rcfg_global(cpex__ydiag *diag, cpex__config *cfg, const cpex__ynode *v);
/** The top-level `groups:` value. */
void cpex__rcfg_groups(cpex__ydiag *diag, cpex__config *cfg, const cpex__ynode *v);
/** A plugin's `conditions:` value, into `out` (empty when absent). */
void cpex__rcfg_conditions(cpex__ydiag *diag, cpex__config *cfg, cpex__conds *out,
                           const cpex__ynode *v);
/**
 * After the whole file: merge the groups, and when routing is on check
 * every route's matcher (exactly one) and its groups (defined). Plugin
 * names are checked at load, against every plugin the manager will have.
 */
void cpex__rcfg_finish(cpex__ydiag *diag, cpex__config *cfg);

void cpex__rcfg_free(cpex__rcfg *rcfg);
void cpex__conds_free(cpex__conds *conds);

/* ---- matching (config_routes.c) ---- */

/** Glob match: '*' any run (also empty, also '/'), '?' one UTF-8 character; case-sensitive. */
bool cpex__glob_match(const char *pattern, const char *text, size_t text_len);

/** Whether a route's matcher accepts `name` (len bytes). */
bool cpex__rroute_matches(const cpex__rroute *route, const char *name, size_t len);

/** Add a warning to the configuration being checked (config_report.c). */
void cpex__config_warn(cpex__ydiag *diag, const cpex__ynode *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
