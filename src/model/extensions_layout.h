/*
 * extensions_layout.h — the memory of the extensions object
 * (cpex/extensions.h), shared by the files that implement it (model
 * layer, internal; nothing else includes it): extensions.c (the object:
 * handle, body, reference counts, copy-on-write, views, equality),
 * extensions_fields.c (single-valued and list fields),
 * extensions_headers.c (header sets) and extensions_custom.c (the custom
 * value). Its JSON form, extensions_json.c, reaches the object through
 * accessors only (extensions_internal.h).
 *
 * Layout choices, and why:
 *   - Every string is an immutable, reference-counted block (cpex__ext_str).
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
 *     counted wrapper (cpex__ext_custom) and deep-copied only when a
 *     shared one is written. JSON values are never shared between two wrappers: the
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
#ifndef CPEX_MODEL_EXTENSIONS_LAYOUT_H
#define CPEX_MODEL_EXTENSIONS_LAYOUT_H

#include <assert.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <jansson.h>

#include "cpex/abi.h"
#include "cpex/extensions.h"
#include "model/extensions_internal.h"
#include "model/text_check.h"
#include "util/alloc.h"

/* ------------------------------------------------------------------ */
/* Shared immutable strings                                            */
/* ------------------------------------------------------------------ */

typedef struct cpex__ext_str {
    atomic_size_t refs;
    size_t len;
    char text[];
} cpex__ext_str;

static inline cpex__ext_str *cpex__ext_str_new(const char *s, size_t len)
{
    if (len > SIZE_MAX - sizeof(cpex__ext_str) - 1)
        return NULL;
    cpex__ext_str *p = cpex__malloc(sizeof(cpex__ext_str) + len + 1);
    if (!p)
        return NULL;
    atomic_init(&p->refs, 1);
    p->len = len;
    memcpy(p->text, s, len);
    p->text[len] = '\0';
    return p;
}

static inline cpex__ext_str *cpex__ext_str_ref(cpex__ext_str *s)
{
    /* Relaxed is enough to take a reference: the caller already holds one,
     * which keeps the block alive (same reasoning as the object itself). */
    if (s)
        atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
    return s;
}

static inline void cpex__ext_str_unref(cpex__ext_str *s)
{
    /* acq_rel rather than release + acquire fence: ThreadSanitizer does not
     * model fences, and the cost is the same on x86. */
    if (s && atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) == 1)
        cpex__free(s);
}

static inline cpex_str cpex__ext_str_view(const cpex__ext_str *s)
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

/* How many single-valued fields and list fields a body holds (the slots
 * are numbered in extensions_fields.c), and how many header sets. */
#define CPEX__EXT_SINGLES 11
#define CPEX__EXT_LISTS 3
#define CPEX__EXT_HEADER_SETS 2

typedef struct cpex__ext_list {
    cpex__ext_str **items;
    size_t count, cap;
} cpex__ext_list;

typedef struct cpex__ext_header {
    cpex__ext_str *name;
    cpex__ext_str *value;
} cpex__ext_header;

typedef struct cpex__ext_headers {
    cpex__ext_header *items;
    size_t count, cap;
} cpex__ext_headers;

/* The custom object with its own count of the extensions objects that
 * share it. Only this wrapper holds a reference on `obj`. */
typedef struct cpex__ext_custom {
    atomic_size_t refs;
    json_t *obj;
} cpex__ext_custom;

/* What the object holds, shared between objects until one of them is
 * written (copy-on-write): a copy, and a view a worker thread reads
 * through, take a reference instead of copying. A body shared by more
 * than one holder is never written. */
typedef struct cpex__ext_body {
    /* First (cpex__extensions_meta_of reads it inline): the meta slot as
     * the router reads it, with the entity's hash; the setters keep it in
     * step with `single` and the tags (extensions_fields.c). */
    cpex__ext_meta meta;
    atomic_size_t refs;
    bool is_inline; /* the `own` body of its object's allocation */
    cpex__ext_str *single[CPEX__EXT_SINGLES];
    cpex__ext_list lists[CPEX__EXT_LISTS];
    cpex__ext_headers headers[CPEX__EXT_HEADER_SETS];
    cpex__ext_custom *custom; /* NULL until the first custom value */
} cpex__ext_body;

/* The object: a handle on its current body. Its allocation holds a body
 * of its own, `own`, which the handle uses until a write finds it shared;
 * the allocation lives while `own` is referenced (the handle references it
 * until the handle's last unref), so a view may outlive the handle. */
struct cpex_extensions {
    union { /* first: cpex__extensions_meta_of reads `head` inline */
        cpex__ext_head head;
        cpex__ext_body *body;
    };
    atomic_size_t refs;
    bool is_view; /* set up by cpex__extensions_view_init: no `own` body */
    cpex__ext_body own;
};

_Static_assert(offsetof(cpex__ext_body, meta) == 0, "the meta record starts the body");
_Static_assert(offsetof(struct cpex_extensions, head) == 0 &&
                   offsetof(struct cpex_extensions, body) == 0,
               "the head starts the object");

static inline cpex__ext_custom *cpex__ext_custom_ref(cpex__ext_custom *c)
{
    if (c)
        atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
    return c;
}

static inline void cpex__ext_custom_unref(cpex__ext_custom *c)
{
    if (c && atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) == 1) {
        json_decref(c->obj);
        cpex__free(c);
    }
}

/* The refcount is the only thing ref/unref touch; the object was created
 * writable by cpex_extensions_new, so dropping the const to reach the
 * counter is well defined. */
static inline atomic_size_t *cpex__ext_refs_of(const cpex_extensions *ext)
{
    return &((cpex_extensions *)ext)->refs;
}

/* Setters are for the sole owner: other threads may be reading a shared
 * object without locks. Debug builds stop at the bug; release builds go on
 * (the header documents the rule, we do not crash a host over it). */
static inline void cpex__ext_check_sole_owner(const cpex_extensions *ext)
{
    assert(atomic_load_explicit(cpex__ext_refs_of(ext), memory_order_relaxed) == 1 &&
           "cpex_extensions: changing an object that is shared");
    (void)ext;
}

/* The header of `name` (case-insensitive), or NULL. */
static inline cpex__ext_header *cpex__ext_header_find(const cpex__ext_headers *h, const char *name,
                                                      size_t len)
{
    for (size_t i = 0; i < h->count; i++) {
        if (cpex__ascii_ieq(h->items[i].name->text, h->items[i].name->len, name, len))
            return &h->items[i];
    }
    return NULL;
}

/* Make the object's body its own before a write (extensions.c): false on
 * OOM, with nothing changed. */
bool cpex__ext_own_body(cpex_extensions *ext);

#endif
