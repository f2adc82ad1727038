/*
 * manager_internal.h — what the manager's files share (not installed).
 */
#ifndef CPEX_CORE_MANAGER_INTERNAL_H
#define CPEX_CORE_MANAGER_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "core/core.h"
#include "core/registration.h"
#include "util/errors.h"

/* Trusted settings for a new plugin (from YAML or the host). */
typedef struct cpex__plugin_setup {
    const char *name;
    const char *kind;
    const char *description;
    uint32_t mode;
    int32_t priority;
    cpex_on_error on_error;
    double timeout;
    cpex__caps caps;
    const char *const *capabilities;
    size_t capability_count;
    const char *const *hooks; /* NULL: every handler */
    size_t hook_count;
    bool sink_all; /* YAML `mode: audit` without hooks: an audit sink for every hook */
    const json_t *config;
    const char *state_namespace; /* NULL: derived from the name */
    char *origin;                /* taken */
    char *isolation;             /* taken: the factory's isolation_info */
    void (*release)(void *);
    void *release_data;
} cpex__plugin_setup;


/* Hook bindings (hook -> payload type) a change makes, bound to the names
 * only when the change is published. */
typedef struct cpex__pending_binding {
    cpex__hook_name *hook;
    const char *type; /* borrowed from a registration of the change */
} cpex__pending_binding;

typedef struct cpex__binding_list {
    size_t count, cap;
    cpex__pending_binding *items;
} cpex__binding_list;

/** Release a list's array (not what it points at). */
void cpex__binding_list_free(cpex__binding_list *list);


/* factories.c, payload_types.c, publish.c */
bool cpex__mgr_add_binding(cpex_manager *m, const char *hook, const char *type);
/** The payload type bound to `hook`, or NULL. */
const char *cpex__mgr_binding_of(const cpex_manager *m, const char *hook);
const cpex_factory *cpex__mgr_find_factory(const cpex_manager *m, const char *kind);
bool cpex__mgr_type_known(const cpex_manager *m, const char *name);
/** Publish a snapshot of `plugins` and wait until no invoke reads the old one. */
cpex_status cpex__mgr_publish(cpex_manager *m, cpex__plugin *const *plugins, size_t count);
cpex_status cpex__mgr_republish(cpex_manager *m);
/** Say which hook names have nothing to run in `next` (cpex__hook_name.
 *  empty_in), before `next` is stored (lock held, or while the manager is
 *  still private to its creator). */
void cpex__mgr_mark_empty_hooks(cpex_manager *m, const cpex__snapshot *next);
/** The same for one name against the snapshot that is live (lock held):
 *  for a name interned after that snapshot was stored. */
void cpex__mgr_mark_empty_hook(cpex__hook_name *name, const cpex__snapshot *snap);
/** Values of m->live_uid and m->live_generation while a snapshot is being
 *  stored: no snapshot uid, no hook's empty_in, no name cache entry. */
#define CPEX__LIVE_UID_BUSY UINT64_MAX
#define CPEX__LIVE_GENERATION_BUSY (UINT64_MAX - 1)
/** Before a snapshot is stored: the live words say busy (fast answers off). */
void cpex__mgr_set_live_busy(cpex_manager *m);
/** After `next` is stored in m->snapshot: copy its uid and generation to
 *  m->live_uid and m->live_generation. */
void cpex__mgr_set_live(cpex_manager *m, const cpex__snapshot *next);
/** The snapshot with every pending registration published (lock held). Every
 *  writer reads the registry through it, never m->snapshot directly. Out
 *  of memory, the registrations stay pending and the snapshot lacks them:
 *  a writer that looks plugins up in it checks cpex__mgr_unpublished. */
cpex__snapshot *cpex__mgr_current(cpex_manager *m);
/** After cpex__mgr_current: registrations it could not publish (out of
 *  memory). A writer whose change depends on every registered plugin
 *  (names, counts, the plugin list) then fails with CPEX_E_NOMEM and
 *  changes nothing; the next writer tries the publish again. */
static inline bool cpex__mgr_unpublished(const cpex_manager *m) { return m->pending_count != 0; }
/** Leave a registered plugin (a new reference) for the next publish (lock held). */
bool cpex__mgr_add_pending(cpex_manager *m, cpex__plugin *p);
/** Release the pending plugins and the retired snapshots (cpex_manager_free). */
void cpex__mgr_pending_free(cpex_manager *m);

/* plugin_build.c */
/**
 * Check a registration and wire it. On success *out holds a new plugin
 * (one reference) that owns the registration's instance. On failure the
 * caller still owns the instance and the release.
 */
cpex_status cpex__mgr_build_plugin(cpex_manager *m, const cpex__plugin_setup *s,
                                   const cpex_plugin_registration *reg,
                                   cpex__binding_list *bindings, const cpex__where *where,
                                   cpex__plugin **out, cpex_error *err);
/** Hand the factory's origin and release over to the plugin. */
cpex_status cpex__mgr_attach(cpex__plugin *p, cpex__plugin_setup *s);
/** Initialize one plugin; on failure record its state and reason. */
cpex_status cpex__mgr_init_plugin(cpex_manager *m, cpex__plugin *p, const cpex__where *where,
                                  cpex_error *err);

/* load.c */
bool cpex__mgr_name_taken(cpex__plugin *const *plugins, size_t count, const char *name);
cpex_status cpex__mgr_commit(cpex_manager *m, cpex__plugin **batch, size_t count,
                             const cpex__binding_list *bindings);
struct cpex__config;
struct cpex__config_plugin;
/** Apply a configuration's manager-wide settings (after it is published).
 *  `replace` (a reload): what the file leaves out returns to the host's
 *  options (m->base); else (a load) it keeps its value. */
void cpex__mgr_apply_settings(cpex_manager *m, const struct cpex__config *cfg, bool replace);
/** Publish exactly `all` (count `total`) and bind the pending bindings. */
cpex_status cpex__mgr_publish_bound(cpex_manager *m, cpex__plugin *const *all, size_t total,
                                    const cpex__binding_list *bindings);
/** Create one configured plugin through its factory (lock held); marks it from_config. */
cpex_status cpex__mgr_create_configured(cpex_manager *m, const struct cpex__config *cfg,
                                        const struct cpex__config_plugin *cp,
                                        cpex__binding_list *bindings, cpex__plugin **out,
                                        cpex_error *err);
/** The artifact identity of a kind created by factory `f` (found for it), or NULL (apply.c). */
cpex__identify_fn cpex__mgr_find_identify(const cpex_manager *m, const char *kind,
                                          const cpex_factory *f);
/** The factory's artifact text for `cp` into buf ("" when the factory has no identify);
 *  false when there is no factory or it cannot tell. */
bool cpex__mgr_identify(cpex_manager *m, const struct cpex__config *cfg,
                        const struct cpex__config_plugin *cp, char *buf, size_t cap);

/* state_manager.c */
/** Give the new manager its state backend (options: the host's, may be NULL). */
cpex_status cpex__mgr_state_init(cpex_manager *m, const cpex_state_options *options,
                                 cpex_error *err);
/** Free the backend and every replaced one. */
struct cpex__config;
/** The backend `cfg` asks for, if it differs and may replace the one in force
    (*fresh NULL when nothing changes). Call under the write lock. */
cpex_status cpex__mgr_state_prepare(cpex_manager *m, const struct cpex__config *cfg,
                                    struct cpex__state_backend **fresh, cpex_error *err);
/** Make `fresh` the manager's backend (chosen by `origin`); false on OOM. */
bool cpex__mgr_state_install(cpex_manager *m, struct cpex__state_backend *fresh,
                             const char *origin);

/* lifecycle.c */
/** Wait, without limit, until no background work runs. */
void cpex__mgr_wait_all_background(cpex_manager *m);

#endif
