/*
 * cpex/cmf.h — building, reading and serializing CMF messages on the host.
 *
 * A CMF message is the struct of abi.h (cpex_cmf_message), allocated by
 * libcpex. Plugins read it directly; hosts build one from JSON or with the
 * builders below, and free it with cpex_cmf_free(). Every string in a
 * message built here is NUL-terminated; JSON values inside are jansson
 * values owned by the message. A function here that takes a JSON value
 * takes it whether it succeeds or fails.
 *
 * JSON form (the CPEX core's):
 *   {"schema_version":"2.0","role":"user","channel":"final",
 *    "content":[{"content_type":"text","text":"hi"},
 *               {"content_type":"tool_call","content":{"tool_call_id":"1",
 *                "name":"search","arguments":{"q":"x"}}}]}
 *
 * Reading follows CPEX (serde): unknown keys anywhere are ignored; `null`
 * for an optional field means absent; defaulted fields may be left out
 * (schema_version "2.0", content [], arguments {}, annotations {},
 * messages [], is_error false, tool_result.content null); a missing
 * resource_type means "file"; blob is an array of integers 0-255. libcpex
 * refuses more than CPEX does: strings containing NUL (plugins read them
 * as C strings), prompt_result messages nested more than 32 levels deep,
 * and (cpex_cmf_parse) duplicate object keys.
 *
 * Writing leaves out absent optional fields and an empty
 * resource.annotations (as CPEX does); defaulted fields are always written.
 *
 * Memory: every pointer inside a message belongs to it. Change a message
 * only through the functions below; never assign its pointers yourself.
 */
#ifndef CPEX_CMF_H
#define CPEX_CMF_H

#include "cpex/export.h"

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "cpex/abi.h"
#include "cpex/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Create an empty message of `role` (schema "2.0", no parts). NULL on OOM or bad role. */
CPEX_API cpex_cmf_message *cpex_cmf_new(uint32_t role);

/** Free a message built by libcpex and everything it owns. NULL is allowed. */
CPEX_API void cpex_cmf_free(cpex_cmf_message *message);

/**
 * A copy the caller owns. NULL on OOM or NULL input. The copy shares the
 * parts' content with the original (one allocation, whatever the size):
 * content is never changed while shared — changing a part of either
 * message gives that message its own copy of the part — so the two are
 * independent, and may be read and freed on different threads.
 */
CPEX_API cpex_cmf_message *cpex_cmf_clone(const cpex_cmf_message *message);

/**
 * Build a message from a parsed JSON object. Does not take `json`: JSON
 * values inside are deep copies. On failure returns NULL and, if `err` is
 * given, adds one item (code CPEX_E_INVALID, or CPEX_E_NOMEM) whose message
 * names the JSON path of the problem ("content[2].content.name: expected a
 * string, got an integer"; "message: …" for the top level).
 */
CPEX_API cpex_cmf_message *cpex_cmf_from_json(const json_t *json, cpex_error *err);

/**
 * Parse JSON text (`len` bytes) into a message; errors as
 * cpex_cmf_from_json, plus "message: invalid JSON at line L, column C: …"
 * (duplicate keys included).
 */
CPEX_API cpex_cmf_message *cpex_cmf_parse(const char *text, size_t len, cpex_error *err);

/** Convert to a new JSON object (caller owns it; values are copies). NULL on OOM. */
CPEX_API json_t *cpex_cmf_to_json(const cpex_cmf_message *message);

/** Serialize compactly; the caller frees the text with free(). NULL on OOM. */
CPEX_API char *cpex_cmf_dump(const cpex_cmf_message *message);

/** Deep structural equality (JSON values compared with json_equal). */
CPEX_API int cpex_cmf_equal(const cpex_cmf_message *a, const cpex_cmf_message *b);

/* Builders and mutators: each returns CPEX_E_NOMEM and leaves the message
 * unchanged when memory runs out; NULL `message` is CPEX_E_INVALID. */

/**
 * Append a text or thinking part (`kind`) holding a copy of `len` bytes of
 * `text` (NULL with len 0 for ""). CPEX_E_INVALID for another kind, or for
 * text that contains NUL or is not valid UTF-8.
 */
CPEX_API cpex_status cpex_cmf_append_text(cpex_cmf_message *message, uint32_t kind,
                                          const char *text, size_t len);

/**
 * Append a tool_call part. `arguments` (an object, or NULL for {}) is taken
 * over even on failure. `namespace_` may be NULL. Strings are copied and
 * must be valid UTF-8 (else CPEX_E_INVALID).
 */
CPEX_API cpex_status cpex_cmf_append_tool_call(cpex_cmf_message *message, const char *tool_call_id,
                                               const char *name, json_t *arguments,
                                               const char *namespace_);

/**
 * Append a tool_result part; `content` (any JSON, NULL for null) is taken
 * over even on failure. Any non-zero `is_error` is stored as 1.
 */
CPEX_API cpex_status cpex_cmf_append_tool_result(cpex_cmf_message *message,
                                                 const char *tool_call_id, const char *tool_name,
                                                 json_t *content, int is_error);

/**
 * Replace the text of text/thinking part `part` (`text` may point into the
 * old text). CPEX_E_INVALID for another kind, an index out of range, or
 * text as refused by cpex_cmf_append_text.
 */
CPEX_API cpex_status cpex_cmf_set_text(cpex_cmf_message *message, size_t part, const char *text,
                                       size_t len);

/**
 * Replace the arguments of tool_call part `part`; `arguments` (an object,
 * or NULL for {}) is taken over even on failure. CPEX_E_INVALID for
 * another kind, an index out of range, or a non-object.
 */
CPEX_API cpex_status cpex_cmf_set_tool_arguments(cpex_cmf_message *message, size_t part,
                                                 json_t *arguments);

/**
 * Replace the content of tool_result part `part`; `content` (any JSON
 * value, or NULL for null) is taken over even on failure. CPEX_E_INVALID
 * for another kind or an index out of range.
 */
CPEX_API cpex_status cpex_cmf_set_tool_result_content(cpex_cmf_message *message, size_t part,
                                                      json_t *content);

/** Remove part `part`, shifting the later ones down. Cannot run out of memory. */
CPEX_API cpex_status cpex_cmf_remove_part(cpex_cmf_message *message, size_t part);

/** The JSON `content_type` name of a part kind ("tool_call"); NULL if unknown. */
CPEX_API const char *cpex_cmf_part_kind_name(uint32_t kind);

/** The JSON name of a role ("user"); NULL if unknown. */
CPEX_API const char *cpex_cmf_role_name(uint32_t role);

/** Concatenate the text parts, not thinking (no separator); free() it. NULL on OOM. */
CPEX_API char *cpex_cmf_text_content(const cpex_cmf_message *message);

#ifdef __cplusplus
}
#endif

#endif /* CPEX_CMF_H */
