/*
 * cpex/payload.h — payloads on the host side: views of CMF messages and
 * JSON documents, and host-defined payload types.
 *
 * A cpex_payload (abi.h) is a small view: a kind, a type name and a pointer
 * to data the caller owns. Building one allocates nothing.
 */
#ifndef CPEX_PAYLOAD_H
#define CPEX_PAYLOAD_H

#include <stddef.h>
#include <string.h>

#include <jansson.h>

#include "cpex/abi.h"

#ifdef __cplusplus
extern "C" {
#endif

/** A borrowed view of a CMF message as a payload. */
static inline cpex_payload cpex_payload_cmf(const cpex_cmf_message *message)
{
    cpex_payload p;
    p.struct_size = (uint32_t)sizeof p;
    p.kind = CPEX_PAYLOAD_CMF;
    p.type_name.ptr = "cmf";
    p.type_name.len = 3;
    p.data = message;
    return p;
}

/** A borrowed view of a JSON document as a payload. */
static inline cpex_payload cpex_payload_json(const json_t *document)
{
    cpex_payload p;
    p.struct_size = (uint32_t)sizeof p;
    p.kind = CPEX_PAYLOAD_JSON;
    p.type_name.ptr = "json";
    p.type_name.len = 4;
    p.data = document;
    return p;
}

/**
 * A borrowed view of host-defined data as a payload of the type registered
 * under `type_name` (cpex_manager_register_payload_type). `type_name` must
 * outlive the view.
 */
static inline cpex_payload cpex_payload_custom(const char *type_name, const void *data)
{
    cpex_payload p;
    p.struct_size = (uint32_t)sizeof p;
    p.kind = CPEX_PAYLOAD_CUSTOM;
    p.type_name.ptr = type_name;
    p.type_name.len = type_name ? strlen(type_name) : 0;
    p.data = data;
    return p;
}

/**
 * A host-defined payload type. The manager copies this struct; `name` is
 * copied too. `clone` makes an independent copy the pipeline owns (used
 * for concurrent and background phases); `free` releases data made by
 * `clone` or handed over by a plugin as a modified payload.
 */
typedef struct cpex_payload_type {
    uint32_t struct_size; /* sizeof(cpex_payload_type) */
    const char *name;     /* unique; not "cmf" or "json" */
    void *(*clone)(const void *data, void *user);
    void (*free)(void *data, void *user);
    void *user; /* passed to clone and free */
} cpex_payload_type;

#ifdef __cplusplus
}
#endif

#endif /* CPEX_PAYLOAD_H */
