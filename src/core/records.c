/*
 * records.c — execution records (observe.h): one block per invoke holding
 * every record and every string the records point at, so an invoke with
 * records on makes one allocation for them and a result frees them with
 * one call.
 *
 * What every invoke of a hook shares — a record per handler as a clean
 * allow, with the plugins' names, kinds and config key names and the hook
 * name — is laid out once per registry snapshot (cpex__rec_template). An
 * invoke copies that image into its block with one memcpy; a call then
 * writes only what it came to (a clean allow: its status and two tick
 * readings), and the block is finished once at the end: the records used
 * are kept in order, their pointers rebased onto the block and their
 * times converted. A spare area takes reasons; a reason that no longer
 * fits goes to an overflow allocation (only a pipeline with many failures
 * needs one).
 */
#include <string.h>
#include <time.h>

#include "core/observe.h"
#include "model/extensions_internal.h"
#include "util/alloc.h"

/* Room for reasons in every block: a deny's and an error or two. */
#define SPARE_TEXT 640

static size_t align8(size_t n) { return (n + 7) & ~(size_t)7; }

size_t cpex__rec_text_cut(char *buf, const char *text)
{
    size_t len = strlen(text);
    if (len <= CPEX__REC_MAX_TEXT) {
        memcpy(buf, text, len + 1);
        return len;
    }
    /* 253 bytes and an ellipsis (3 bytes) make 256: the bound is on the
     * whole text, not the text before the mark. Back off continuation
     * bytes so a character is never split. */
    size_t cut = CPEX__REC_MAX_TEXT - 3;
    while (cut > 0 && ((unsigned char)text[cut] & 0xC0) == 0x80)
        cut--;
    memcpy(buf, text, cut);
    memcpy(buf + cut, "\xE2\x80\xA6", 4);
    return cut + 3;
}

/* ------------------------------------------------------------------ */
/* What a plugin's records share                                       */
/* ------------------------------------------------------------------ */

bool cpex__rec_static_init(cpex__rec_static *rs, const char *name, const char *kind,
                           const json_t *config)
{
    memset(rs, 0, sizeof *rs);
    size_t nkeys = json_is_object(config) ? json_object_size(config) : 0;
    if (nkeys > CPEX__REC_MAX_KEYS)
        nkeys = CPEX__REC_MAX_KEYS; /* the first 64 in the config's order */
    size_t name_len = strlen(name), kind_len = kind ? strlen(kind) : 0;
    size_t cap = name_len + 1 + (kind ? kind_len + 1 : 0) + nkeys * (CPEX__REC_MAX_TEXT + 1);
    rs->blob = cpex__malloc(cap);
    if (nkeys) {
        rs->key_off = cpex__calloc(nkeys, sizeof *rs->key_off);
        rs->key_len = cpex__calloc(nkeys, sizeof *rs->key_len);
    }
    if (!rs->blob || (nkeys && (!rs->key_off || !rs->key_len))) {
        cpex__rec_static_free(rs);
        return false;
    }
    size_t pos = 0;
    memcpy(rs->blob, name, name_len + 1);
    rs->name_len = name_len;
    pos = name_len + 1;
    if (kind) {
        rs->kind_off = pos;
        rs->kind_len = kind_len;
        memcpy(rs->blob + pos, kind, kind_len + 1);
        pos += kind_len + 1;
    }
    const char *key;
    json_t *value;
    size_t i = 0;
    json_object_foreach((json_t *)config, key, value)
    {
        if (i == nkeys)
            break;
        (void)value; /* names only: a value may be a secret */
        rs->key_off[i] = (uint32_t)pos;
        rs->key_len[i] = (uint32_t)cpex__rec_text_cut(rs->blob + pos, key);
        pos += rs->key_len[i] + 1;
        i++;
    }
    rs->key_count = (uint32_t)i;
    rs->blob_len = pos;
    rs->bytes = align8(rs->key_count * sizeof(cpex_str)) + align8(rs->blob_len);
    return true;
}

void cpex__rec_static_free(cpex__rec_static *rs)
{
    if (!rs)
        return;
    cpex__free(rs->blob);
    cpex__free(rs->key_off);
    cpex__free(rs->key_len);
    memset(rs, 0, sizeof *rs);
}

/* ------------------------------------------------------------------ */
/* Templates                                                           */
/* ------------------------------------------------------------------ */

/* A pointer that holds an offset into a template image (rebased later). */
static const char *off_ptr(size_t off) { return (const char *)(uintptr_t)off; }

cpex__rec_template *cpex__rec_template_new(const cpex__hook *h)
{
    size_t recs = h->count * sizeof(cpex_execution_record);
    size_t bytes = recs + align8(h->name_len + 1);
    for (size_t k = 0; k < h->count; k++) {
        const cpex__rec_static *rs = h->entries[k].plugin->rec;
        if (rs)
            bytes += align8(rs->key_count * sizeof(cpex_str)) + align8(rs->blob_len);
    }
    cpex__rec_template *t = cpex__malloc(sizeof *t + bytes);
    if (!t)
        return NULL;
    memset(t, 0, sizeof *t + bytes);
    t->count = h->count;
    t->bytes = bytes;
    size_t at = recs;
    size_t hook_off = at;
    t->hook_off = hook_off;
    t->hook_len = h->name_len;
    memcpy(t->image + at, h->name, h->name_len + 1);
    at += align8(h->name_len + 1);
    cpex_execution_record *rec = (cpex_execution_record *)(void *)t->image;
    for (size_t k = 0; k < h->count; k++, rec++) {
        const cpex__plugin *p = h->entries[k].plugin;
        rec->struct_size = (uint32_t)sizeof *rec;
        rec->status = CPEX__REC_UNUSED;
        rec->mode = p->mode;
        rec->requested = CPEX_ALLOW; /* a clean allow, as most calls end */
        rec->effective = CPEX_ALLOW;
        rec->matched = 0;
        rec->hook.ptr = off_ptr(hook_off);
        rec->hook.len = h->name_len;
        const cpex__rec_static *rs = p->rec;
        if (!rs)
            continue;
        size_t keys_off = at;
        at += align8(rs->key_count * sizeof(cpex_str));
        size_t blob_off = at;
        memcpy(t->image + blob_off, rs->blob, rs->blob_len);
        at += align8(rs->blob_len);
        rec->plugin_name.ptr = off_ptr(blob_off);
        rec->plugin_name.len = rs->name_len;
        if (rs->kind_off) {
            rec->plugin_kind.ptr = off_ptr(blob_off + rs->kind_off);
            rec->plugin_kind.len = rs->kind_len;
        }
        if (rs->key_count) {
            cpex_str *keys = (cpex_str *)(void *)(t->image + keys_off);
            for (uint32_t i = 0; i < rs->key_count; i++) {
                keys[i].ptr = off_ptr(blob_off + rs->key_off[i]);
                keys[i].len = rs->key_len[i];
            }
            rec->config_keys = (const cpex_str *)(const void *)off_ptr(keys_off);
            rec->config_key_count = rs->key_count;
        }
    }
    return t;
}

/* ------------------------------------------------------------------ */
/* Blocks                                                              */
/* ------------------------------------------------------------------ */

/* Copy `len` bytes and a NUL into the block's text area (or an overflow
 * allocation); NULL on OOM. */
static char *block_text(cpex__recs *r, const char *s, size_t len)
{
    char *dst;
    if ((size_t)(r->text_end - r->text) > len) {
        dst = r->text;
        r->text += len + 1;
    } else {
        cpex__rec_more *m = cpex__malloc(sizeof *m + len + 1);
        if (!m) {
            r->lost = true;
            return NULL;
        }
        m->next = r->more;
        r->more = m;
        dst = m->text;
    }
    memcpy(dst, s, len);
    dst[len] = '\0';
    return dst;
}

static cpex_str block_str(cpex__recs *r, cpex_str s)
{
    cpex_str out = {NULL, 0};
    if (s.ptr && (out.ptr = block_text(r, s.ptr, s.len)))
        out.len = s.len;
    return out;
}

static void set_clock_base(cpex__recs *r)
{
    r->t0_ticks = cpex__ticks();
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    r->t0_unix_ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

cpex__recs *cpex__recs_from_template(const cpex__rec_template *t, const cpex_extensions *ext)
{
    cpex_str trace = ext ? cpex__extensions_get_str(ext, CPEX_EXT_TRACE_ID) : (cpex_str){NULL, 0};
    cpex_str span = ext ? cpex__extensions_get_str(ext, CPEX_EXT_SPAN_ID) : (cpex_str){NULL, 0};
    size_t text = trace.len + 1 + span.len + 1 + SPARE_TEXT;
    cpex__recs *r = cpex__malloc(sizeof(cpex__recs) + t->bytes + text);
    if (!r)
        return NULL;
    memcpy(r->rec, t->image, t->bytes);
    r->count = 0;
    r->cap = t->count;
    r->templated = true;
    r->finished = false;
    r->lost = false;
    r->text = (char *)r->rec + t->bytes;
    r->text_end = r->text + text;
    r->more = NULL;
    r->hook.ptr = (const char *)r->rec + t->hook_off;
    r->hook.len = t->hook_len;
    r->trace_id = block_str(r, trace);
    r->span_id = block_str(r, span);
    set_clock_base(r);
    return r;
}

static const char *rebase(const char *base, const char *p)
{
    return p ? base + (uintptr_t)p : NULL;
}

void cpex__recs_finish(cpex__recs *r)
{
    if (!r->templated || r->finished)
        return;
    r->finished = true;
    const char *base = (const char *)r->rec;
    size_t n = 0;
    for (size_t k = 0; k < r->cap; k++) {
        cpex_execution_record *rec = &r->rec[k];
        if (rec->status == CPEX__REC_UNUSED)
            continue;
        rec->plugin_name.ptr = rebase(base, rec->plugin_name.ptr);
        rec->plugin_kind.ptr = rebase(base, rec->plugin_kind.ptr);
        rec->hook.ptr = rebase(base, rec->hook.ptr);
        if (rec->config_key_count) {
            /* The key array lives in the image's text, not in the record:
             * each entry's array is used by this one record only. */
            cpex_str *keys = (cpex_str *)(uintptr_t)rebase(base, (const char *)rec->config_keys);
            for (uint32_t i = 0; i < rec->config_key_count; i++)
                keys[i].ptr = rebase(base, keys[i].ptr);
            rec->config_keys = keys;
        }
        rec->trace_id = r->trace_id;
        rec->span_id = r->span_id;
        /* Tick readings until now (0: not called). */
        if (rec->start_unix_ns) {
            uint64_t s = (uint64_t)rec->start_unix_ns, e = (uint64_t)rec->duration_ns;
            rec->start_unix_ns = r->t0_unix_ns + cpex__ticks_ns(r->t0_ticks, s);
            rec->duration_ns = cpex__ticks_ns(s, e);
        }
        if (n != k)
            r->rec[n] = *rec;
        n++;
    }
    r->count = n;
}

cpex__recs *cpex__recs_new(size_t cap, size_t text_bytes, const char *hook, size_t hook_len,
                           const cpex_extensions *ext)
{
    cpex_str trace = ext ? cpex__extensions_get_str(ext, CPEX_EXT_TRACE_ID) : (cpex_str){NULL, 0};
    cpex_str span = ext ? cpex__extensions_get_str(ext, CPEX_EXT_SPAN_ID) : (cpex_str){NULL, 0};
    size_t text = text_bytes + hook_len + 1 + trace.len + 1 + span.len + 1 + SPARE_TEXT;
    size_t head = sizeof(cpex__recs) + cap * sizeof(cpex_execution_record);
    cpex__recs *r = cpex__malloc(head + text);
    if (!r)
        return NULL;
    r->count = 0;
    r->cap = cap;
    r->templated = false;
    r->finished = true;
    r->lost = false;
    r->text = (char *)r + head;
    r->text_end = r->text + text;
    r->more = NULL;
    r->hook.ptr = block_text(r, hook, hook_len);
    r->hook.len = hook_len;
    r->trace_id = block_str(r, trace);
    r->span_id = block_str(r, span);
    set_clock_base(r);
    return r;
}

void cpex__recs_free(cpex__recs *r)
{
    if (!r)
        return;
    while (r->more) {
        cpex__rec_more *next = r->more->next;
        cpex__free(r->more);
        r->more = next;
    }
    cpex__free(r);
}

char *cpex__recs_reserve(cpex__recs *r, size_t n)
{
    if ((size_t)(r->text_end - r->text) < n)
        return NULL;
    char *p = r->text;
    r->text += n;
    p[0] = '\0';
    return p;
}

/* The record's copy of its plugin's shared strings: the key array (8-byte
 * aligned) then the blob, both in the text area when they fit. */
static void add_static(cpex__recs *r, cpex_execution_record *rec, const cpex__rec_static *rs)
{
    size_t keys = rs->key_count * sizeof(cpex_str);
    char *at = (char *)(((uintptr_t)r->text + 7) & ~(uintptr_t)7);
    char *area = NULL;
    if (at <= r->text_end && (size_t)(r->text_end - at) >= keys + rs->blob_len) {
        area = at;
        r->text = at + keys + rs->blob_len;
    } else {
        cpex__rec_more *m = cpex__malloc(sizeof *m + keys + rs->blob_len + 8);
        if (!m) {
            r->lost = true;
            return; /* the record keeps no names: it is still counted */
        }
        m->next = r->more;
        r->more = m;
        area = (char *)(((uintptr_t)m->text + 7) & ~(uintptr_t)7);
    }
    cpex_str *key_arr = (cpex_str *)(void *)area;
    char *blob = area + keys;
    memcpy(blob, rs->blob, rs->blob_len);
    rec->plugin_name.ptr = blob;
    rec->plugin_name.len = rs->name_len;
    if (rs->kind_off) {
        rec->plugin_kind.ptr = blob + rs->kind_off;
        rec->plugin_kind.len = rs->kind_len;
    }
    if (rs->key_count) {
        for (uint32_t i = 0; i < rs->key_count; i++) {
            key_arr[i].ptr = blob + rs->key_off[i];
            key_arr[i].len = rs->key_len[i];
        }
        rec->config_keys = key_arr;
        rec->config_key_count = rs->key_count;
    }
}

cpex_execution_record *cpex__recs_add(cpex__recs *r, const cpex__plugin *p)
{
    if (r->count == r->cap)
        return NULL;
    cpex_execution_record *rec = &r->rec[r->count++];
    rec->struct_size = (uint32_t)sizeof *rec;
    rec->status = CPEX_EXEC_COMPLETED;
    rec->mode = p->mode;
    rec->requested = -1;
    rec->effective = CPEX_ALLOW;
    rec->matched = -1;
    rec->applied = 0;
    rec->payload_modified = 0;
    rec->extensions_modified = 0;
    rec->config_key_count = 0;
    rec->start_unix_ns = 0;
    rec->duration_ns = 0;
    rec->plugin_name.ptr = NULL;
    rec->plugin_name.len = 0;
    rec->plugin_kind.ptr = NULL;
    rec->plugin_kind.len = 0;
    rec->hook = r->hook;
    rec->code.ptr = NULL;
    rec->code.len = 0;
    rec->reason.ptr = NULL;
    rec->reason.len = 0;
    rec->trace_id = r->trace_id;
    rec->span_id = r->span_id;
    rec->config_keys = NULL;
    if (p->rec)
        add_static(r, rec, p->rec);
    return rec;
}

void cpex__recs_set_text(cpex__recs *r, cpex_str *field, const char *text)
{
    field->ptr = NULL;
    field->len = 0;
    if (!text)
        return;
    char buf[CPEX__REC_MAX_TEXT + 1];
    size_t len = cpex__rec_text_cut(buf, text);
    char *dst = block_text(r, buf, len);
    if (dst) {
        field->ptr = dst;
        field->len = len;
    }
}

cpex__recs *cpex__recs_clone_for_verdict(const cpex__recs *r, size_t count, size_t extra,
                                         size_t extra_bytes)
{
    size_t text = 0;
    for (size_t i = 0; i < count; i++) {
        const cpex_execution_record *x = &r->rec[i];
        text += x->plugin_name.len + x->plugin_kind.len + x->code.len + x->reason.len + 4 + 8 +
                x->config_key_count * sizeof(cpex_str);
        for (uint32_t k = 0; k < x->config_key_count; k++)
            text += x->config_keys[k].len + 1;
    }
    cpex__recs *c =
        cpex__recs_new(count + extra, text + extra_bytes, r->hook.ptr, r->hook.len, NULL);
    if (!c)
        return NULL;
    c->t0_ticks = r->t0_ticks;
    c->t0_unix_ns = r->t0_unix_ns;
    for (size_t i = 0; i < count; i++) {
        const cpex_execution_record *x = &r->rec[i];
        cpex_execution_record *y = &c->rec[c->count++];
        *y = *x;
        y->hook = c->hook;
        y->trace_id.ptr = y->span_id.ptr = NULL;
        y->trace_id.len = y->span_id.len = 0;
        y->config_keys = NULL;
        y->config_key_count = 0;
        if (x->config_key_count) {
            char *at = (char *)(((uintptr_t)c->text + 7) & ~(uintptr_t)7);
            size_t keys = x->config_key_count * sizeof(cpex_str);
            if (at <= c->text_end && (size_t)(c->text_end - at) >= keys) {
                cpex_str *arr = (cpex_str *)(void *)at;
                c->text = at + keys;
                for (uint32_t k = 0; k < x->config_key_count; k++)
                    arr[k] = block_str(c, x->config_keys[k]);
                y->config_keys = arr;
                y->config_key_count = x->config_key_count;
            }
        }
        y->plugin_name = block_str(c, x->plugin_name);
        y->plugin_kind = block_str(c, x->plugin_kind);
        y->code = block_str(c, x->code);
        y->reason = block_str(c, x->reason);
    }
    return c;
}

/* ------------------------------------------------------------------ */
/* Public helpers                                                      */
/* ------------------------------------------------------------------ */

const char *cpex_exec_status_name(uint32_t status)
{
    static const char *const names[] = {"completed", "error",           "timeout",
                                        "cancelled", "not_initialized", "not_started"};
    return status < sizeof names / sizeof names[0] ? names[status] : "unknown";
}

static json_t *str_json(cpex_str s) { return json_stringn(s.ptr, s.len); }

json_t *cpex_execution_record_to_json(const cpex_execution_record *r)
{
    json_t *o = r ? json_object() : NULL;
    if (!o)
        return NULL;
    int bad = 0;
#define SET(key, value) bad |= json_object_set_new(o, key, value)
    SET("plugin_name", str_json(r->plugin_name));
    if (r->plugin_kind.ptr)
        SET("plugin_kind", str_json(r->plugin_kind));
    SET("hook_name", str_json(r->hook));
    SET("mode", json_string(cpex_mode_name(r->mode)));
    SET("status", json_string(cpex_exec_status_name(r->status)));
    if (r->requested >= 0)
        SET("requested_allow", json_boolean(r->requested == CPEX_ALLOW));
    SET("effective_allow", json_boolean(r->effective == CPEX_ALLOW));
    if (r->matched >= 0)
        SET("matched", json_boolean(r->matched));
    SET("applied", json_boolean(r->applied));
    SET("payload_modified", json_boolean(r->payload_modified));
    SET("extensions_modified", json_boolean(r->extensions_modified));
    SET("start_unix_ns", json_integer((json_int_t)r->start_unix_ns));
    SET("duration_ns", json_integer((json_int_t)r->duration_ns));
    if (r->code.ptr)
        SET("error_code", str_json(r->code));
    if (r->reason.ptr)
        SET("reason", str_json(r->reason));
    json_t *keys = json_array();
    for (uint32_t i = 0; keys && i < r->config_key_count; i++)
        bad |= json_array_append_new(keys, str_json(r->config_keys[i]));
    SET("config_keys", keys);
    if (r->trace_id.ptr)
        SET("trace_id", str_json(r->trace_id));
    if (r->span_id.ptr)
        SET("span_id", str_json(r->span_id));
#undef SET
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}
