/*
 * apply.h — what a load and a reload share once a configuration is parsed
 * (core layer, internal; see apply.c).
 */
#ifndef CPEX_CORE_APPLY_H
#define CPEX_CORE_APPLY_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "core/config.h"
#include "core/core.h"
#include "core/manager_internal.h"

struct cpex__policy;

/** One change's routing being built (under the manager's write lock). */
typedef struct cpex__apply {
    cpex_manager *m;
    cpex__config *cfg;
    cpex__binding_list *bindings;
    const struct cpex__policy *old; /* a reload: override instances it may keep; NULL */
    bool *taken;                    /* per old instance: kept already */
    size_t made_count;
    cpex__plugin **made; /* instances created by this change (the policy's) */
} cpex__apply;

void cpex__apply_init(cpex__apply *a, cpex_manager *m, cpex__config *cfg,
                      cpex__binding_list *bindings, const struct cpex__policy *old);
void cpex__apply_cleanup(cpex__apply *a);

/**
 * The policy of `a->cfg` (its routing moves into it) for a manager whose
 * plugins will be `plugins`. Overrides are built (or kept from a->old).
 * NULL with the problems in `err`.
 */
struct cpex__policy *cpex__mgr_policy_for(cpex__apply *a, cpex__plugin *const *plugins,
                                          size_t count, cpex_error *err);

/** Initialize the override instances this change created. */
cpex_status cpex__mgr_init_made(cpex__apply *a, cpex_error *err);

/**
 * What a reload compares to keep a plugin, as one canonical text (equal
 * texts: equal entries): the entry's trusted settings (effective on_error
 * and timeout included), config, base directory, the factory's artifact
 * text, isolation, pin, state namespace, strict permissions, and whether
 * it is an override's instance. cpex__malloc'd; NULL when the factory
 * cannot identify the artifact (or on OOM): such a plugin is never kept.
 */
char *cpex__mgr_fingerprint(cpex_manager *m, const cpex__config *cfg, const cpex__config_plugin *cp,
                            bool override);
/** Room for a factory's artifact text (identify). */
#define CPEX__ARTIFACT_CAP 512
/** The same, with the factory's artifact text already known. */
char *cpex__mgr_fingerprint_of(cpex_manager *m, const cpex__config *cfg,
                               const cpex__config_plugin *cp, bool override, const char *artifact);

/** Whether a plugin of the published registry can be kept by a reload. */
bool cpex__mgr_keepable(const cpex_manager *m, cpex__plugin *p);

#endif
