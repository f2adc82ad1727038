/*
 * extensions.c — the extensions object (cpex/extensions.h) and its
 * internal helpers (extensions_internal.h): storage, reference counts,
 * copy-on-write, setters, getters, equality.
 *
 * Its JSON form (to_json, from_json) is extensions_json.c, which reaches
 * the object through accessors only; the text rules the setters apply
 * (UTF-8, header names and values) are text_check.c's.
 *
 * Layout choices, and why:
 *   - Every string is an immutable, reference-counted block (ext_str).
 *   - The object is a handle on a body (the strings, lists, headers and
 *     custom value). cpex_extensions_copy shares the body (one allocation
 *     for the handle); the first write to a shared body gives the writer a
 *     body of its own that takes references on the strings instead of
 *     duplicating them. A view (cpex__extensions_view_init) shares the
 *     body from storage the caller provides: the concurrent and
 *     fire-and-forget phases read the invoke's extensions through views,
 *     with no copy and no allocation, and a later write by the host never
 *     reaches them.
 *   - The custom object is shared whole between copies through our own
 *     counted wrapper (ext_custom) and deep-copied only when a shared one
 *     is written. JSON values are never shared between two wrappers: the
 *     pipeline copies and drops objects on several threads at once, and
 *     jansson's json_incref/json_decref read the count non-atomically
 *     before changing it (ThreadSanitizer reports it), so concurrent
 *     reference counting on one jansson value is off limits.
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
#include <string.h>

#include <jansson.h>

#include "model/text_check.h"
#include "util/alloc.h"

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

/* What the object holds, shared between objects until one of them is
 * written (copy-on-write): a copy, and a view a worker thread reads
 * through, take a reference instead of copying. A body shared by more
 * than one holder is never written. */
typedef struct ext_body {
    atomic_size_t refs;
    bool is_inline; /* the `own` body of its object's allocation */
    ext_str *single[S_COUNT];
    ext_list lists[L_COUNT];
    ext_headers headers[HEADER_SETS];
    ext_custom *custom; /* NULL until the first custom value */
} ext_body;

/* The object: a handle on its current body. Its allocation holds a body
 * of its own, `own`, which the handle uses until a write finds it shared;
 * the allocation lives while `own` is referenced (the handle references it
 * until the handle's last unref), so a view may outlive the handle. */
struct cpex_extensions {
    atomic_size_t refs;
    bool is_view; /* set up by cpex__extensions_view_init: no `own` body */
    ext_body *body;
    ext_body own;
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
    return ext->body->custom ? ext->body->custom->obj : NULL;
}

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

static const ext_headers *header_set(const cpex_extensions *ext, uint32_t set)
{
    return (ext && set < HEADER_SETS) ? &ext->body->headers[set] : NULL;
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

static void body_unref(ext_body *b)
{
    if (!b || atomic_fetch_sub_explicit(&b->refs, 1, memory_order_acq_rel) != 1)
        return;
    for (size_t i = 0; i < S_COUNT; i++)
        str_unref(b->single[i]);
    for (size_t l = 0; l < L_COUNT; l++) {
        for (size_t i = 0; i < b->lists[l].count; i++)
            str_unref(b->lists[l].items[i]);
        cpex__free(b->lists[l].items);
    }
    for (size_t s = 0; s < HEADER_SETS; s++) {
        for (size_t i = 0; i < b->headers[s].count; i++) {
            str_unref(b->headers[s].items[i].name);
            str_unref(b->headers[s].items[i].value);
        }
        cpex__free(b->headers[s].items);
    }
    custom_unref(b->custom);
    if (b->is_inline) /* the allocation of the object that owns it */
        cpex__free((char *)b - offsetof(cpex_extensions, own));
    else
        cpex__free(b);
}

static ext_body *body_ref(ext_body *b)
{
    atomic_fetch_add_explicit(&b->refs, 1, memory_order_relaxed);
    return b;
}

static void destroy(cpex_extensions *ext)
{
    ext_body *cur = ext->body;
    if (ext->is_view) {
        body_unref(cur);
        return;
    }
    if (cur != &ext->own)
        body_unref(cur);
    body_unref(&ext->own); /* frees the allocation once no view reads it */
}

cpex_extensions *cpex_extensions_new(void)
{
    cpex_extensions *ext = cpex__calloc(1, sizeof *ext);
    if (!ext)
        return NULL;
    atomic_init(&ext->refs, 1);
    atomic_init(&ext->own.refs, 1); /* the handle's */
    ext->own.is_inline = true;
    ext->body = &ext->own;
    return ext;
}

/* A separate body holding references on what `src` holds. NULL on OOM. */
static ext_body *body_clone(const ext_body *src)
{
    ext_body *dst = cpex__calloc(1, sizeof *dst);
    if (!dst)
        return NULL;
    atomic_init(&dst->refs, 1);
    for (size_t i = 0; i < S_COUNT; i++)
        dst->single[i] = str_ref(src->single[i]);
    /* Counts are raised only with the references taken, so body_unref on
     * a half-built clone releases exactly what it holds. Arrays are sized
     * to fit: a clone is usually written once or twice, then dropped. */
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
    body_unref(dst);
    return NULL;
}

/* Make the object's body its own before a write: a body that a copy or a
 * view shares is cloned (never written). False on OOM (nothing changed).
 * The acquire load orders the reads of a holder that just let go before
 * our writes. */
static bool own_body(cpex_extensions *ext)
{
    ext_body *cur = ext->body;
    if (atomic_load_explicit(&cur->refs, memory_order_acquire) == 1)
        return true;
    ext_body *mine = body_clone(cur);
    if (!mine)
        return false;
    ext->body = mine;
    if (cur != &ext->own) /* `own` keeps the handle's reference until destroy */
        body_unref(cur);
    return true;
}

const size_t cpex__extensions_size = sizeof(cpex_extensions);

void cpex__extensions_view_init(cpex_extensions *view, const cpex_extensions *src)
{
    memset(view, 0, sizeof *view);
    atomic_init(&view->refs, 1);
    view->is_view = true;
    view->body = body_ref(src->body);
}

void cpex__extensions_view_release(cpex_extensions *view)
{
    if (view && view->body) {
        body_unref(view->body);
        view->body = NULL;
    }
}

cpex_extensions *cpex_extensions_ref(const cpex_extensions *ext)
{
    if (!ext)
        return NULL;
    atomic_fetch_add_explicit(refs_of(ext), 1, memory_order_relaxed);
    return (cpex_extensions *)ext;
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

/* Whether `v` nests at most CPEX__EXT_MAX_JSON_DEPTH levels (which also
 * rules out cycles). Checked when a value comes in, so later copies cannot
 * fail on it. */
static bool depth_ok(const json_t *v, int depth)
{
    if (depth > CPEX__EXT_MAX_JSON_DEPTH)
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
    if (depth > CPEX__EXT_MAX_JSON_DEPTH) {
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
    case JSON_STRING: return json_stringn_nocheck(json_string_value(v), json_string_length(v));
    case JSON_INTEGER: return json_integer(json_integer_value(v));
    case JSON_REAL: return json_real(json_real_value(v));
    case JSON_TRUE: return json_true();
    case JSON_FALSE: return json_false();
    case JSON_NULL: return json_null();
    }
    return NULL;
}

json_t *cpex__ext_json_copy(const json_t *v, bool *too_deep) { return deep_copy(v, 0, too_deep); }

cpex_extensions *cpex_extensions_copy(const cpex_extensions *src)
{
    if (!src)
        return NULL;
    cpex_extensions *dst = cpex_extensions_new();
    if (!dst)
        return NULL;
    /* Share the body: the first write to either object gives that one a
     * body of its own. */
    dst->body = body_ref(src->body);
    return dst;
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
    if (!own_body(ext))
        return CPEX_E_NOMEM;
    ext_str *old = ext->body->single[idx];
    if (!value) {
        ext->body->single[idx] = NULL;
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
    ext->body->single[idx] = s;
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
    if (!own_body(ext))
        return CPEX_E_NOMEM;
    ext_list *list = &ext->body->lists[idx];
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
    if (!own_body(ext))
        return CPEX_E_NOMEM;
    size_t name_len = strlen(name);
    if (!cpex__header_name_valid(name, name_len))
        return CPEX_E_INVALID;
    ext_headers *h = &ext->body->headers[set];
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
    if (!own_body(ext)) {
        json_decref(value);
        return CPEX_E_NOMEM;
    }
    ext_custom *cur = ext->body->custom;
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
        ext->body->custom = target;
        custom_unref(cur);
    }
    return CPEX_OK;
}

cpex_status cpex__extensions_replace_custom(cpex_extensions *ext, json_t *obj)
{
    if (!own_body(ext)) {
        json_decref(obj);
        return CPEX_E_NOMEM;
    }
    ext_custom *wrapped = custom_new(obj);
    if (!wrapped)
        return CPEX_E_NOMEM;
    custom_unref(ext->body->custom);
    ext->body->custom = wrapped;
    return CPEX_OK;
}

/* ------------------------------------------------------------------ */
/* Getters (allocation-free, borrowed)                                 */
/* ------------------------------------------------------------------ */

cpex_str cpex__extensions_get_str(const cpex_extensions *ext, uint32_t field)
{
    int idx = single_index(field);
    return (ext && idx >= 0) ? str_view(ext->body->single[idx]) : str_view(NULL);
}

const char *cpex_extensions_get(const cpex_extensions *ext, uint32_t field)
{
    return cpex__extensions_get_str(ext, field).ptr;
}

void cpex__extensions_meta(const cpex_extensions *ext, cpex__ext_meta *out)
{
    if (!ext) {
        memset(out, 0, sizeof *out);
        return;
    }
    const ext_body *b = ext->body;
    out->type = str_view(b->single[S_ENTITY_TYPE]);
    out->name = str_view(b->single[S_ENTITY_NAME]);
    out->scope = str_view(b->single[S_SCOPE]);
    out->tag_count = b->lists[L_TAGS].count;
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
        return str_view(NULL);
    return str_view(ext->body->lists[idx].items[index]);
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
    if (!ext || !key || !ext->body->custom)
        return NULL;
    return json_object_get(ext->body->custom->obj, key);
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

int cpex_extensions_equal(const cpex_extensions *ea, const cpex_extensions *eb)
{
    static const ext_body empty; /* NULL compares as an empty object */
    const ext_body *a = ea ? ea->body : &empty, *b = eb ? eb->body : &empty;
    if (a == b)
        return 1; /* the same object, or one shared since a copy */
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
    return custom_equal(a->custom ? a->custom->obj : NULL, b->custom ? b->custom->obj : NULL);
}
