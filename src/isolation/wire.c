/* wire.c — primitives and JSON of the host–worker transport (see wire.h). */
#include "isolation/wire.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "model/cmf_internal.h"
#include "model/text_check.h"
#include "util/alloc.h"

/* ------------------------------------------------------------------ */
/* Text                                                                */
/* ------------------------------------------------------------------ */

bool cpex__iso_text_ok(const char *s, size_t len)
{
    return cpex__text_check_bytes(s, len) == CPEX__TEXT_OK;
}

char *cpex__iso_text_fix(const char *s, size_t len)
{
    if (cpex__iso_text_ok(s, len))
        return (char *)s;
    char *out = cpex__malloc(len + 1);
    if (!out)
        return NULL;
    size_t i = 0;
    while (i < len) {
        /* The longest valid sequence here (1 to 4 bytes), else one '?'. */
        size_t n = 0;
        for (size_t k = 1; k <= 4 && i + k <= len; k++)
            if (cpex__iso_text_ok(s + i, k))
                n = k;
        if (n == 0) {
            out[i++] = '?';
            continue;
        }
        memcpy(out + i, s + i, n);
        i += n;
    }
    out[len] = '\0';
    return out;
}

/* ------------------------------------------------------------------ */
/* Writing                                                             */
/* ------------------------------------------------------------------ */

void cpex__iso_wr_strn(cpex__iso_wr *w, const char *ptr, size_t len)
{
    if (len >= ISO_STR_ABSENT) {
        w->over = true;
        return;
    }
    if (!cpex__iso_wr_room(w, (size_t)5 + len))
        return;
    uint32_t l = (uint32_t)len;
    memcpy(w->buf + w->len, &l, 4);
    if (len)
        memcpy(w->buf + w->len + 4, ptr, len);
    w->buf[w->len + 4 + len] = 0;
    w->len += 5 + len;
}

void cpex__iso_wr_opt(cpex__iso_wr *w, cpex_str s)
{
    if (!s.ptr)
        cpex__iso_wr_u32(w, ISO_STR_ABSENT);
    else
        cpex__iso_wr_strn(w, s.ptr, s.len);
}

void cpex__iso_wr_cstr(cpex__iso_wr *w, const char *s)
{
    if (!s)
        cpex__iso_wr_u32(w, ISO_STR_ABSENT);
    else
        cpex__iso_wr_strn(w, s, strlen(s));
}

static void wr_json(cpex__iso_wr *w, const json_t *v, int depth)
{
    if (depth > ISO_JSON_MAX_DEPTH) {
        w->over = true;
        return;
    }
    switch (v ? json_typeof(v) : JSON_NULL) {
    case JSON_NULL: cpex__iso_wr_u8(w, ISO_J_NULL); break;
    case JSON_FALSE: cpex__iso_wr_u8(w, ISO_J_FALSE); break;
    case JSON_TRUE: cpex__iso_wr_u8(w, ISO_J_TRUE); break;
    case JSON_INTEGER:
        cpex__iso_wr_u8(w, ISO_J_INT);
        cpex__iso_wr_i64(w, (int64_t)json_integer_value(v));
        break;
    case JSON_REAL:
        cpex__iso_wr_u8(w, ISO_J_REAL);
        cpex__iso_wr_f64(w, json_real_value(v));
        break;
    case JSON_STRING:
        cpex__iso_wr_u8(w, ISO_J_STRING);
        cpex__iso_wr_strn(w, json_string_value(v), json_string_length(v));
        break;
    case JSON_ARRAY: {
        size_t n = json_array_size(v);
        cpex__iso_wr_u8(w, ISO_J_ARRAY);
        cpex__iso_wr_u32(w, (uint32_t)n);
        for (size_t i = 0; i < n && !w->over; i++)
            wr_json(w, json_array_get(v, i), depth + 1);
        break;
    }
    case JSON_OBJECT: {
        cpex__iso_wr_u8(w, ISO_J_OBJECT);
        cpex__iso_wr_u32(w, (uint32_t)json_object_size(v));
        const char *key;
        json_t *val;
        json_object_foreach((json_t *)v, key, val)
        {
            if (w->over)
                break;
            cpex__iso_wr_strn(w, key, strlen(key));
            wr_json(w, val, depth + 1);
        }
        break;
    }
    }
}

void cpex__iso_wr_json(cpex__iso_wr *w, const json_t *v) { wr_json(w, v, 1); }

/* ------------------------------------------------------------------ */
/* Reading                                                             */
/* ------------------------------------------------------------------ */

void cpex__iso_rd_init(cpex__iso_rd *r, const void *buf, size_t len)
{
    r->buf = buf;
    r->len = len;
    r->pos = 0;
    r->bad = false;
    r->trusted = false;
    r->why[0] = '\0';
}

bool cpex__iso_rd_fail(cpex__iso_rd *r, const char *fmt, ...)
{
    if (r->bad)
        return false;
    r->bad = true;
    char what[120];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    snprintf(r->why, sizeof r->why, "%s (at byte %zu of %zu)", what, r->pos, r->len);
    return false;
}

static bool take(cpex__iso_rd *r, void *out, size_t n)
{
    if (r->bad)
        return false;
    if (n > r->len - r->pos)
        return cpex__iso_rd_fail(r, "cut short: %zu more bytes needed", n);
    memcpy(out, r->buf + r->pos, n);
    r->pos += n;
    return true;
}

/* The fixed-size readers: zero once the reader has stopped. */
#define ISO_RD_NUMBER(name, type)                                                                  \
    type name(cpex__iso_rd *r)                                                                     \
    {                                                                                              \
        type v = 0;                                                                                \
        return take(r, &v, sizeof v) ? v : 0;                                                      \
    }
ISO_RD_NUMBER(cpex__iso_rd_u8, uint8_t)
ISO_RD_NUMBER(cpex__iso_rd_u32, uint32_t)
ISO_RD_NUMBER(cpex__iso_rd_i32, int32_t)
ISO_RD_NUMBER(cpex__iso_rd_u64, uint64_t)
ISO_RD_NUMBER(cpex__iso_rd_i64, int64_t)
ISO_RD_NUMBER(cpex__iso_rd_f64, double)

uint32_t cpex__iso_rd_count(cpex__iso_rd *r, size_t min_item, const char *what)
{
    uint32_t n = cpex__iso_rd_u32(r);
    if (!r->bad && min_item && n > cpex__iso_rd_left(r) / min_item) {
        cpex__iso_rd_fail(r, "%s: %u items cannot fit in the %zu bytes left", what, n,
                          cpex__iso_rd_left(r));
        return 0;
    }
    return r->bad ? 0 : n;
}

cpex_str cpex__iso_rd_str(cpex__iso_rd *r, int flags, const char *what)
{
    cpex_str s = {NULL, 0};
    uint32_t len = cpex__iso_rd_u32(r);
    if (r->bad)
        return s;
    if (len == ISO_STR_ABSENT) {
        if (!(flags & ISO_S_OPTIONAL))
            cpex__iso_rd_fail(r, "%s: a required string is absent", what);
        return s;
    }
    if ((size_t)len >= r->len - r->pos) {
        cpex__iso_rd_fail(r, "%s: a string of %u bytes runs past the end", what, len);
        return s;
    }
    const char *p = (const char *)r->buf + r->pos;
    if (p[len] != '\0') {
        cpex__iso_rd_fail(r, "%s: a string is not NUL-terminated", what);
        return s;
    }
    if (!(flags & ISO_S_BYTES) && !r->trusted && !cpex__iso_text_ok(p, len)) {
        cpex__iso_rd_fail(r, "%s: text that is not UTF-8 or holds a NUL", what);
        return s;
    }
    r->pos += (size_t)len + 1;
    s.ptr = p;
    s.len = len;
    return s;
}

static json_t *rd_json(cpex__iso_rd *r, const char *what, int depth, bool build);

static json_t *rd_array(cpex__iso_rd *r, const char *what, int depth, bool build)
{
    uint32_t n = cpex__iso_rd_count(r, 1, what);
    json_t *a = build && !r->bad ? json_array() : NULL;
    if (build && !r->bad && !a) {
        cpex__iso_rd_fail(r, "%s: out of memory", what);
        return NULL;
    }
    for (uint32_t i = 0; i < n && !r->bad; i++) {
        json_t *v = rd_json(r, what, depth + 1, build);
        if (build && v && json_array_append_new(a, v) != 0)
            cpex__iso_rd_fail(r, "%s: out of memory", what);
    }
    if (r->bad) {
        json_decref(a);
        return NULL;
    }
    return a;
}

static json_t *rd_object(cpex__iso_rd *r, const char *what, int depth, bool build)
{
    uint32_t n = cpex__iso_rd_count(r, 6, what); /* a key takes 5 bytes, a value 1 */
    json_t *o = build && !r->bad ? json_object() : NULL;
    if (build && !r->bad && !o) {
        cpex__iso_rd_fail(r, "%s: out of memory", what);
        return NULL;
    }
    for (uint32_t i = 0; i < n && !r->bad; i++) {
        cpex_str key = cpex__iso_rd_str(r, ISO_S_TEXT, what);
        if (r->bad)
            break;
        if (build && json_object_get(o, key.ptr)) {
            cpex__iso_rd_fail(r, "%s: duplicate object key", what);
            break;
        }
        json_t *v = rd_json(r, what, depth + 1, build);
        if (build && v && json_object_set_new(o, key.ptr, v) != 0)
            cpex__iso_rd_fail(r, "%s: out of memory", what);
    }
    if (r->bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static json_t *rd_json(cpex__iso_rd *r, const char *what, int depth, bool build)
{
    if (depth > ISO_JSON_MAX_DEPTH) {
        cpex__iso_rd_fail(r, "%s: JSON nested deeper than %d", what, ISO_JSON_MAX_DEPTH);
        return NULL;
    }
    uint8_t tag = cpex__iso_rd_u8(r);
    if (r->bad)
        return NULL;
    json_t *v = NULL;
    switch (tag) {
    case ISO_J_NULL: v = build ? json_null() : NULL; break;
    case ISO_J_FALSE: v = build ? json_false() : NULL; break;
    case ISO_J_TRUE: v = build ? json_true() : NULL; break;
    case ISO_J_INT: {
        int64_t i = cpex__iso_rd_i64(r);
        v = build && !r->bad ? json_integer((json_int_t)i) : NULL;
        break;
    }
    case ISO_J_REAL: {
        double d = cpex__iso_rd_f64(r);
        if (!r->bad && !isfinite(d)) {
            cpex__iso_rd_fail(r, "%s: a JSON number that is not finite", what);
            return NULL;
        }
        v = build && !r->bad ? json_real(d) : NULL;
        break;
    }
    case ISO_J_STRING: {
        cpex_str s = cpex__iso_rd_str(r, ISO_S_TEXT, what);
        v = build && !r->bad ? json_stringn(s.ptr, s.len) : NULL;
        break;
    }
    case ISO_J_ARRAY: return rd_array(r, what, depth, build);
    case ISO_J_OBJECT: return rd_object(r, what, depth, build);
    default: cpex__iso_rd_fail(r, "%s: unknown JSON tag %u", what, tag); return NULL;
    }
    if (build && !r->bad && !v)
        cpex__iso_rd_fail(r, "%s: out of memory", what);
    return r->bad ? NULL : v;
}

json_t *cpex__iso_rd_json(cpex__iso_rd *r, const char *what) { return rd_json(r, what, 1, true); }

void cpex__iso_rd_skip_json(cpex__iso_rd *r, const char *what) { rd_json(r, what, 1, false); }
