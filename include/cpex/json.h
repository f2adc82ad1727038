/*
 * cpex/json.h — how the host API carries JSON.
 *
 * On the host side libcpex uses jansson's json_t directly: configuration
 * blocks, tool arguments, violation details, metadata and context values
 * are jansson values. The opaque `cpex_json` of abi.h is the same object
 * seen from a plugin; these two inline casts convert between the views.
 */
#ifndef CPEX_JSON_H
#define CPEX_JSON_H

#include <jansson.h>

#include "cpex/abi.h"

/** View a host JSON value as the plugin-side opaque type. */
static inline cpex_json *cpex_json_from_jansson(json_t *value) { return (cpex_json *)value; }

/** View a plugin-side JSON handle as a jansson value. */
static inline json_t *cpex_json_to_jansson(cpex_json *value) { return (json_t *)value; }

/** Const variant of cpex_json_to_jansson. */
static inline const json_t *cpex_json_to_jansson_const(const cpex_json *value)
{
    return (const json_t *)value;
}

#endif /* CPEX_JSON_H */
