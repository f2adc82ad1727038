/*
 * extensions_fields.c — the single-valued fields (entity, scope, subject,
 * request and trace ids, ...) and the list fields (tags, roles, labels)
 * of the extensions object (cpex/extensions.h): their numbering, setters
 * and getters. The object's memory is extensions_layout.h.
 */
#include "model/extensions_layout.h"

#include <stdint.h>
#include <string.h>

#include "model/extensions_internal.h"
#include "model/text_check.h"
#include "util/alloc.h"

/* Single-valued fields, in a dense array. */
enum {
    S_ENTITY_TYPE,
    S_ENTITY_NAME,
    S_SCOPE,
    S_SUBJECT_ID,
    S_SUBJECT_TYPE,
    S_CLASSIFICATION,
    S_REQUEST_ID,
    S_TRACE_ID,
    S_SPAN_ID,
    S_ENVIRONMENT,
    S_TIMESTAMP,
    S_COUNT
};

/* List fields. */
enum { L_TAGS, L_ROLES, L_LABELS, L_COUNT };

_Static_assert(S_COUNT == CPEX__EXT_SINGLES, "a body holds every single-valued field");
_Static_assert(L_COUNT == CPEX__EXT_LISTS, "a body holds every list field");

/* Field number -> slot. A switch rather than a table indexed by the
 * number, so a hostile number can never index out of bounds. */
static int single_index(uint32_t field)
{
    switch (field) {
    case CPEX_EXT_ENTITY_TYPE: return S_ENTITY_TYPE;
    case CPEX_EXT_ENTITY_NAME: return S_ENTITY_NAME;
    case CPEX_EXT_SCOPE: return S_SCOPE;
    case CPEX_EXT_SUBJECT_ID: return S_SUBJECT_ID;
    case CPEX_EXT_SUBJECT_TYPE: return S_SUBJECT_TYPE;
    case CPEX_EXT_CLASSIFICATION: return S_CLASSIFICATION;
    case CPEX_EXT_REQUEST_ID: return S_REQUEST_ID;
    case CPEX_EXT_TRACE_ID: return S_TRACE_ID;
    case CPEX_EXT_SPAN_ID: return S_SPAN_ID;
    case CPEX_EXT_ENVIRONMENT: return S_ENVIRONMENT;
    case CPEX_EXT_TIMESTAMP: return S_TIMESTAMP;
    default: return -1;
    }
}

static int list_index(uint32_t field)
{
    switch (field) {
    case CPEX_EXT_TAGS: return L_TAGS;
    case CPEX_EXT_ROLES: return L_ROLES;
    case CPEX_EXT_LABELS: return L_LABELS;
    default: return -1;
    }
}

cpex__ext_field_kind cpex__ext_field_kind_of(uint32_t field)
{
    if (single_index(field) >= 0)
        return CPEX_EXT_KIND_SINGLE;
    if (list_index(field) >= 0)
        return CPEX_EXT_KIND_LIST;
    return CPEX_EXT_KIND_NONE;
}

/* ------------------------------------------------------------------ */
/* Setters                                                             */
/* ------------------------------------------------------------------ */

/* The meta record's flags and hash from its parts (extensions_internal.h). */
static void meta_flags(cpex__ext_meta *m)
{
    m->keyed = m->type.ptr && m->name.ptr;
    if (!m->keyed) { /* the router looks no further */
        m->plain = m->words_only = m->fast = 0;
        m->hash = 0;
        return;
    }
    m->plain = m->tag_count == 0;
    m->small = cpex__ext_meta_small(m->type_id, m->scope.ptr != NULL, m->name.len);
    m->words_only = m->type_id && !m->scope.ptr && m->name.len <= 16;
    m->fast = m->plain && m->words_only;
    m->hash = cpex__ext_entity_hash(m);
}

/* The meta record after a write to field `idx` (one of its three): that
 * part's view and hash, once per change; then the flags. */
static void meta_refresh(cpex__ext_body *b, int idx)
{
    cpex__ext_meta *m = &b->meta;
    cpex_str v = cpex__ext_str_view(b->single[idx]);
    switch (idx) {
    case S_ENTITY_TYPE:
        m->type = v;
        m->type_id = v.ptr ? cpex__entity_type_id(v) : CPEX__ENTITY_OTHER;
        m->type_hash = v.ptr && !m->type_id ? cpex__hash_bytes(v.ptr, v.len) : 0;
        break;
    case S_ENTITY_NAME:
        m->name = v;
        m->name_hash = v.ptr ? cpex__hash_bytes(v.ptr, v.len) : 0;
        m->name_w0 = m->name_w1 = 0;
        if (v.ptr)
            cpex__hash_words(v.ptr, v.len, &m->name_w0, &m->name_w1);
        break;
    default:
        m->scope = v;
        m->scope_hash = v.ptr ? cpex__hash_bytes(v.ptr, v.len) : 0;
        break;
    }
    meta_flags(m);
}

static bool in_meta(int idx)
{
    return idx == S_ENTITY_TYPE || idx == S_ENTITY_NAME || idx == S_SCOPE;
}

cpex_status cpex_extensions_set(cpex_extensions *ext, uint32_t field, const char *value)
{
    int idx = single_index(field);
    if (!ext || idx < 0)
        return CPEX_E_INVALID;
    cpex__ext_check_sole_owner(ext);
    if (!cpex__ext_own_body(ext))
        return CPEX_E_NOMEM;
    cpex__ext_str *old = ext->body->single[idx];
    if (!value) {
        ext->body->single[idx] = NULL;
        if (in_meta(idx))
            meta_refresh(ext->body, idx);
        cpex__ext_str_unref(old);
        return CPEX_OK;
    }
    size_t len = strlen(value);
    if (!cpex__text_ok(value, len))
        return CPEX_E_INVALID;
    if (old && old->len == len && memcmp(old->text, value, len) == 0)
        return CPEX_OK; /* unchanged: spare an allocation */
    cpex__ext_str *s = cpex__ext_str_new(value, len);
    if (!s)
        return CPEX_E_NOMEM;
    ext->body->single[idx] = s;
    if (in_meta(idx))
        meta_refresh(ext->body, idx);
    cpex__ext_str_unref(old); /* after the copy: `value` may point into `old` */
    return CPEX_OK;
}

static bool list_contains(const cpex__ext_list *list, int which, const char *value, size_t len)
{
    for (size_t i = 0; i < list->count; i++) {
        const cpex__ext_str *it = list->items[i];
        if (which == L_LABELS ? cpex__ascii_ieq(it->text, it->len, value, len)
                              : (it->len == len && memcmp(it->text, value, len) == 0))
            return true;
    }
    return false;
}

cpex_status cpex_extensions_add(cpex_extensions *ext, uint32_t field, const char *value)
{
    int idx = list_index(field);
    if (!ext || idx < 0 || !value)
        return CPEX_E_INVALID;
    cpex__ext_check_sole_owner(ext);
    size_t len = strlen(value);
    if (!cpex__text_ok(value, len))
        return CPEX_E_INVALID;
    if (!cpex__ext_own_body(ext))
        return CPEX_E_NOMEM;
    cpex__ext_list *list = &ext->body->lists[idx];
    /* Labels compare like CPEX's has_label (case-insensitive, first
     * spelling kept); tags and roles exactly. */
    if (list_contains(list, idx, value, len))
        return CPEX_OK;
    cpex__ext_str **items = cpex__grow(list->items, list->count, &list->cap, sizeof *items, 4);
    if (!items)
        return CPEX_E_NOMEM;
    list->items = items;
    cpex__ext_str *s = cpex__ext_str_new(value, len);
    if (!s)
        return CPEX_E_NOMEM; /* a larger array with the same items: unchanged */
    list->items[list->count++] = s;
    if (idx == L_TAGS) {
        ext->body->meta.tag_count = list->count;
        meta_flags(&ext->body->meta);
    }
    return CPEX_OK;
}

/* ------------------------------------------------------------------ */
/* Getters (allocation-free, borrowed)                                 */
/* ------------------------------------------------------------------ */

cpex_str cpex__extensions_get_str(const cpex_extensions *ext, uint32_t field)
{
    int idx = single_index(field);
    return (ext && idx >= 0) ? cpex__ext_str_view(ext->body->single[idx])
                             : cpex__ext_str_view(NULL);
}

const char *cpex_extensions_get(const cpex_extensions *ext, uint32_t field)
{
    return cpex__extensions_get_str(ext, field).ptr;
}

size_t cpex_extensions_count(const cpex_extensions *ext, uint32_t field)
{
    int idx = list_index(field);
    return (ext && idx >= 0) ? ext->body->lists[idx].count : 0;
}

cpex_str cpex__extensions_item_str(const cpex_extensions *ext, uint32_t field, size_t index)
{
    int idx = list_index(field);
    if (!ext || idx < 0 || index >= ext->body->lists[idx].count)
        return cpex__ext_str_view(NULL);
    return cpex__ext_str_view(ext->body->lists[idx].items[index]);
}

const char *cpex_extensions_item(const cpex_extensions *ext, uint32_t field, size_t index)
{
    return cpex__extensions_item_str(ext, field, index).ptr;
}

int cpex_extensions_has_label(const cpex_extensions *ext, const char *label)
{
    if (!ext || !label)
        return 0;
    return list_contains(&ext->body->lists[L_LABELS], L_LABELS, label, strlen(label));
}
