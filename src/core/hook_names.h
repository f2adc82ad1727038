/*
 * hook_names.h — every hook name a manager has seen, each with a small
 * number of its own (its id) and the payload type the hook carries.
 *
 * Names are interned by writers (under the manager's write lock) and never
 * removed while the manager lives, so an id, and a handle a host resolved
 * once with cpex_manager_hook, stay valid. Registry snapshots index their
 * hooks by id (an array), so an invoke by handle costs no hashing and no
 * string compare, and building a snapshot is linear in its handlers.
 */
#ifndef CPEX_CORE_HOOK_NAMES_H
#define CPEX_CORE_HOOK_NAMES_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** No generation: cpex__hook_name.empty_in of a hook not known to be empty. */
#define CPEX__NEVER_EMPTY UINT64_MAX

/** One interned hook name (what a cpex_hook_handle points at). */
typedef struct cpex__hook_name {
    const void *owner; /* the manager; a handle is checked against it */
    uint32_t id;       /* dense, from 0, in order of first sight */
    uint32_t len;
    uint64_t hash;
    char *payload_type; /* the type the hook carries, once bound; never changes after */
    uint32_t metric_id; /* its metric label id: UINT32_MAX until first wired (sinks.c) */
    /* A generation of the manager in whose snapshot no plugin is bound to
       this hook and no audit sink observes any hook: an invoke by handle
       that reads it equal to the manager's live generation answers at once,
       without a read section (invoke.c). CPEX__NEVER_EMPTY until a publish
       (or cpex_manager_hook) says so. Written under the write lock. */
    _Atomic uint64_t empty_in;
    char name[];
} cpex__hook_name;

typedef struct cpex__hook_names {
    const void *owner;
    cpex__hook_name **by_id;
    size_t count, cap;
    uint32_t *table; /* open addressing: id + 1, 0 empty */
    size_t mask;
} cpex__hook_names;

/** An empty table for `owner` (the manager). */
void cpex__hook_names_init(cpex__hook_names *names, const void *owner);
/** Free every name. */
void cpex__hook_names_free(cpex__hook_names *names);
/** The entry of `name` (len bytes), or NULL when never seen. Writers only. */
cpex__hook_name *cpex__hook_names_find(const cpex__hook_names *names, const char *name, size_t len);
/** The entry of `name`, interned if new. NULL on OOM or a name over 4 GiB. Writers only. */
cpex__hook_name *cpex__hook_names_intern(cpex__hook_names *names, const char *name, size_t len);
/** Bind `type` (copied) to an entry that has none. False on OOM. */
bool cpex__hook_name_bind(cpex__hook_name *entry, const char *type);

/*
 * Aliases: CPEX spells the prompt hooks two ways (cmf.prompt_pre_fetch and
 * cmf.prompt_pre_invoke, the same for post). Both are one hook whose name
 * is the canonical spelling (the _fetch one, like the resource hooks):
 * interning, finding, handlers and `hooks:` lists all map the alias to it,
 * so results, calls and queries only ever show the canonical name.
 */

/** The canonical name when `name` (len bytes) is an alias, else NULL. */
const char *cpex__hook_alias_of(const char *name, size_t len);

/** `name` itself, or its canonical name when it is an alias (NULL stays NULL). */
const char *cpex__hook_canonical(const char *name);

/** Whether two hook names name one hook (equal, or alias and canonical). */
bool cpex__hook_same(const char *a, const char *b);

#endif
