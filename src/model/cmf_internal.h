/*
 * cmf_internal.h — what cmf.c (structure, builders), cmf_json.c and
 * cmf_json_write.c (JSON form, read and written) share about a message's
 * memory.
 *
 * Layout of a message built by libcpex:
 *   - one allocation: a hidden header (magic, capacity), the
 *     cpex_cmf_message struct, room for the parts array and, unless it is
 *     "2.0", the schema version's text; the channel points at the name
 *     table; a parts array that outgrows its room moves to an allocation
 *     of its own;
 *   - each part's content in a cell (refcounted): a text/thinking part's
 *     text, or the body struct followed by all its strings (packed, each
 *     NUL-terminated), plus the jansson values it owns and, for
 *     prompt_result, an array of nested messages.
 * A clone is one allocation and a reference per part: cells are shared,
 * never written while shared, so a clone handed to another thread (the
 * concurrent phase) stays valid and unchanged whatever the original's
 * owner does next. JSON values in a cell are never shared with anything
 * outside it (parse and to_json copy them).
 */
#ifndef CPEX_MODEL_CMF_INTERNAL_H
#define CPEX_MODEL_CMF_INTERNAL_H

#include <stdbool.h>
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
 * Turn a template into a body in a new cell: copies the body and every
 * string it points at (borrowed) into one allocation. Takes the template's JSON
 * values and nested messages, even on failure. NULL on OOM.
 */
void *cpex__cmf_body_pack(uint32_t kind, cpex__cmf_body_any *tmpl);

/** Release what a body or template owns besides its own memory. */
void cpex__cmf_body_release(uint32_t kind, void *body);

/**
 * The content of a part — its text, or its body with every string the body
 * points at — lives in a cell: one allocation with a reference count.
 * Clones share cells; a cell held by more than one message is never
 * written (a change makes a new cell).
 */
typedef struct cpex__cmf_cell cpex__cmf_cell;

/** The cell of a part, or NULL when the part has no content yet. */
cpex__cmf_cell *cpex__cmf_cell_of(const cpex_cmf_part *part);
/** Whether one message holds `cell` (so that message may change it in place). */
bool cpex__cmf_cell_sole(const cpex__cmf_cell *cell);
/** A new text cell holding a copy of `text` (len bytes + NUL). NULL on OOM. */
char *cpex__cmf_text_new(uint32_t kind, const char *text, size_t len);
/** Release a part's cell and zero the part. */
void cpex__cmf_part_clear(cpex_cmf_part *part);
/** Make `dst` a part that shares `src`'s cell. */
void cpex__cmf_part_share(const cpex_cmf_part *src, cpex_cmf_part *dst);
/**
 * A library-made copy of a message built by hand (a view whose parts and
 * strings live elsewhere, such as the isolation transport decodes): every
 * part's content is copied into cells of its own. `depth`: 1 for a
 * top-level message. NULL on OOM or nesting deeper than CMF_MAX_DEPTH.
 */
cpex_cmf_message *cpex__cmf_import(const cpex_cmf_message *foreign, int depth);
/** Whether `message` was made by libcpex (every message a payload may carry is). */
bool cpex__cmf_is_ours(const cpex_cmf_message *message);

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
