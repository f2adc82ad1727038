/*
 * cmf_internal.h — what cmf.c (structure, builders), cmf_json.c and
 * cmf_json_write.c (JSON form, read and written) share about a message's
 * memory.
 *
 * Layout of a message built by libcpex:
 *   - the cpex_cmf_message struct: one allocation;
 *   - schema_version and channel: one allocation each;
 *   - the parts array: one allocation, resized exactly on append/remove;
 *   - a text/thinking part: its text is one allocation, body is NULL;
 *   - any other part: one allocation holding the body struct followed by
 *     all its strings (packed, each NUL-terminated), plus the jansson
 *     values it owns and, for prompt_result, an array of nested messages.
 * Every pointer in the message is owned by it. Packing strings behind the
 * body keeps a part to one free and makes clone a copy of a template.
 */
#ifndef CPEX_MODEL_CMF_INTERNAL_H
#define CPEX_MODEL_CMF_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "cpex/abi.h"
#include "cpex/cmf.h"

/* prompt_result.messages may nest messages; deeper input is refused so that
 * the recursive walks (parse, clone, equal, free, to_json) stay bounded. */
#define CMF_MAX_DEPTH 32

/* Number of channels and resource types (names in cmf.c). */
#define CMF_CHANNEL_COUNT 3u
#define CMF_RESOURCE_TYPE_COUNT 7u
#define CMF_ROLE_COUNT 5u

/* Room for any body while it is assembled on the stack. */
typedef union cpex__cmf_body_any {
    cpex_cmf_tool_call tool_call;
    cpex_cmf_tool_result tool_result;
    cpex_cmf_resource resource;
    cpex_cmf_resource_ref resource_ref;
    cpex_cmf_prompt_request prompt_request;
    cpex_cmf_prompt_result prompt_result;
    cpex_cmf_media media;
} cpex__cmf_body_any;

/* Field `off` of a body viewed as the given type. */
#define CMF_FIELD(body, off, type) ((type *)(void *)((char *)(body) + (off)))

/** Whether `kind` has a body (every kind but text and thinking). */
int cpex__cmf_kind_has_body(uint32_t kind);

/** A template with every optional field absent, struct_size set. */
void cpex__cmf_body_init(uint32_t kind, cpex__cmf_body_any *tmpl);

/**
 * Turn a template into a heap body: copies the body and every string it
 * points at (borrowed) into one allocation. Takes the template's JSON
 * values and nested messages, even on failure. NULL on OOM.
 */
void *cpex__cmf_body_pack(uint32_t kind, cpex__cmf_body_any *tmpl);

/** Release what a body or template owns besides its own memory. */
void cpex__cmf_body_release(uint32_t kind, void *body);

/** Free a part's contents (text or body) and zero it. */
void cpex__cmf_part_clear(cpex_cmf_part *part);

/**
 * A new message with `part_cap` zeroed parts allocated (part_count 0) and
 * the given schema version (copied). NULL on OOM.
 */
cpex_cmf_message *cpex__cmf_message_alloc(uint32_t role, const char *schema, size_t schema_len,
                                    size_t part_cap);

/** Copy `len` bytes into the message's channel. CPEX_E_NOMEM on OOM. */
cpex_status cpex__cmf_message_set_channel(cpex_cmf_message *message, const char *channel,
                                    size_t len);

/** Writable view of the parts array (the ABI exposes it read-only). */
static inline cpex_cmf_part *cmf_parts(cpex_cmf_message *message)
{
    return (cpex_cmf_part *)message->parts;
}

/* Name tables; index = enum value. */
extern const char *const cpex__cmf_role_names[CMF_ROLE_COUNT];
extern const char *const cpex__cmf_kind_names[CPEX_PART_KIND_COUNT];
extern const char *const cpex__cmf_channel_names[CMF_CHANNEL_COUNT];
extern const char *const cpex__cmf_resource_type_names[CMF_RESOURCE_TYPE_COUNT];

#endif
