/*
 * routing.h — which plugins run for one invoke (core layer, internal).
 *
 * A policy is the routing of a loaded configuration made ready for invokes:
 * its routes, groups and defaults (routing_config.h), the override
 * instances built for `name: {config: ...}` items, and the per-plugin
 * conditions. It is immutable and reference counted; every registry
 * snapshot published while it is current holds a reference, so invokes
 * read it without locks, and its override instances are shut down and
 * destroyed after the last invoke that could run them.
 *
 * Each snapshot carries a route state: its policy, the condition lists of
 * its hooks, and the route cache — plans (cpex__hook-shaped lists the
 * executor runs unchanged) keyed by (hook id, entity type, entity name,
 * scope, the runtime tags that name groups). The cache belongs to the
 * snapshot, so a reload or a registration, which publishes a new
 * snapshot, can never leave a stale plan behind: the old cache is freed
 * with the old snapshot after the RCU wait.
 *
 * The cache is a fixed table of atomic slots, allocated on the first miss:
 * a hit loads slots with acquire and compares, no lock and no allocation;
 * a miss builds the plan and publishes it with one compare-and-swap into
 * an empty slot (entries are never removed while the snapshot lives).
 */
#ifndef CPEX_CORE_ROUTING_H
#define CPEX_CORE_ROUTING_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "core/core.h"
#include "core/routing_config.h"

/* ------------------------------------------------------------------ */
/* Policy                                                              */
/* ------------------------------------------------------------------ */

/** The conditions of one plugin (routing off). */
typedef struct cpex__plugin_conds {
    char *plugin;
    cpex__conds conds;
} cpex__plugin_conds;

typedef struct cpex__policy {
    _Atomic long refs;
    cpex__rcfg *cfg;   /* routes, groups (definition order), defaults; owned */
    char *source;      /* the file it came from, for messages */
    bool enabled;      /* routing_enabled */
    size_t cache_max;  /* route_cache_max_entries */
    int all_group;     /* index of the `all` group, or -1 */
    size_t table_mask; /* open addressing over group names: index + 1 */
    uint32_t *table;
    uint64_t *group_hash; /* per group */
    /* Per route: the groups its meta.tags and groups: join (indices, ascending, `all` left out). */
    uint32_t **route_groups;
    size_t *route_group_count;
    /* The override instances (one reference each), parallel to `instance_of`. */
    size_t instance_count;
    cpex__plugin **instances;
    size_t cond_count;
    cpex__plugin_conds *conds;
} cpex__policy;

cpex__policy *cpex__policy_ref(cpex__policy *p);
void cpex__policy_unref(cpex__policy *p);

/** The index of group `name` (len bytes, hash from cpex__hash_name), or -1. */
int cpex__policy_group(const cpex__policy *p, const char *name, size_t len, uint64_t hash);

/** The conditions of plugin `name`, or NULL (none: it always runs). */
const cpex__conds *cpex__policy_conds(const cpex__policy *p, const char *name);

/**
 * Builds a policy from the routing of `cfg` (taken: cfg->routing and the
 * plugins' conditions move into it). `known` are the names of every
 * plugin the manager will have once the change is published: a route or
 * group naming another is an error (at its line). Each override item gets
 * an instance from `make` (called under the manager's write lock; it
 * reports its own failures). Returns NULL with the problems in `err`.
 */
typedef cpex__plugin *(*cpex__override_maker)(void *ctx, const char *plugin, const json_t *config,
                                              const cpex__where *where, cpex_error *err);
cpex__policy *cpex__policy_build(cpex__config *cfg, char *const *known, size_t known_count,
                                 cpex__override_maker make, void *make_ctx, cpex_error *err);

/* ------------------------------------------------------------------ */
/* Route state of a snapshot                                           */
/* ------------------------------------------------------------------ */

/** One cached plan, with its key (one allocation; immutable once published). */
typedef struct cpex__route_entry {
    uint64_t hash;
    /* hook id, then cpex__ext_meta.small with a bit for "has groups": one
     * compare (cpex__route_tag, route_lookup.h) */
    uint64_t tag;
    uint64_t name_w0, name_w1; /* cpex__hash_words of the name */
    uint32_t hook_id;
    uint32_t group_count;
    uint32_t type_id;
    bool has_scope;
    size_t type_len, name_len, scope_len;
    const char *type, *name, *scope; /* in the entry's own storage */
    const uint32_t *groups;
    cpex__hook plan;
    cpex__hook_entry entries[]; /* then the groups, then the strings */
} cpex__route_entry;

typedef struct cpex__route_state {
    cpex__policy *policy;            /* a reference */
    bool enabled;                    /* policy->enabled, read without a pointer chase */
    bool has_groups;                 /* the policy has groups: runtime tags may matter */
    const cpex__conds ***hook_conds; /* routing off: per snapshot hook, per entry; NULL: none */
    size_t hook_count;               /* of hook_conds */
    _Atomic(_Atomic(cpex__route_entry *) *) slots; /* the cache, made on the first miss */
    size_t slot_mask;
    _Atomic size_t used; /* entries stored */
    _Atomic int full_warned;
    const cpex__log_sink *sink; /* the manager's (for the one "cache full" warning) */
    pthread_mutex_t make_lock;  /* only to allocate the slot table once */
} cpex__route_state;

/**
 * The route state of `snap` for `policy` (NULL policy, or routing off and
 * no conditions: NULL, the unrouted fast path). *ok is false on OOM.
 */
cpex__route_state *cpex__route_state_new(cpex__policy *policy, const cpex__snapshot *snap,
                                         const cpex__log_sink *sink, bool *ok);
void cpex__route_state_free(cpex__route_state *rs);
/** Entries in the route cache (a snapshot's). */
size_t cpex__route_cache_size(const cpex__route_state *rs);

/* ------------------------------------------------------------------ */
/* Keys and plans                                                      */
/* ------------------------------------------------------------------ */

/** Runtime tags that name groups beyond this many bypass the cache. */
#define CPEX__KEY_MAX_GROUPS 32

typedef struct cpex__route_key {
    uint32_t hook_id;
    uint32_t type_id;           /* 1..4: tool, resource, prompt, llm; 0: another type */
    cpex_str type, name, scope; /* borrowed from the extensions; scope.ptr NULL when unset */
    uint32_t groups[CPEX__KEY_MAX_GROUPS]; /* runtime tags naming groups: indices, ascending */
    size_t group_count;
    bool uncacheable; /* more group tags than fit */
    uint64_t hash;
} cpex__route_key;

/**
 * The key of an invoke of hook `h` with `ext`. False when the invoke
 * names no entity (no meta, or no entity type or name): then every plugin
 * of the hook runs (decision 5).
 */
bool cpex__route_key_make(const cpex__policy *p, const cpex__hook *h, const cpex_extensions *ext,
                          cpex__route_key *key);

/**
 * The plan for `key` on hook `h` of `snap`: from the cache, or built (and
 * cached when there is room). A plan that could not be cached is returned
 * in *owned as well, for cpex__route_plan_free after the invoke. NULL on OOM.
 */
const cpex__hook *cpex__route_plan(cpex__route_state *rs, const cpex__hook *h,
                                   const cpex__route_key *key, void **owned);

void cpex__route_plan_free(void *owned);

/**
 * Routing off: the entries of `h` whose plugin's conditions match `ext`,
 * as a plan in `storage` and `ids_storage` (room for `cap` entries and
 * metric ids) or, if more, in *owned (cpex__free). Returns `h` itself when
 * its hook has no conditions. NULL on OOM. A plan made here is released
 * with cpex__plan_release after the invoke.
 */
const cpex__hook *cpex__conditions_plan(const cpex__route_state *rs, const cpex__snapshot *snap,
                                        const cpex__hook *h, const cpex_extensions *ext,
                                        cpex__hook *plan, cpex__hook_entry *storage,
                                        uint32_t *ids_storage, size_t cap, void **owned);

/** Whether a plugin's conditions accept an invoke with `ext`. */
bool cpex__conds_match(const cpex__conds *c, const cpex_extensions *ext);

/* ------------------------------------------------------------------ */
/* Resolution, for plans and for explaining them                       */
/* ------------------------------------------------------------------ */

/** Where a resolved plugin came from. */
typedef struct cpex__resolved {
    const char *name;
    cpex__plugin *instance; /* an override instance, or NULL: the plugin named */
    const char *from;       /* "group 'all'", "global.defaults.tool", "route 2", "groups.pii" */
} cpex__resolved;

typedef struct cpex__resolution {
    int route; /* the route index chosen, or -1 */
    int score; /* its specificity with scope */
    size_t count, cap;
    cpex__resolved *items; /* deduplicated, last occurrence wins */
    size_t group_count;
    const char *groups[64]; /* the group names applied, in order ("all", defaults, tags) */
} cpex__resolution;

/** Resolve `key` under `p` (CPEX §1.3 with libcpex's decisions). False on OOM. */
bool cpex__resolve(const cpex__policy *p, const cpex__route_key *key, cpex__resolution *out);
void cpex__resolution_free(cpex__resolution *r);

/**
 * Map a resolution onto hook `h`: entries for the plugins that serve it,
 * ordered by phase, priority, then resolution order (decision 1). Writes
 * at most `cap` entries to `out`; returns how many (more than cap: call
 * again with room).
 */
size_t cpex__resolution_entries(const cpex__resolution *r, const cpex__hook *h,
                                cpex__hook_entry *out, size_t cap);

/**
 * Make `plan` a plan of hook `h` over `n` entries (chosen from h's, or
 * override instances of its plugins): h's identity, its own metric ids
 * (written into `metric_ids`, room for n, unless `ids_filled`: the caller
 * put them there) and no record template yet. Release with
 * cpex__plan_release (the template an invoke may have made).
 */
void cpex__plan_init(cpex__hook *plan, const cpex__hook *h, cpex__hook_entry *entries, size_t n,
                     uint32_t *metric_ids, bool ids_filled);
void cpex__plan_release(cpex__hook *plan);

/** Fill a plan's phase_start from its sorted entries. */
void cpex__plan_phases(cpex__hook *plan);

#endif
