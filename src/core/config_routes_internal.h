/*
 * config_routes_internal.h — what the files that read the routing
 * sections of a configuration share (core layer, internal):
 * config_route_common.c's key rules and `plugins:` lists, read by
 * config_routes.c (routes), config_groups.c (groups, global) and
 * config_conditions.c (conditions); and what config_routes.c needs of
 * config_groups.c after the file. The sections' entry points, called by
 * the configuration checks, are in routing_config.h.
 */
#ifndef CPEX_CORE_CONFIG_ROUTES_INTERNAL_H
#define CPEX_CORE_CONFIG_ROUTES_INTERNAL_H

#include <stddef.h>

#include "core/config.h"
#include "core/routing_config.h"
#include "core/yaml_tree.h"

/* ---- config_route_common.c ---- */

/**
 * The routing a section adds to (marked present), when its value `v` is
 * there and of node type `type`; a value of another type is reported
 * ("'<key>' must be <what>, got ..."). NULL when there is nothing to read.
 */
cpex__rcfg *cpex__rcfg_section(cpex__ydiag *diag, cpex__config *cfg, const cpex__ynode *v, int type,
                               const char *key, const char *what);

/**
 * Key node `k` of a mapping in `scope` (`what` names the mapping, "a
 * route"): its index among `keys`, -1 to skip it (reported or warned
 * about), -2 when the value budget is gone (stop reading the mapping).
 * `first` records where each key was first seen.
 */
int cpex__rcfg_mapping_key(cpex__ydiag *diag, const cpex__ynode *k, const char *scope,
                           const char *what, const char *const *keys, size_t count, int *first);

/** Warn that key `k` (`key`) in `scope` is one CPEX knows and libcpex does not act on. */
void cpex__rcfg_warn_ignored(cpex__ydiag *diag, const cpex__ynode *k, const char *scope,
                             const char *key);

/** Refuse the legacy `identity:` key `k` in `scope` with CPEX's message. */
void cpex__rcfg_report_identity(cpex__ydiag *diag, const cpex__ynode *k, const char *scope);

/** A `plugins:` value `v` (of key `k`) of a route or group in `scope`, into `out`. */
void cpex__rref_list_read(cpex__ydiag *diag, const cpex__ynode *k, const cpex__ynode *v,
                          const char *scope, cpex__rref_list *out);

/** Free what `l` holds and empty it. */
void cpex__rref_list_free(cpex__rref_list *l);

/* ---- config_groups.c ---- */

/** Free what group `g` holds. */
void cpex__rgroup_free(cpex__rgroup *g);

/**
 * After the file: drop the global policies a top-level group of the same
 * name beats, and order the groups as the file defines them.
 */
void cpex__rcfg_merge_groups(cpex__rcfg *r);

#endif
