/*
 * registration.h — the part of the core the loader layer may see: how a
 * plugin's registration is checked. The loader checks a registration with
 * the same rules as the manager before it filters the handlers by a `#`
 * fragment, so a fragment cannot hide a broken list.
 */
#ifndef CPEX_CORE_REGISTRATION_H
#define CPEX_CORE_REGISTRATION_H

#include "cpex/abi.h"
#include "cpex/error.h"
#include "util/errors.h"

/** The most handlers one registration may hold; more is taken as corruption. */
#define CPEX__MAX_HANDLERS 1024u

/**
 * Check a registration as a hostile plugin could present it: its size,
 * at least one handler and at most CPEX__MAX_HANDLERS, no NULL function,
 * no empty hook name, no two handlers for one hook. `from` names its
 * origin in messages. Returns CPEX_OK, or CPEX_E_LOAD with the problems
 * added to `err`.
 */
cpex_status cpex__registration_check(const cpex_plugin_registration *reg, const char *from,
                                     const cpex__where *where, cpex_error *err);

/**
 * The hooks of a registration as "[a, b]" for messages (each name cut to
 * 100 characters, the whole to `cap` > 0 bytes). The registration must
 * have passed cpex__registration_check.
 */
void cpex__registration_hook_list(const cpex_plugin_registration *reg, char *buf, size_t cap);

#endif
