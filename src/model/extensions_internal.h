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
#include <string.h>

#include <jansson.h>

#include "cpex/abi.h"
#include "cpex/extensions.h"
#include "util/hash.h"

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

/* The entity types routes know (cpex__ext_meta.type_id). */
enum {
    CPEX__ENTITY_OTHER = 0, /* another type, or unset */
    CPEX__ENTITY_TOOL = 1,
    CPEX__ENTITY_RESOURCE = 2,
    CPEX__ENTITY_PROMPT = 3,
    CPEX__ENTITY_LLM = 4
};

/**
 * The meta slot as the router reads it on every routed invoke. Every
 * body of the object holds one, kept up to date by the setters of entity
 * type, entity name, scope and tags, so that an invoke reads it with a
 * few loads: no call, no hash. A body is never written once shared
 * (copy-on-write), so the record, like the strings it points into, stays
 * valid for every invoke that uses this body.
 */
typedef struct cpex__ext_meta {
    /* cpex__ext_entity_hash of type, name and scope; 0 when `keyed` is false. */
    uint64_t hash;
    /* The name's first and last eight bytes (cpex__hash_words): with its
     * length, the whole of a name of up to 16 bytes, compared as two words. */
    uint64_t name_w0, name_w1;
    /* The key's small parts in one number: type_id | (scope set) << 8 |
     * min(name length, 0xffff) << 16. */
    uint32_t small;
    uint8_t keyed; /* 1 when entity type and name are both set */
    uint8_t plain; /* keyed, and no tags: the router's fast path */
    /* small, name_w0 and name_w1 say it all: a known type, no scope, a
     * name of at most 16 bytes. Else the strings are compared too. */
    uint8_t words_only;
    uint8_t fast;     /* plain and words_only: the one test of the router's inline hit */
    uint32_t type_id; /* CPEX__ENTITY_*: the four known types are compared as numbers */
    /* cpex__hash_bytes of each part, made when that part is set (0 when
     * unset; the type's only when it has no type_id). */
    uint64_t name_hash, type_hash, scope_hash;
    cpex_str type, name, scope; /* ptr NULL when unset; point into the body's strings */
    size_t tag_count;
} cpex__ext_meta;

/** cpex__ext_meta.small of these parts. */
static inline uint32_t cpex__ext_meta_small(uint32_t type_id, bool has_scope, size_t name_len)
{
    return (type_id & 0xff) | (uint32_t)has_scope << 8 |
           (uint32_t)(name_len < 0xffff ? name_len : 0xffff) << 16;
}

/** The type id of an entity type (CPEX__ENTITY_OTHER for any other). */
static inline uint32_t cpex__entity_type_id(cpex_str t)
{
    switch (t.len) {
    case 3: return memcmp(t.ptr, "llm", 3) == 0 ? CPEX__ENTITY_LLM : 0;
    case 4: return memcmp(t.ptr, "tool", 4) == 0 ? CPEX__ENTITY_TOOL : 0;
    case 6: return memcmp(t.ptr, "prompt", 6) == 0 ? CPEX__ENTITY_PROMPT : 0;
    case 8: return memcmp(t.ptr, "resource", 8) == 0 ? CPEX__ENTITY_RESOURCE : 0;
    default: return CPEX__ENTITY_OTHER;
    }
}

/**
 * The hash of an entity: its name, its type (the id of a known one, else
 * the string) and its scope when set, from the hashes of the parts
 * (util/hash.h). The route cache's keys start from it
 * (core/route_lookup.h); the setters store it in the meta record, so each
 * string is hashed once when it is set, not once per invoke.
 */
static inline uint64_t cpex__ext_entity_hash(const cpex__ext_meta *m)
{
    uint64_t h = m->name_hash + (uint64_t)m->type_id * 0xff51afd7ed558ccdull;
    if (!m->type_id)
        h = cpex__hash_mix(h, m->type_hash);
    if (m->scope.ptr)
        h = cpex__hash_mix(h, m->scope_hash ^ 0x5c09e7ull);
    return h;
}

/*
 * The first member of every extensions object (extensions_layout.h): the
 * body it reads now, whose first member is its meta record. Declared here
 * so that cpex__extensions_meta_of is a load, not a call.
 */
struct cpex__ext_body;
typedef struct cpex__ext_head {
    struct cpex__ext_body *body;
} cpex__ext_head;

/** The meta record of `ext` (not NULL), borrowed like every getter's result. */
static inline const cpex__ext_meta *cpex__extensions_meta_of(const cpex_extensions *ext)
{
    /* A pointer to a struct is one to its first member (C11 6.7.2.1): the
     * object starts with its head, the body with its meta record. */
    const cpex__ext_head *head = (const cpex__ext_head *)(const void *)ext;
    return (const cpex__ext_meta *)(const void *)head->body;
}

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
