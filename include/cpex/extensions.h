/*
 * cpex/extensions.h — typed side data beside the payload, built by the host.
 *
 * Slots: meta (entity type, entity name, scope, tags), security (subject id and
 * type, roles, labels, classification), http (request and response
 * headers), request (request id, trace id, span id, environment,
 * timestamp) and custom (a JSON object). Fields are named by
 * enum cpex_ext_field of abi.h.
 *
 * An extensions object is reference counted. While you hold the only
 * reference you may change it; once shared (passed to an invoke that keeps
 * it, or ref'd) treat it as read-only. Plugins see a view filtered by their
 * capabilities; the object itself is never filtered. A function here that
 * takes a JSON value takes it whether it succeeds or fails.
 */
#ifndef CPEX_EXTENSIONS_H
#define CPEX_EXTENSIONS_H

#include "cpex/export.h"

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "cpex/abi.h"
#include "cpex/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Opaque extensions object. */
typedef struct cpex_extensions cpex_extensions;

/** A new, empty extensions object with one reference. NULL on OOM. */
CPEX_API cpex_extensions *cpex_extensions_new(void);

/** Take another reference (returns `ext`). NULL is allowed. */
CPEX_API cpex_extensions *cpex_extensions_ref(const cpex_extensions *ext);

/** Drop a reference; frees at zero. NULL is allowed. */
CPEX_API void cpex_extensions_unref(cpex_extensions *ext);

/** A deep, independent copy with one reference. NULL on OOM or NULL input. */
CPEX_API cpex_extensions *cpex_extensions_copy(const cpex_extensions *ext);

/** Set a single-valued field (the string is copied; NULL clears it). */
CPEX_API cpex_status cpex_extensions_set(cpex_extensions *ext, uint32_t field, const char *value);

/** Append to a list field (tags, roles, labels). Duplicates are kept once. */
CPEX_API cpex_status cpex_extensions_add(cpex_extensions *ext, uint32_t field, const char *value);

/**
 * Set a header of a set (enum cpex_header_set). Names compare
 * case-insensitively; setting an existing name replaces its value and keeps
 * its position. NULL `value` removes the header.
 */
CPEX_API cpex_status cpex_extensions_set_header(cpex_extensions *ext, uint32_t set,
                                                const char *name, const char *value);

/** Set a custom value (takes `value`, even on failure; NULL deletes the key). */
CPEX_API cpex_status cpex_extensions_set_custom(cpex_extensions *ext, const char *key,
                                                json_t *value);

/** A single-valued field, or NULL when unset. Borrowed from `ext`. */
CPEX_API const char *cpex_extensions_get(const cpex_extensions *ext, uint32_t field);

/** Number of items of a list field. */
CPEX_API size_t cpex_extensions_count(const cpex_extensions *ext, uint32_t field);

/** Item `index` of a list field, or NULL. Borrowed. */
CPEX_API const char *cpex_extensions_item(const cpex_extensions *ext, uint32_t field, size_t index);

/** Whether the labels contain `label` (case-insensitive). */
CPEX_API int cpex_extensions_has_label(const cpex_extensions *ext, const char *label);

/** A header value by case-insensitive name, or NULL. Borrowed. */
CPEX_API const char *cpex_extensions_header(const cpex_extensions *ext, uint32_t set,
                                            const char *name);

/** Number of headers in a set. */
CPEX_API size_t cpex_extensions_header_count(const cpex_extensions *ext, uint32_t set);

/** Header `index` of a set: its name (returned) and value (*value). NULL past the end. */
CPEX_API const char *cpex_extensions_header_at(const cpex_extensions *ext, uint32_t set,
                                               size_t index, const char **value);

/** A custom value, or NULL. Borrowed. */
CPEX_API const json_t *cpex_extensions_custom(const cpex_extensions *ext, const char *key);

/**
 * JSON form: {"meta":{"entity_type","entity_name","scope","tags":[]},
 * "security":{"subject":{"id","type","roles":[]},"labels":[],"classification"},
 * "http":{"request_headers":{},"response_headers":{}},
 * "request":{"request_id","trace_id","span_id","environment","timestamp"},
 * "custom":{}}. Empty slots are left out. Caller owns the result.
 */
CPEX_API json_t *cpex_extensions_to_json(const cpex_extensions *ext);

/**
 * Build from the JSON form. Unknown keys are an error naming their path.
 * Returns NULL and fills `err` on failure.
 */
CPEX_API cpex_extensions *cpex_extensions_from_json(const json_t *json, cpex_error *err);

/** Whether two objects hold the same data (NULL equals an empty object). */
CPEX_API int cpex_extensions_equal(const cpex_extensions *a, const cpex_extensions *b);

#ifdef __cplusplus
}
#endif

#endif /* CPEX_EXTENSIONS_H */
