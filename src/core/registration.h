/*
 * registration.h — the part of the core the loader layer may see: how a
 * plugin's registration is read and checked. The loader checks a
 * registration with the same rules as the manager before it filters the
 * handlers by a `#` fragment, so a fragment cannot hide a broken list.
 *
 * A registration is data a plugin wrote: its handler array is walked with
 * the stride the plugin declared (handler_size, ABI 1.1), never indexed as
 * this host's cpex_handler_reg[] — read every handler through
 * cpex__registration_handler.
 */
#ifndef CPEX_CORE_REGISTRATION_H
#define CPEX_CORE_REGISTRATION_H

#include <stddef.h>

#include "cpex/abi.h"
#include "cpex/error.h"
#include "util/errors.h"

/** The most handlers one registration may hold; more is taken as corruption. */
#define CPEX__MAX_HANDLERS 1024u
/** The largest handler_size accepted; more is taken as corruption. */
#define CPEX__MAX_HANDLER_SIZE 1024u

/**
 * The stride of `reg`'s handler array: its handler_size when the
 * registration is large enough to carry the field and it is non-zero, else
 * the 1.0 size. Not validated: cpex__registration_check says whether it is
 * acceptable.
 */
size_t cpex__registration_handler_size(const cpex_plugin_registration *reg);

/**
 * Handler `index` of a registration cpex__registration_check accepted, in
 * this host's layout: the fields the plugin's entry holds, zero for those
 * an older plugin's entry lacks.
 */
cpex_handler_reg cpex__registration_handler(const cpex_plugin_registration *reg, size_t index);

/**
 * Check a registration as a hostile plugin could present it: its size and
 * reserved field, its handler_size (at least the 1.0 size, at most
 * CPEX__MAX_HANDLER_SIZE, a multiple of the entry's alignment, and no
 * entry with non-zero bytes past this host's own entry), at least one
 * handler and at most CPEX__MAX_HANDLERS, no NULL function, no empty hook
 * name, no two handlers for one hook. `from` names its origin in messages.
 * Returns CPEX_OK, or CPEX_E_LOAD with the problems added to `err`.
 */
cpex_status cpex__registration_check(const cpex_plugin_registration *reg, const char *from,
                                     const cpex__where *where, cpex_error *err);

/**
 * Point an accepted registration at `count` handlers in this host's layout
 * (e.g. a filtered copy): sets handler_size to sizeof(cpex_handler_reg)
 * and, so that the field counts, struct_size to this host's size, after
 * zeroing what lay past the size the plugin declared.
 */
void cpex__registration_use_handlers(cpex_plugin_registration *reg,
                                     const cpex_handler_reg *handlers, size_t count);

/*
 * Reload support for a scheme's factory (the `lib:` loader registers one):
 * write into buf a text that changes whenever the artifact `request` would
 * be created from changes (for a library: its file's device, inode, size
 * and mtime); return 0, or -1 when it cannot tell. A reload keeps a plugin
 * only when its configuration and this text are unchanged. Kinds without
 * one (exact kinds, host factories) are the same while their configuration
 * is: their code cannot change without a restart.
 */
struct cpex_manager;
struct cpex_factory_request;
typedef int (*cpex__identify_fn)(const struct cpex_factory_request *request, char *buf, size_t cap);
/** Attach `fn` to `scheme` (copied) of manager `m`. CPEX_E_NOMEM or CPEX_OK. */
cpex_status cpex__register_scheme_identify(struct cpex_manager *m, const char *scheme,
                                           cpex__identify_fn fn);

/** "[a, b]": the hook names of an accepted registration, each cut at 100 bytes. */
void cpex__registration_list_hooks(const cpex_plugin_registration *reg, char *buf, size_t cap);

#endif
