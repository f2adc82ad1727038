/*
 * extensions.c — the extensions object (cpex/extensions.h) and its
 * internal helpers (extensions_internal.h).
 *
 * Layout choices, and why:
 *   - Every string is an immutable, reference-counted block (ext_str).
 *     cpex_extensions_copy is the copy-on-write step the pipeline takes
 *     each time a plugin writes, so a copy only takes references on the
 *     strings instead of duplicating them: one allocation for the object
 *     and one per non-empty array.
 *   - The custom object is shared whole between copies through our own
 *     counted wrapper (ext_custom) and deep-copied only when a shared one
 *     is written. JSON values are never shared between two wrappers: the
 *     pipeline copies and drops objects on several threads at once, and
 *     jansson's json_incref/json_decref read the count non-atomically
 *     before changing it (ThreadSanitizer reports it), so concurrent
 *     reference counting on one jansson value is off limits.
 *   - to_json and from_json deep-copy: the caller owns that JSON.
 *   - Getters return pointers into the object and never allocate: the
 *     host table calls them on every plugin read.
 *   - Every setter allocates everything it needs before it touches the
 *     object, so a failed allocation leaves the object as it was.
 *   - Strings are checked to be UTF-8 when they come in, so the JSON form
 *     can always be built (jansson refuses anything else).
 */
#include "model/extensions_internal.h"

#include <assert.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "model/text_check.h"
#include "util/alloc.h"
#include "util/errors.h"
#include "util/suggest.h"

/* ------------------------------------------------------------------ */
/* Shared immutable strings                                            */
/* ------------------------------------------------------------------ */

typedef struct ext_str {
    atomic_size_t refs;
    size_t len;
    char text[];
} ext_str;

static ext_str *str_new(const char *s, size_t len)
{
    if (len > SIZE_MAX - sizeof(ext_str) - 1)
        return NULL;
    ext_str *p = cpex__malloc(sizeof(ext_str) + len + 1);
    if (!p)
        return NULL;
    atomic_init(&p->refs, 1);
    p->len = len;
    memcpy(p->text, s, len);
    p->text[len] = '\0';
    return p;
}

static ext_str *str_ref(ext_str *s)
{
    /* Relaxed is enough to take a reference: the caller already holds one,
     * which keeps the block alive (same reasoning as the object itself). */
    if (s)
        atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
    return s;
}

static void str_unref(ext_str *s)
{
    /* acq_rel rather than release + acquire fence: ThreadSanitizer does not
     * model fences, and the cost is the same on x86. */
    if (s && atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) == 1)
        cpex__free(s);
}

static cpex_str str_view(const ext_str *s)
{
    cpex_str out = {NULL, 0};
    if (s) {
        out.ptr = s->text;
        out.len = s->len;
    }
    return out;
}

/* ------------------------------------------------------------------ */
/* The object                                                          */
/* ------------------------------------------------------------------ */

/* Single-valued fields, in a dense array. */
enum {
    S_ENTITY_TYPE,
    S_ENTITY_NAME,
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

#define HEADER_SETS 2

typedef struct ext_list {
    ext_str **items;
    size_t count, cap;
} ext_list;

typedef struct ext_header {
    ext_str *name;
    ext_str *value;
} ext_header;

typedef struct ext_headers {
    ext_header *items;
    size_t count, cap;
} ext_headers;

/* The custom object with its own count of the extensions objects that
 * share it. Only this wrapper holds a reference on `obj`. */
typedef struct ext_custom {
    atomic_size_t refs;
    json_t *obj;
} ext_custom;

struct cpex_extensions {
    atomic_size_t refs;
    ext_str *single[S_COUNT];
    ext_list lists[L_COUNT];
    ext_headers headers[HEADER_SETS];
    ext_custom *custom; /* NULL until the first custom value */
};

/* Takes `obj`; NULL (and `obj` released) on OOM. */
static ext_custom *custom_new(json_t *obj)
{
    ext_custom *c = cpex__malloc(sizeof *c);
    if (!c) {
        json_decref(obj);
        return NULL;
    }
    atomic_init(&c->refs, 1);
    c->obj = obj;
    return c;
}

static ext_custom *custom_ref(ext_custom *c)
{
    if (c)
        atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
    return c;
}

static void custom_unref(ext_custom *c)
{
    if (c && atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) == 1) {
        json_decref(c->obj);
        cpex__free(c);
    }
}

static const json_t *custom_obj(const cpex_extensions *ext)
{
    return ext->custom ? ext->custom->obj : NULL;
}

/* Field number -> slot. A switch rather than a table indexed by the
 * number, so a hostile number can never index out of bounds. */
static int single_index(uint32_t field)
{
    switch (field) {
    case CPEX_EXT_ENTITY_TYPE: return S_ENTITY_TYPE;
    case CPEX_EXT_ENTITY_NAME: return S_ENTITY_NAME;
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

static const ext_headers *header_set(const cpex_extensions *ext, uint32_t set)
{
    return (ext && set < HEADER_SETS) ? &ext->headers[set] : NULL;
}

/* The refcount is the only thing ref/unref touch; the object was created
 * writable by cpex_extensions_new, so dropping the const to reach the
 * counter is well defined. */
static atomic_size_t *refs_of(const cpex_extensions *ext)
{
    return &((cpex_extensions *)ext)->refs;
}

/* Setters are for the sole owner: other threads may be reading a shared
 * object without locks. Debug builds stop at the bug; release builds go on
 * (the header documents the rule, we do not crash a host over it). */
static void check_sole_owner(const cpex_extensions *ext)
{
    assert(atomic_load_explicit(refs_of(ext), memory_order_relaxed) == 1 &&
           "cpex_extensions: changing an object that is shared");
    (void)ext;
}

cpex_extensions *cpex_extensions_new(void)
{
    cpex_extensions *ext = cpex__calloc(1, sizeof *ext);
    if (!ext)
        return NULL;
    atomic_init(&ext->refs, 1);
    return ext;
}

cpex_extensions *cpex_extensions_ref(const cpex_extensions *ext)
{
    if (!ext)
        return NULL;
    atomic_fetch_add_explicit(refs_of(ext), 1, memory_order_relaxed);
    return (cpex_extensions *)ext;
}

static void destroy(cpex_extensions *ext)
{
    for (size_t i = 0; i < S_COUNT; i++)
        str_unref(ext->single[i]);
    for (size_t l = 0; l < L_COUNT; l++) {
        for (size_t i = 0; i < ext->lists[l].count; i++)
            str_unref(ext->lists[l].items[i]);
        cpex__free(ext->lists[l].items);
    }
    for (size_t s = 0; s < HEADER_SETS; s++) {
        for (size_t i = 0; i < ext->headers[s].count; i++) {
            str_unref(ext->headers[s].items[i].name);
            str_unref(ext->headers[s].items[i].value);
        }
        cpex__free(ext->headers[s].items);
    }
    custom_unref(ext->custom);
    cpex__free(ext);
}

void cpex_extensions_unref(cpex_extensions *ext)
{
    if (!ext)
        return;
    /* The release half publishes this thread's last reads; the acquire
     * half, on the final drop, orders every other thread's reads before
     * the free. (One acq_rel instead of a fence: ThreadSanitizer does not
     * understand fences.) */
    if (atomic_fetch_sub_explicit(&ext->refs, 1, memory_order_acq_rel) == 1)
        destroy(ext);
}

size_t cpex__extensions_refcount(const cpex_extensions *ext)
{
    return ext ? atomic_load_explicit(refs_of(ext), memory_order_relaxed) : 0;
}

/* How deep a custom value may nest. Copies recurse, and may run on plugin
 * worker threads with small stacks; real side data is a few levels deep. */
#define MAX_JSON_DEPTH 256

/* Whether `v` nests at most MAX_JSON_DEPTH levels (which also rules out
 * cycles). Checked when a value comes in, so later copies cannot fail on it. */
static bool depth_ok(const json_t *v, int depth)
{
    if (depth > MAX_JSON_DEPTH)
        return false;
    if (json_is_object(v)) {
        const char *key;
        json_t *value;
        json_object_foreach((json_t *)v, key, value)
        {
            if (!depth_ok(value, depth + 1))
                return false;
        }
    } else if (json_is_array(v)) {
        for (size_t i = 0; i < json_array_size(v); i++) {
            if (!depth_ok(json_array_get(v, i), depth + 1))
                return false;
        }
    }
    return true;
}

/* A fully independent copy that reports every failure (jansson's own deep
 * copy has not always done so, and can drop members when memory is short).
 * `depth` bounds recursion on hostile input. */
static json_t *deep_copy(const json_t *v, int depth, bool *too_deep)
{
    if (depth > MAX_JSON_DEPTH) {
        *too_deep = true;
        return NULL;
    }
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        json_t *dst = json_object();
        if (!dst)
            return NULL;
        const char *key;
        size_t key_len;
        json_t *value;
        json_object_keylen_foreach((json_t *)v, key, key_len, value)
        {
            json_t *c = deep_copy(value, depth + 1, too_deep);
            if (!c || json_object_setn_new_nocheck(dst, key, key_len, c) != 0) {
                json_decref(dst);
                return NULL;
            }
        }
        return dst;
    }
    case JSON_ARRAY: {
        json_t *dst = json_array();
        if (!dst)
            return NULL;
        for (size_t i = 0; i < json_array_size(v); i++) {
            json_t *c = deep_copy(json_array_get(v, i), depth + 1, too_deep);
            if (!c || json_array_append_new(dst, c) != 0) {
                json_decref(dst);
                return NULL;
            }
        }
        return dst;
    }
    case JSON_STRING:
        return json_stringn_nocheck(json_string_value(v), json_string_length(v));
    case JSON_INTEGER:
        return json_integer(json_integer_value(v));
    case JSON_REAL:
        return json_real(json_real_value(v));
    case JSON_TRUE:
        return json_true();
    case JSON_FALSE:
        return json_false();
    case JSON_NULL:
        return json_null();
    }
    return NULL;
}

cpex_extensions *cpex_extensions_copy(const cpex_extensions *src)
{
    if (!src)
        return NULL;
    cpex_extensions *dst = cpex_extensions_new();
    if (!dst)
        return NULL;
    for (size_t i = 0; i < S_COUNT; i++)
        dst->single[i] = str_ref(src->single[i]);
    /* Counts are raised only with the references taken, so destroy() on a
     * half-built copy releases exactly what it holds. Arrays are sized to
     * fit: a copy is usually written once or twice, then dropped. */
    for (size_t l = 0; l < L_COUNT; l++) {
        const ext_list *from = &src->lists[l];
        if (from->count == 0)
            continue;
        ext_list *to = &dst->lists[l];
        to->items = cpex__malloc(from->count * sizeof *to->items);
        if (!to->items)
            goto oom;
        to->cap = from->count;
        for (size_t i = 0; i < from->count; i++)
            to->items[to->count++] = str_ref(from->items[i]);
    }
    for (size_t s = 0; s < HEADER_SETS; s++) {
        const ext_headers *from = &src->headers[s];
        if (from->count == 0)
            continue;
        ext_headers *to = &dst->headers[s];
        to->items = cpex__malloc(from->count * sizeof *to->items);
        if (!to->items)
            goto oom;
        to->cap = from->count;
        for (size_t i = 0; i < from->count; i++) {
            to->items[i].name = str_ref(from->items[i].name);
            to->items[i].value = str_ref(from->items[i].value);
            to->count++;
        }
    }
    dst->custom = custom_ref(src->custom); /* copied if and when written */
    return dst;
oom:
    destroy(dst);
    return NULL;
}

/* ------------------------------------------------------------------ */
/* Setters                                                             */
/* ------------------------------------------------------------------ */

cpex_status cpex_extensions_set(cpex_extensions *ext, uint32_t field, const char *value)
{
    int idx = single_index(field);
    if (!ext || idx < 0)
        return CPEX_E_INVALID;
    check_sole_owner(ext);
    ext_str *old = ext->single[idx];
    if (!value) {
        ext->single[idx] = NULL;
        str_unref(old);
        return CPEX_OK;
    }
    size_t len = strlen(value);
    if (!cpex__text_ok(value, len))
        return CPEX_E_INVALID;
    if (old && old->len == len && memcmp(old->text, value, len) == 0)
        return CPEX_OK; /* unchanged: spare an allocation */
    ext_str *s = str_new(value, len);
    if (!s)
        return CPEX_E_NOMEM;
    ext->single[idx] = s;
    str_unref(old); /* after the copy: `value` may point into `old` */
    return CPEX_OK;
}

static bool list_contains(const ext_list *list, int which, const char *value, size_t len)
{
    for (size_t i = 0; i < list->count; i++) {
        const ext_str *it = list->items[i];
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
    check_sole_owner(ext);
    size_t len = strlen(value);
    if (!cpex__text_ok(value, len))
        return CPEX_E_INVALID;
    ext_list *list = &ext->lists[idx];
    /* Labels compare like CPEX's has_label (case-insensitive, first
     * spelling kept); tags and roles exactly. */
    if (list_contains(list, idx, value, len))
        return CPEX_OK;
    if (list->count == list->cap) {
        size_t cap = list->cap ? list->cap * 2 : 4;
        ext_str **items = cpex__realloc(list->items, cap * sizeof *items);
        if (!items)
            return CPEX_E_NOMEM;
        list->items = items;
        list->cap = cap;
    }
    ext_str *s = str_new(value, len);
    if (!s)
        return CPEX_E_NOMEM; /* a larger array with the same items: unchanged */
    list->items[list->count++] = s;
    return CPEX_OK;
}

static ext_header *header_find(const ext_headers *h, const char *name, size_t len)
{
    for (size_t i = 0; i < h->count; i++) {
        if (cpex__ascii_ieq(h->items[i].name->text, h->items[i].name->len, name, len))
            return &h->items[i];
    }
    return NULL;
}

cpex_status cpex_extensions_set_header(cpex_extensions *ext, uint32_t set, const char *name,
                                       const char *value)
{
    if (!ext || set >= HEADER_SETS || !name)
        return CPEX_E_INVALID;
    check_sole_owner(ext);
    size_t name_len = strlen(name);
    if (!cpex__header_name_valid(name, name_len))
        return CPEX_E_INVALID;
    ext_headers *h = &ext->headers[set];
    ext_header *found = header_find(h, name, name_len);
    if (!value) {
        if (found) {
            ext_header gone = *found;
            size_t pos = (size_t)(found - h->items);
            memmove(found, found + 1, (h->count - pos - 1) * sizeof *found);
            h->count--;
            str_unref(gone.name);
            str_unref(gone.value);
        }
        return CPEX_OK;
    }
    size_t value_len = strlen(value);
    if (!cpex__header_value_valid(value, value_len))
        return CPEX_E_INVALID;
    if (found) {
        /* Replace in place: position and the first spelling of the name
         * stay, as an HTTP stack would keep them. */
        ext_str *v = str_new(value, value_len);
        if (!v)
            return CPEX_E_NOMEM;
        ext_str *old = found->value;
        found->value = v;
        str_unref(old);
        return CPEX_OK;
    }
    if (h->count == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 8;
        ext_header *items = cpex__realloc(h->items, cap * sizeof *items);
        if (!items)
            return CPEX_E_NOMEM;
        h->items = items;
        h->cap = cap;
    }
    ext_str *n = str_new(name, name_len);
    ext_str *v = n ? str_new(value, value_len) : NULL;
    if (!v) {
        str_unref(n);
        return CPEX_E_NOMEM;
    }
    h->items[h->count].name = n;
    h->items[h->count].value = v;
    h->count++;
    return CPEX_OK;
}

cpex_status cpex_extensions_set_custom(cpex_extensions *ext, const char *key, json_t *value)
{
    if (!ext || !key) {
        json_decref(value);
        return CPEX_E_INVALID;
    }
    check_sole_owner(ext);
    size_t key_len = strlen(key);
    if (!cpex__text_ok(key, key_len) || (value && !depth_ok(value, 1))) {
        json_decref(value);
        return CPEX_E_INVALID;
    }
    ext_custom *cur = ext->custom;
    if (!value && (!cur || !json_object_getn(cur->obj, key, key_len)))
        return CPEX_OK; /* deleting what is not there */

    /* Write into our own wrapper; a shared one (a copy's) is deep-copied
     * first. Nothing is installed until the write succeeded, so a failure
     * leaves the object as it was. A count read as > 1 that drops to 1
     * meanwhile only costs a needless copy; it cannot read 1 while another
     * object shares it, because sharing needs a copy of this object, and
     * this object has a single owner (us). */
    ext_custom *target = cur;
    if (!cur || atomic_load_explicit(&cur->refs, memory_order_acquire) > 1) {
        bool too_deep = false;
        json_t *obj = cur ? deep_copy(cur->obj, 0, &too_deep) : json_object();
        target = obj ? custom_new(obj) : NULL;
        if (!target) {
            json_decref(value);
            return CPEX_E_NOMEM;
        }
    }
    int rc = value ? json_object_setn_new_nocheck(target->obj, key, key_len, value)
                   : json_object_deln(target->obj, key, key_len);
    if (rc != 0) {
        /* Only set can fail here (the key is present for a delete); it has
         * released `value`. */
        if (target != cur)
            custom_unref(target);
        return CPEX_E_NOMEM;
    }
    if (target != cur) {
        ext->custom = target;
        custom_unref(cur);
    }
    return CPEX_OK;
}

/* ------------------------------------------------------------------ */
/* Getters (allocation-free, borrowed)                                 */
/* ------------------------------------------------------------------ */

cpex_str cpex__extensions_get_str(const cpex_extensions *ext, uint32_t field)
{
    int idx = single_index(field);
    return (ext && idx >= 0) ? str_view(ext->single[idx]) : str_view(NULL);
}

const char *cpex_extensions_get(const cpex_extensions *ext, uint32_t field)
{
    return cpex__extensions_get_str(ext, field).ptr;
}

size_t cpex_extensions_count(const cpex_extensions *ext, uint32_t field)
{
    int idx = list_index(field);
    return (ext && idx >= 0) ? ext->lists[idx].count : 0;
}

cpex_str cpex__extensions_item_str(const cpex_extensions *ext, uint32_t field, size_t index)
{
    int idx = list_index(field);
    if (!ext || idx < 0 || index >= ext->lists[idx].count)
        return str_view(NULL);
    return str_view(ext->lists[idx].items[index]);
}

const char *cpex_extensions_item(const cpex_extensions *ext, uint32_t field, size_t index)
{
    return cpex__extensions_item_str(ext, field, index).ptr;
}

int cpex_extensions_has_label(const cpex_extensions *ext, const char *label)
{
    if (!ext || !label)
        return 0;
    return list_contains(&ext->lists[L_LABELS], L_LABELS, label, strlen(label));
}

cpex_str cpex__extensions_header_str(const cpex_extensions *ext, uint32_t set, const char *name)
{
    const ext_headers *h = header_set(ext, set);
    if (!h || !name)
        return str_view(NULL);
    const ext_header *found = header_find(h, name, strlen(name));
    return found ? str_view(found->value) : str_view(NULL);
}

const char *cpex_extensions_header(const cpex_extensions *ext, uint32_t set, const char *name)
{
    return cpex__extensions_header_str(ext, set, name).ptr;
}

size_t cpex_extensions_header_count(const cpex_extensions *ext, uint32_t set)
{
    const ext_headers *h = header_set(ext, set);
    return h ? h->count : 0;
}

int cpex__extensions_header_at_str(const cpex_extensions *ext, uint32_t set, size_t index,
                                  cpex_str *name, cpex_str *value)
{
    const ext_headers *h = header_set(ext, set);
    if (!h || index >= h->count)
        return 0;
    if (name)
        *name = str_view(h->items[index].name);
    if (value)
        *value = str_view(h->items[index].value);
    return 1;
}

const char *cpex_extensions_header_at(const cpex_extensions *ext, uint32_t set, size_t index,
                                      const char **value)
{
    cpex_str n, v;
    if (!cpex__extensions_header_at_str(ext, set, index, &n, &v)) {
        if (value)
            *value = NULL;
        return NULL;
    }
    if (value)
        *value = v.ptr;
    return n.ptr;
}

const json_t *cpex_extensions_custom(const cpex_extensions *ext, const char *key)
{
    if (!ext || !key || !ext->custom)
        return NULL;
    return json_object_get(ext->custom->obj, key);
}

const json_t *cpex__extensions_custom_object(const cpex_extensions *ext)
{
    return ext ? custom_obj(ext) : NULL;
}

/* ------------------------------------------------------------------ */
/* Equality                                                            */
/* ------------------------------------------------------------------ */

static bool str_eq(const ext_str *a, const ext_str *b)
{
    if (a == b)
        return true; /* same block (a copy) or both unset */
    if (!a || !b)
        return false;
    return a->len == b->len && memcmp(a->text, b->text, a->len) == 0;
}

/* Header sets are equal when they hold the same (name, value) pairs with
 * the same spelling, in any order: exactly when their JSON objects are
 * equal. Names are unique case-insensitively, so one match is enough. */
static bool headers_equal(const ext_headers *a, const ext_headers *b)
{
    if (a->count != b->count)
        return false;
    for (size_t i = 0; i < a->count; i++) {
        const ext_header *x = &a->items[i];
        const ext_header *y = header_find(b, x->name->text, x->name->len);
        if (!y || !str_eq(x->name, y->name) || !str_eq(x->value, y->value))
            return false;
    }
    return true;
}

static bool custom_equal(const json_t *a, const json_t *b)
{
    size_t na = a ? json_object_size(a) : 0;
    size_t nb = b ? json_object_size(b) : 0;
    if (na == 0 || nb == 0)
        return na == nb;
    return json_equal(a, b) != 0;
}

int cpex_extensions_equal(const cpex_extensions *a, const cpex_extensions *b)
{
    if (a == b)
        return 1;
    static const cpex_extensions empty; /* NULL compares as an empty object */
    if (!a)
        a = &empty;
    if (!b)
        b = &empty;
    for (size_t i = 0; i < S_COUNT; i++) {
        if (!str_eq(a->single[i], b->single[i]))
            return 0;
    }
    /* Lists keep their order (the JSON form is an array), so order counts. */
    for (size_t l = 0; l < L_COUNT; l++) {
        if (a->lists[l].count != b->lists[l].count)
            return 0;
        for (size_t i = 0; i < a->lists[l].count; i++) {
            if (!str_eq(a->lists[l].items[i], b->lists[l].items[i]))
                return 0;
        }
    }
    for (size_t s = 0; s < HEADER_SETS; s++) {
        if (!headers_equal(&a->headers[s], &b->headers[s]))
            return 0;
    }
    if (a->custom == b->custom)
        return 1; /* shared since a copy */
    return custom_equal(custom_obj(a), custom_obj(b));
}

/* ------------------------------------------------------------------ */
/* JSON form                                                           */
/* ------------------------------------------------------------------ */

/* One table describes the JSON form; to_json and from_json both walk it,
 * so the two cannot disagree on a key. */
typedef enum key_kind { K_SINGLE, K_LIST, K_OBJECT, K_HEADERS, K_CUSTOM } key_kind;

struct obj_spec;
typedef struct key_spec {
    const char *name;
    key_kind kind;
    uint32_t arg; /* field number or header set */
    const struct obj_spec *sub;
} key_spec;

typedef struct obj_spec {
    const key_spec *keys;
    size_t count;
} obj_spec;

#define SPEC(keys) {keys, sizeof keys / sizeof keys[0]}

static const key_spec meta_keys[] = {
    {"entity_type", K_SINGLE, CPEX_EXT_ENTITY_TYPE, NULL},
    {"entity_name", K_SINGLE, CPEX_EXT_ENTITY_NAME, NULL},
    {"tags", K_LIST, CPEX_EXT_TAGS, NULL},
};
static const obj_spec meta_spec = SPEC(meta_keys);

static const key_spec subject_keys[] = {
    {"id", K_SINGLE, CPEX_EXT_SUBJECT_ID, NULL},
    {"type", K_SINGLE, CPEX_EXT_SUBJECT_TYPE, NULL},
    {"roles", K_LIST, CPEX_EXT_ROLES, NULL},
};
static const obj_spec subject_spec = SPEC(subject_keys);

static const key_spec security_keys[] = {
    {"subject", K_OBJECT, 0, &subject_spec},
    {"labels", K_LIST, CPEX_EXT_LABELS, NULL},
    {"classification", K_SINGLE, CPEX_EXT_CLASSIFICATION, NULL},
};
static const obj_spec security_spec = SPEC(security_keys);

static const key_spec http_keys[] = {
    {"request_headers", K_HEADERS, CPEX_HEADERS_REQUEST, NULL},
    {"response_headers", K_HEADERS, CPEX_HEADERS_RESPONSE, NULL},
};
static const obj_spec http_spec = SPEC(http_keys);

static const key_spec request_keys[] = {
    {"request_id", K_SINGLE, CPEX_EXT_REQUEST_ID, NULL},
    {"trace_id", K_SINGLE, CPEX_EXT_TRACE_ID, NULL},
    {"span_id", K_SINGLE, CPEX_EXT_SPAN_ID, NULL},
    {"environment", K_SINGLE, CPEX_EXT_ENVIRONMENT, NULL},
    {"timestamp", K_SINGLE, CPEX_EXT_TIMESTAMP, NULL},
};
static const obj_spec request_spec = SPEC(request_keys);

static const key_spec top_keys[] = {
    {"meta", K_OBJECT, 0, &meta_spec},
    {"security", K_OBJECT, 0, &security_spec},
    {"http", K_OBJECT, 0, &http_spec},
    {"request", K_OBJECT, 0, &request_spec},
    {"custom", K_CUSTOM, 0, NULL},
};
static const obj_spec top_spec = SPEC(top_keys);

#define MAX_SPEC_KEYS 8

/* ---- to_json ---- */

/* Adds `value` under `key` unless it is NULL; false on failure. */
static bool put(json_t *obj, const char *key, json_t *value)
{
    return value && json_object_set_new_nocheck(obj, key, value) == 0;
}

/* Builds the object of `spec`; empty members are left out. NULL on OOM. */
static json_t *build_object(const cpex_extensions *ext, const obj_spec *spec)
{
    json_t *obj = json_object();
    if (!obj)
        return NULL;
    for (size_t k = 0; k < spec->count; k++) {
        const key_spec *ks = &spec->keys[k];
        json_t *v = NULL;
        switch (ks->kind) {
        case K_SINGLE: {
            cpex_str s = cpex__extensions_get_str(ext, ks->arg);
            if (!s.ptr)
                continue;
            v = json_stringn_nocheck(s.ptr, s.len);
            break;
        }
        case K_LIST: {
            size_t n = cpex_extensions_count(ext, ks->arg);
            if (n == 0)
                continue;
            v = json_array();
            for (size_t i = 0; v && i < n; i++) {
                cpex_str s = cpex__extensions_item_str(ext, ks->arg, i);
                if (json_array_append_new(v, json_stringn_nocheck(s.ptr, s.len)) != 0) {
                    json_decref(v);
                    v = NULL;
                }
            }
            break;
        }
        case K_HEADERS: {
            const ext_headers *h = &ext->headers[ks->arg];
            if (h->count == 0)
                continue;
            v = json_object();
            for (size_t i = 0; v && i < h->count; i++) {
                const ext_header *hd = &h->items[i];
                if (!put(v, hd->name->text, json_stringn_nocheck(hd->value->text, hd->value->len))) {
                    json_decref(v);
                    v = NULL;
                }
            }
            break;
        }
        case K_OBJECT:
            v = build_object(ext, ks->sub);
            if (v && json_object_size(v) == 0) {
                json_decref(v);
                continue;
            }
            break;
        case K_CUSTOM: {
            const json_t *custom = custom_obj(ext);
            if (!custom || json_object_size(custom) == 0)
                continue;
            bool too_deep = false; /* cannot happen: checked on the way in */
            /* Deep: the caller owns the result and may change it. */
            v = deep_copy(custom, 0, &too_deep);
            break;
        }
        }
        if (!put(obj, ks->name, v)) {
            json_decref(obj);
            return NULL;
        }
    }
    return obj;
}

json_t *cpex_extensions_to_json(const cpex_extensions *ext)
{
    static const cpex_extensions empty;
    return build_object(ext ? ext : &empty, &top_spec);
}

/* ---- from_json ---- */

typedef struct parse_ctx {
    cpex_error *err;
    cpex_extensions *ext;
    size_t errors;
    bool nomem;
} parse_ctx;

/* Records one problem. cpex__error_add ignores a NULL err, so the count is
 * kept here too: it decides success even when the caller passed no err. */
#define PARSE_ERROR(c, ...)                                                   \
    do {                                                                      \
        (c)->errors++;                                                        \
        (void)cpex__error_add((c)->err, CPEX_E_INVALID, NULL, __VA_ARGS__);   \
    } while (0)

static void parse_nomem(parse_ctx *c)
{
    if (!c->nomem) {
        c->nomem = true;
        c->errors++;
        (void)cpex__error_add(c->err, CPEX_E_NOMEM, NULL, "extensions: out of memory");
    }
}

static const char *json_kind_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    case JSON_NULL: return "null";
    }
    return "an unknown value";
}

/* A JSON string usable as a C string: jansson strings may hold NUL bytes. */
static bool c_string_ok(const json_t *s)
{
    return strlen(json_string_value(s)) == json_string_length(s);
}

static void parse_status(parse_ctx *c, cpex_status st, const char *path, const char *what)
{
    if (st == CPEX_E_NOMEM)
        parse_nomem(c);
    else if (st != CPEX_OK)
        PARSE_ERROR(c, "%s: %s", path, what);
}

static void parse_single(parse_ctx *c, const json_t *v, uint32_t field, const char *path)
{
    if (!json_is_string(v)) {
        PARSE_ERROR(c, "%s: expected a string, got %s", path, json_kind_name(v));
        return;
    }
    if (!c_string_ok(v)) {
        PARSE_ERROR(c, "%s: string contains a NUL byte", path);
        return;
    }
    parse_status(c, cpex_extensions_set(c->ext, field, json_string_value(v)), path,
                 "not valid UTF-8");
}

static void parse_list(parse_ctx *c, const json_t *v, uint32_t field, const char *path)
{
    if (!json_is_array(v)) {
        PARSE_ERROR(c, "%s: expected an array of strings, got %s", path, json_kind_name(v));
        return;
    }
    for (size_t i = 0; i < json_array_size(v) && !c->nomem; i++) {
        const json_t *item = json_array_get(v, i);
        if (!json_is_string(item)) {
            PARSE_ERROR(c, "%s[%zu]: expected a string, got %s", path, i, json_kind_name(item));
        } else if (!c_string_ok(item)) {
            PARSE_ERROR(c, "%s[%zu]: string contains a NUL byte", path, i);
        } else {
            cpex_status st = cpex_extensions_add(c->ext, field, json_string_value(item));
            if (st == CPEX_E_NOMEM)
                parse_nomem(c);
            else if (st != CPEX_OK)
                PARSE_ERROR(c, "%s[%zu]: not valid UTF-8", path, i);
        }
    }
}

static void parse_headers(parse_ctx *c, const json_t *v, uint32_t set, const char *path)
{
    if (!json_is_object(v)) {
        PARSE_ERROR(c, "%s: expected an object of header names to strings, got %s", path,
                    json_kind_name(v));
        return;
    }
    const char *name;
    size_t name_len;
    json_t *value;
    json_object_keylen_foreach((json_t *)v, name, name_len, value)
    {
        if (c->nomem)
            return;
        if (strlen(name) != name_len || !cpex__header_name_valid(name, name_len)) {
            PARSE_ERROR(c, "%s.%s: not a valid header name (letters, digits and !#$%%&'*+-.^_`|~)",
                        path, name);
            continue;
        }
        if (!json_is_string(value)) {
            PARSE_ERROR(c, "%s.%s: expected a string, got %s", path, name, json_kind_name(value));
            continue;
        }
        cpex_str prev = cpex__extensions_header_str(c->ext, set, name);
        if (prev.ptr) {
            /* Two spellings of one header: which value wins would be an
             * accident of key order, so ask the author to pick. */
            cpex_str prev_name = {NULL, 0};
            for (size_t i = 0; cpex__extensions_header_at_str(c->ext, set, i, &prev_name, NULL); i++) {
                if (cpex__ascii_ieq(prev_name.ptr, prev_name.len, name, name_len))
                    break;
            }
            PARSE_ERROR(c, "%s.%s: duplicate header (names are case-insensitive; '%s' is already set)",
                        path, name, prev_name.ptr);
            continue;
        }
        if (!c_string_ok(value) ||
            !cpex__header_value_valid(json_string_value(value), json_string_length(value))) {
            PARSE_ERROR(c, "%s.%s: header value must be UTF-8 without CR, LF or NUL", path, name);
            continue;
        }
        parse_status(c, cpex_extensions_set_header(c->ext, set, name, json_string_value(value)),
                     path, "invalid header");
    }
}

static void parse_custom(parse_ctx *c, const json_t *v, const char *path)
{
    if (!json_is_object(v)) {
        PARSE_ERROR(c, "%s: expected an object, got %s", path, json_kind_name(v));
        return;
    }
    if (json_object_size(v) == 0)
        return;
    bool too_deep = false;
    /* Deep: the input stays the caller's, to change or free as they like. */
    json_t *copy = deep_copy(v, 0, &too_deep);
    if (!copy) {
        if (too_deep)
            PARSE_ERROR(c, "%s: nested more than %d levels deep", path, MAX_JSON_DEPTH);
        else
            parse_nomem(c);
        return;
    }
    ext_custom *wrapped = custom_new(copy);
    if (!wrapped) {
        parse_nomem(c);
        return;
    }
    custom_unref(c->ext->custom);
    c->ext->custom = wrapped;
}

static void unknown_key(parse_ctx *c, const obj_spec *spec, const char *path, const char *key)
{
    const char *names[MAX_SPEC_KEYS];
    char list[256];
    size_t pos = 0;
    list[0] = '\0';
    for (size_t i = 0; i < spec->count; i++) {
        names[i] = spec->keys[i].name;
        int n = snprintf(list + pos, sizeof list - pos, "%s%s", i ? ", " : "", names[i]);
        if (n > 0 && (size_t)n < sizeof list - pos)
            pos += (size_t)n;
    }
    const char *hint = cpex__suggest(key, names, spec->count);
    const char *sep = *path ? "." : "";
    if (hint)
        PARSE_ERROR(c, "%s%s%s: unknown key; did you mean '%s'?", path, sep, key, hint);
    else
        PARSE_ERROR(c, "%s%s%s: unknown key; expected one of: %s", path, sep, key, list);
}

static void parse_object(parse_ctx *c, const json_t *obj, const obj_spec *spec, const char *path)
{
    const char *key;
    json_t *value;
    json_object_foreach((json_t *)obj, key, value)
    {
        if (c->nomem)
            return;
        const key_spec *ks = NULL;
        for (size_t i = 0; i < spec->count && !ks; i++) {
            if (strcmp(spec->keys[i].name, key) == 0)
                ks = &spec->keys[i];
        }
        if (!ks) {
            unknown_key(c, spec, path, key);
            continue;
        }
        /* Paths of known keys are short ("security.subject.roles"). */
        char sub[96];
        snprintf(sub, sizeof sub, "%s%s%s", path, *path ? "." : "", ks->name);
        if (json_is_null(value))
            continue; /* null: absent, as an unset Option serializes in CPEX */
        switch (ks->kind) {
        case K_SINGLE: parse_single(c, value, ks->arg, sub); break;
        case K_LIST: parse_list(c, value, ks->arg, sub); break;
        case K_HEADERS: parse_headers(c, value, ks->arg, sub); break;
        case K_CUSTOM: parse_custom(c, value, sub); break;
        case K_OBJECT:
            if (!json_is_object(value))
                PARSE_ERROR(c, "%s: expected an object, got %s", sub, json_kind_name(value));
            else
                parse_object(c, value, ks->sub, sub);
            break;
        }
    }
}

cpex_extensions *cpex_extensions_from_json(const json_t *json, cpex_error *err)
{
    if (!json || !json_is_object(json)) {
        (void)cpex__error_add(err, CPEX_E_INVALID, NULL, "extensions: expected an object, got %s",
                             json ? json_kind_name(json) : "nothing");
        return NULL;
    }
    parse_ctx c = {err, cpex_extensions_new(), 0, false};
    if (!c.ext) {
        parse_nomem(&c);
        return NULL;
    }
    /* Every problem is reported, not only the first, like a config file. */
    parse_object(&c, json, &top_spec, "");
    if (c.errors) {
        cpex_extensions_unref(c.ext);
        return NULL;
    }
    return c.ext;
}
