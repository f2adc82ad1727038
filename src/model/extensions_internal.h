/*
 * extensions_internal.h — library-internal helpers over cpex_extensions
 * (public API in cpex/extensions.h).
 *
 * Most exist for the host table (ext_* slots), which hands plugins
 * pointer + length strings: the object already knows every length, so
 * these variants save a strlen per read. Like the public getters they are
 * allocation-free and return borrowed data, valid while the caller holds a
 * reference and nobody changes the object.
 *
 * The last few are what the object lends its JSON form
 * (extensions_json.c): the custom value's depth limit, its deep copy, and
 * replacing it whole (extensions_custom.c).
 */
#ifndef CPEX_MODEL_EXTENSIONS_INTERNAL_H
#define CPEX_MODEL_EXTENSIONS_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "cpex/abi.h"
#include "cpex/extensions.h"

/** What kind of field an enum cpex_ext_field number names. */
typedef enum cpex__ext_field_kind {
    CPEX_EXT_KIND_NONE = 0,   /* not a field (hostile or future number) */
    CPEX_EXT_KIND_SINGLE = 1, /* one string: use get / set */
    CPEX_EXT_KIND_LIST = 2    /* tags, roles, labels: use count / item / add */
} cpex__ext_field_kind;

/** The kind of `field`; CPEX_EXT_KIND_NONE for any number that is not a field. */
cpex__ext_field_kind cpex__ext_field_kind_of(uint32_t field);

/** A single-valued field as pointer + length; ptr NULL when unset. */
cpex_str cpex__extensions_get_str(const cpex_extensions *ext, uint32_t field);

/** The meta slot at once, for the router: one call per routed invoke. */
typedef struct cpex__ext_meta {
    cpex_str type, name, scope; /* ptr NULL when unset */
    size_t tag_count;
} cpex__ext_meta;

/** Fill `out` from `ext` (NULL: everything unset). */
void cpex__extensions_meta(const cpex_extensions *ext, cpex__ext_meta *out);

/** Item `index` of a list field as pointer + length; ptr NULL when out of range. */
cpex_str cpex__extensions_item_str(const cpex_extensions *ext, uint32_t field, size_t index);

/** A header value by case-insensitive name; ptr NULL when absent. */
cpex_str cpex__extensions_header_str(const cpex_extensions *ext, uint32_t set, const char *name);

/**
 * Header `index` of a set. Returns 1 and fills *name and *value (either
 * may be NULL) when it exists, 0 past the end or for a bad set.
 */
int cpex__extensions_header_at_str(const cpex_extensions *ext, uint32_t set, size_t index,
                                   cpex_str *name, cpex_str *value);

/** The whole custom object (borrowed), or NULL when no custom value was ever set. */
const json_t *cpex__extensions_custom_object(const cpex_extensions *ext);

/**
 * Current reference count. Only meaningful when no other thread can ref or
 * unref concurrently (tests, debug checks); 0 for NULL.
 */
size_t cpex__extensions_refcount(const cpex_extensions *ext);

/**
 * A read-only view of `src`'s current content in caller-provided storage
 * (no allocation): for work on another thread that must not see later
 * changes to `src` and may outlive it. Release with
 * cpex__extensions_view_release; never unref a view, never write one.
 */
void cpex__extensions_view_init(cpex_extensions *view, const cpex_extensions *src);
/** Drop what a view holds (idempotent). */
void cpex__extensions_view_release(cpex_extensions *view);

/** Size of the object, for storage of views (sizeof is opaque outside extensions*.c). */
extern const size_t cpex__extensions_size;

/*
 * How deep a custom value may nest. Copies recurse, and may run on plugin
 * worker threads with small stacks; real side data is a few levels deep.
 */
#define CPEX__EXT_MAX_JSON_DEPTH 256

/**
 * A fully independent copy of `v` that reports every failure (jansson's
 * own deep copy has not always done so). NULL on OOM, or with *too_deep
 * set when `v` nests deeper than CPEX__EXT_MAX_JSON_DEPTH.
 */
json_t *cpex__ext_json_copy(const json_t *v, bool *too_deep);

/**
 * Replace the whole custom object with `obj` (taken: a JSON object the
 * caller made, within CPEX__EXT_MAX_JSON_DEPTH). For the sole owner, like
 * every setter. CPEX_E_NOMEM (`obj` released, `ext` unchanged) on OOM.
 */
cpex_status cpex__extensions_replace_custom(cpex_extensions *ext, json_t *obj);

#endif
