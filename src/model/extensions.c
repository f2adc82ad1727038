/*
 * extensions.c — the extensions object itself (cpex/extensions.h): the
 * handle on its body, reference counts, copy-on-write, views
 * (extensions_internal.h), copies and equality.
 *
 * Its memory, and why it is laid out so, is extensions_layout.h. The
 * fields are extensions_fields.c's, the header sets extensions_headers.c's,
 * the custom value extensions_custom.c's: each of their setters first makes
 * the body its own (cpex__ext_own_body, here). Its JSON form (to_json,
 * from_json) is extensions_json.c, which reaches the object through
 * accessors only; the text rules the setters apply (UTF-8, header names
 * and values) are text_check.c's.
 */
#include "model/extensions_layout.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include <jansson.h>

#include "model/extensions_internal.h"
#include "util/alloc.h"

/* ------------------------------------------------------------------ */
/* The object                                                          */
/* ------------------------------------------------------------------ */

static void body_unref(cpex__ext_body *b)
{
    if (!b || atomic_fetch_sub_explicit(&b->refs, 1, memory_order_acq_rel) != 1)
        return;
    for (size_t i = 0; i < CPEX__EXT_SINGLES; i++)
        cpex__ext_str_unref(b->single[i]);
    for (size_t l = 0; l < CPEX__EXT_LISTS; l++) {
        for (size_t i = 0; i < b->lists[l].count; i++)
            cpex__ext_str_unref(b->lists[l].items[i]);
        cpex__free(b->lists[l].items);
    }
    for (size_t s = 0; s < CPEX__EXT_HEADER_SETS; s++) {
        for (size_t i = 0; i < b->headers[s].count; i++) {
            cpex__ext_str_unref(b->headers[s].items[i].name);
            cpex__ext_str_unref(b->headers[s].items[i].value);
        }
        cpex__free(b->headers[s].items);
    }
    cpex__ext_custom_unref(b->custom);
    if (b->is_inline) /* the allocation of the object that owns it */
        cpex__free((char *)b - offsetof(cpex_extensions, own));
    else
        cpex__free(b);
}

static cpex__ext_body *body_ref(cpex__ext_body *b)
{
    atomic_fetch_add_explicit(&b->refs, 1, memory_order_relaxed);
    return b;
}

static void destroy(cpex_extensions *ext)
{
    cpex__ext_body *cur = ext->body;
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
static cpex__ext_body *body_clone(const cpex__ext_body *src)
{
    cpex__ext_body *dst = cpex__calloc(1, sizeof *dst);
    if (!dst)
        return NULL;
    atomic_init(&dst->refs, 1);
    for (size_t i = 0; i < CPEX__EXT_SINGLES; i++)
        dst->single[i] = cpex__ext_str_ref(src->single[i]);
    dst->meta = src->meta; /* views of the same strings, which dst now references too */
    /* Counts are raised only with the references taken, so body_unref on
     * a half-built clone releases exactly what it holds. Arrays are sized
     * to fit: a clone is usually written once or twice, then dropped. */
    for (size_t l = 0; l < CPEX__EXT_LISTS; l++) {
        const cpex__ext_list *from = &src->lists[l];
        if (from->count == 0)
            continue;
        cpex__ext_list *to = &dst->lists[l];
        to->items = cpex__malloc(from->count * sizeof *to->items);
        if (!to->items)
            goto oom;
        to->cap = from->count;
        for (size_t i = 0; i < from->count; i++)
            to->items[to->count++] = cpex__ext_str_ref(from->items[i]);
    }
    for (size_t s = 0; s < CPEX__EXT_HEADER_SETS; s++) {
        const cpex__ext_headers *from = &src->headers[s];
        if (from->count == 0)
            continue;
        cpex__ext_headers *to = &dst->headers[s];
        to->items = cpex__malloc(from->count * sizeof *to->items);
        if (!to->items)
            goto oom;
        to->cap = from->count;
        for (size_t i = 0; i < from->count; i++) {
            to->items[i].name = cpex__ext_str_ref(from->items[i].name);
            to->items[i].value = cpex__ext_str_ref(from->items[i].value);
            to->count++;
        }
    }
    dst->custom = cpex__ext_custom_ref(src->custom); /* copied if and when written */
    return dst;
oom:
    body_unref(dst);
    return NULL;
}

/* Make the object's body its own before a write: a body that a copy or a
 * view shares is cloned (never written). False on OOM (nothing changed).
 * The acquire load orders the reads of a holder that just let go before
 * our writes. */
bool cpex__ext_own_body(cpex_extensions *ext)
{
    cpex__ext_body *cur = ext->body;
    if (atomic_load_explicit(&cur->refs, memory_order_acquire) == 1)
        return true;
    cpex__ext_body *mine = body_clone(cur);
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
    atomic_fetch_add_explicit(cpex__ext_refs_of(ext), 1, memory_order_relaxed);
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
    return ext ? atomic_load_explicit(cpex__ext_refs_of(ext), memory_order_relaxed) : 0;
}

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
/* Equality                                                            */
/* ------------------------------------------------------------------ */

static bool str_eq(const cpex__ext_str *a, const cpex__ext_str *b)
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
static bool headers_equal(const cpex__ext_headers *a, const cpex__ext_headers *b)
{
    if (a->count != b->count)
        return false;
    for (size_t i = 0; i < a->count; i++) {
        const cpex__ext_header *x = &a->items[i];
        const cpex__ext_header *y = cpex__ext_header_find(b, x->name->text, x->name->len);
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
    static const cpex__ext_body empty; /* NULL compares as an empty object */
    const cpex__ext_body *a = ea ? ea->body : &empty, *b = eb ? eb->body : &empty;
    if (a == b)
        return 1; /* the same object, or one shared since a copy */
    for (size_t i = 0; i < CPEX__EXT_SINGLES; i++) {
        if (!str_eq(a->single[i], b->single[i]))
            return 0;
    }
    /* Lists keep their order (the JSON form is an array), so order counts. */
    for (size_t l = 0; l < CPEX__EXT_LISTS; l++) {
        if (a->lists[l].count != b->lists[l].count)
            return 0;
        for (size_t i = 0; i < a->lists[l].count; i++) {
            if (!str_eq(a->lists[l].items[i], b->lists[l].items[i]))
                return 0;
        }
    }
    for (size_t s = 0; s < CPEX__EXT_HEADER_SETS; s++) {
        if (!headers_equal(&a->headers[s], &b->headers[s]))
            return 0;
    }
    if (a->custom == b->custom)
        return 1; /* shared since a copy */
    return custom_equal(a->custom ? a->custom->obj : NULL, b->custom ? b->custom->obj : NULL);
}
