/*
 * table.c — the host table a plugin gets in the worker.
 *
 * JSON, CMF and `free` are libcpex's own slots (the worker links the
 * library's code): they need no host. Every slot that takes a call either
 * reads what the host sent (extensions, context) or asks something of the
 * host (deny, errors, metadata, payload, extension and context writes,
 * logs). Asking is not a round trip: the request is written into the
 * call's reply, in order, and the host replays it through its own table
 * against the real call when the handler has returned — with its own
 * checks and soft errors. The status the plugin gets now is the one the
 * host's slot will find: the same capability and mode rules, and the
 * model's own validation on a local copy of the extensions (a refused
 * write is still sent, so the host records the refusal as it would in
 * process). One round trip per call, whatever the plugin does — but for
 * the state slots (state.c), whose answers only the host has.
 */
#include <stdio.h>
#include <string.h>

#include "cpex/cmf.h"
#include "cpex/json.h"
#include "cpex/manager.h"
#include "isolation/proto.h"
#include "isolation/wire_cmf.h"
#include "model/capabilities.h"
#include "model/extensions_internal.h"
#include "util/alloc.h"
#include "worker/worker.h"

/* Log lines one call may pass on; more are counted as lost. */
#define MAX_CALL_LOGS 256u

static wcall *active(const cpex_call *call)
{
    if (!call || !call->host_private)
        return NULL;
    wcall *wc = call->host_private;
    return wc->magic == WCALL_MAGIC && wc->active && &wc->call == call ? wc : NULL;
}

/* ------------------------------------------------------------------ */
/* Writing requests into the reply                                     */
/* ------------------------------------------------------------------ */

/* An op is written whole or not at all: one that does not fit is rolled
   back and counted (the host is told how many were lost). */
typedef struct op_mark {
    size_t len;
} op_mark;

static op_mark op_begin(wcall *wc, uint8_t type)
{
    op_mark m = {wc->out->len};
    wc->out->cap = wc->op_cap;
    cpex__iso_wr_u8(wc->out, type);
    return m;
}

static int32_t op_end(wcall *wc, op_mark m)
{
    if (wc->out->over) {
        wc->out->len = m.len;
        wc->out->over = false;
        wc->lost++;
        return CPEX_HOST_ENOMEM;
    }
    wc->ops++;
    return CPEX_HOST_OK;
}

/* Text for the host, which accepts UTF-8 only: a plugin's stray bytes
   become '?' here, rather than a reply the host must refuse. */
static void wr_text(cpex__iso_wr *w, const char *s)
{
    size_t len = strlen(s);
    char *fixed = cpex__iso_text_fix(s, len);
    if (!fixed) {
        w->over = true;
        return;
    }
    cpex__iso_wr_strn(w, fixed, len);
    if (fixed != s)
        cpex__free(fixed);
}

static void wr_flagged_json(cpex__iso_wr *w, const json_t *v)
{
    cpex__iso_wr_u8(w, v != NULL);
    if (v)
        cpex__iso_wr_json(w, v);
}

/* ------------------------------------------------------------------ */
/* Logging and the result                                              */
/* ------------------------------------------------------------------ */

static void w_log(const cpex_call *call, uint32_t level, const char *message)
{
    if (!message)
        return;
    if (level > CPEX_LOG_ERROR)
        level = CPEX_LOG_ERROR;
    wcall *wc = active(call);
    if (!wc) {
        wk_log_control(level, message);
        return;
    }
    if (wc->logs >= MAX_CALL_LOGS) {
        wc->lost++;
        return;
    }
    op_mark m = op_begin(wc, ISO_OP_LOG);
    cpex__iso_wr_u32(wc->out, level);
    wr_text(wc->out, message);
    if (op_end(wc, m) == CPEX_HOST_OK)
        wc->logs++;
}

static int32_t w_deny(const cpex_call *call, const char *code, const char *reason,
                      const char *description, cpex_json *details)
{
    wcall *wc = active(call);
    json_t *d = cpex_json_to_jansson(details);
    if (!wc || !code || !reason || (d && !json_is_object(d))) {
        json_decref(d);
        return CPEX_HOST_EINVAL;
    }
    op_mark m = op_begin(wc, ISO_OP_DENY);
    wr_text(wc->out, code);
    wr_text(wc->out, reason);
    if (description)
        wr_text(wc->out, description);
    else
        cpex__iso_wr_u32(wc->out, ISO_STR_ABSENT);
    wr_flagged_json(wc->out, d);
    json_decref(d);
    return op_end(wc, m);
}

static int32_t w_set_error(const cpex_call *call, const char *message)
{
    wcall *wc = active(call);
    if (!wc || !message)
        return CPEX_HOST_EINVAL;
    op_mark m = op_begin(wc, ISO_OP_SET_ERROR);
    wr_text(wc->out, message);
    return op_end(wc, m);
}

static int32_t w_set_metadata(const cpex_call *call, const char *key, cpex_json *value)
{
    wcall *wc = active(call);
    json_t *v = cpex_json_to_jansson(value);
    if (!wc || !key || !v) {
        json_decref(v);
        return CPEX_HOST_EINVAL;
    }
    op_mark m = op_begin(wc, ISO_OP_METADATA);
    wr_text(wc->out, key);
    cpex__iso_wr_json(wc->out, v);
    json_decref(v);
    return op_end(wc, m);
}

/* The host's payload rule: the mode first, then the kind. A refusal is
   sent too, so the host records it. */
static int32_t payload_verdict(const wcall *wc, uint32_t kind)
{
    if (!wc->can_modify)
        return CPEX_HOST_EDENIED;
    return wc->payload_kind == kind ? CPEX_HOST_OK : CPEX_HOST_EINVAL;
}

/* A new payload of `kind` (written only when accepted), then released. */
static int32_t send_payload(wcall *wc, uint32_t kind, const void *data)
{
    int32_t verdict = payload_verdict(wc, kind);
    op_mark m = op_begin(wc, kind == CPEX_PAYLOAD_CMF ? ISO_OP_PAYLOAD_CMF : ISO_OP_PAYLOAD_JSON);
    cpex__iso_wr_u8(wc->out, verdict == CPEX_HOST_OK);
    if (verdict == CPEX_HOST_OK && kind == CPEX_PAYLOAD_CMF)
        cpex__iso_wr_cmf(wc->out, data);
    else if (verdict == CPEX_HOST_OK)
        cpex__iso_wr_json(wc->out, data);
    int32_t rc = op_end(wc, m);
    return rc == CPEX_HOST_OK ? verdict : rc;
}

static int32_t w_set_payload_cmf(const cpex_call *call, cpex_cmf_message *message)
{
    wcall *wc = active(call);
    int32_t rc = wc && message ? send_payload(wc, CPEX_PAYLOAD_CMF, message) : CPEX_HOST_EINVAL;
    cpex_cmf_free(message);
    return rc;
}

static int32_t w_set_payload_json(const cpex_call *call, cpex_json *document)
{
    wcall *wc = active(call);
    json_t *d = cpex_json_to_jansson(document);
    int32_t rc = wc && d ? send_payload(wc, CPEX_PAYLOAD_JSON, d) : CPEX_HOST_EINVAL;
    json_decref(d);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Extensions: reading                                                 */
/* ------------------------------------------------------------------ */

static const json_t *custom_object(wcall *wc)
{
    if (wc->pending)
        return cpex__extensions_custom_object(wc->pending);
    if (!wc->custom_read) {
        wc->custom_read = true;
        if (wc->ext.custom) {
            cpex__iso_rd r;
            cpex__iso_rd_init(&r, wc->ext.custom, wc->ext.custom_len);
            r.trusted = true;
            wc->custom = cpex__iso_rd_json(&r, "custom");
        }
    }
    return wc->custom;
}

static int32_t w_ext_get(const cpex_call *call, uint32_t field, cpex_str *out)
{
    wcall *wc = active(call);
    if (!wc || !out)
        return CPEX_HOST_EINVAL;
    out->ptr = NULL;
    out->len = 0;
    int idx = cpex__iso_ext_single_index(field);
    if (idx < 0 || !cpex__caps_can_read_field(wc->caps, field))
        return CPEX_HOST_ENOTFOUND;
    cpex_str s = wc->pending ? cpex__extensions_get_str(wc->pending, field) : wc->ext.single[idx];
    if (!s.ptr)
        return CPEX_HOST_ENOTFOUND;
    *out = s;
    return CPEX_HOST_OK;
}

static size_t w_ext_count(const cpex_call *call, uint32_t field)
{
    wcall *wc = active(call);
    int idx = cpex__iso_ext_list_index(field);
    if (!wc || idx < 0 || !cpex__caps_can_read_field(wc->caps, field))
        return 0;
    return wc->pending ? cpex_extensions_count(wc->pending, field) : wc->ext.list[idx].count;
}

static int32_t w_ext_item(const cpex_call *call, uint32_t field, size_t index, cpex_str *out)
{
    wcall *wc = active(call);
    if (!wc || !out)
        return CPEX_HOST_EINVAL;
    out->ptr = NULL;
    out->len = 0;
    int idx = cpex__iso_ext_list_index(field);
    if (idx < 0 || !cpex__caps_can_read_field(wc->caps, field))
        return CPEX_HOST_ENOTFOUND;
    cpex_str s = {NULL, 0};
    if (wc->pending)
        s = cpex__extensions_item_str(wc->pending, field, index);
    else if (index < wc->ext.list[idx].count)
        s = wc->ext.list[idx].items[index];
    if (!s.ptr)
        return CPEX_HOST_ENOTFOUND;
    *out = s;
    return CPEX_HOST_OK;
}

static bool can_read_headers(const wcall *wc) { return (wc->caps & CPEX_CAP_READ_HEADERS) != 0; }

/* Header names compare without regard to ASCII case, as the model does. */
static bool name_eq(cpex_str a, const char *b)
{
    size_t n = strlen(b);
    if (a.len != n)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char x = (unsigned char)a.ptr[i], y = (unsigned char)b[i];
        if (x >= 'A' && x <= 'Z')
            x = (unsigned char)(x + 32);
        if (y >= 'A' && y <= 'Z')
            y = (unsigned char)(y + 32);
        if (x != y)
            return false;
    }
    return true;
}

static int32_t w_ext_header(const cpex_call *call, uint32_t set, const char *name, cpex_str *out)
{
    wcall *wc = active(call);
    if (!wc || !name || !out)
        return CPEX_HOST_EINVAL;
    out->ptr = NULL;
    out->len = 0;
    if (!can_read_headers(wc))
        return CPEX_HOST_ENOTFOUND;
    if (wc->pending) {
        *out = cpex__extensions_header_str(wc->pending, set, name);
    } else if (set <= CPEX_HEADERS_RESPONSE) {
        for (size_t i = 0; i < wc->ext.headers[set].count && !out->ptr; i++)
            if (name_eq(wc->ext.headers[set].names[i], name))
                *out = wc->ext.headers[set].values[i];
    }
    return out->ptr ? CPEX_HOST_OK : CPEX_HOST_ENOTFOUND;
}

static size_t w_ext_header_count(const cpex_call *call, uint32_t set)
{
    wcall *wc = active(call);
    if (!wc || !can_read_headers(wc))
        return 0;
    if (wc->pending)
        return cpex_extensions_header_count(wc->pending, set);
    return set <= CPEX_HEADERS_RESPONSE ? wc->ext.headers[set].count : 0;
}

static int32_t w_ext_header_at(const cpex_call *call, uint32_t set, size_t index, cpex_str *name,
                               cpex_str *value)
{
    wcall *wc = active(call);
    if (!wc || !name || !value)
        return CPEX_HOST_EINVAL;
    name->ptr = value->ptr = NULL;
    name->len = value->len = 0;
    if (!can_read_headers(wc))
        return CPEX_HOST_ENOTFOUND;
    if (wc->pending) {
        if (!cpex__extensions_header_at_str(wc->pending, set, index, name, value))
            return CPEX_HOST_ENOTFOUND;
        if (!value->ptr) {
            value->ptr = "";
            value->len = 0;
        }
        return CPEX_HOST_OK;
    }
    if (set > CPEX_HEADERS_RESPONSE || index >= wc->ext.headers[set].count)
        return CPEX_HOST_ENOTFOUND;
    *name = wc->ext.headers[set].names[index];
    *value = wc->ext.headers[set].values[index];
    return CPEX_HOST_OK;
}

static const cpex_json *w_ext_custom(const cpex_call *call, const char *key)
{
    wcall *wc = active(call);
    if (!wc || !key || !(wc->caps & CPEX_CAP_READ_CUSTOM))
        return NULL;
    return (const cpex_json *)json_object_get(custom_object(wc), key);
}

/* ------------------------------------------------------------------ */
/* Extensions: writing                                                 */
/* ------------------------------------------------------------------ */

/* The host's may_write: capability, then mode, then a copy to change. */
static int32_t may_write(wcall *wc, uint32_t cap)
{
    if (!(wc->caps & cap) || !wc->can_modify)
        return CPEX_HOST_EDENIED;
    if (!wc->pending) {
        wc->pending = cpex__iso_ext_materialize(&wc->ext, custom_object(wc));
        if (!wc->pending)
            return CPEX_HOST_ENOMEM;
    }
    return CPEX_HOST_OK;
}

static int32_t status_to_host(cpex_status st)
{
    return st == CPEX_OK ? CPEX_HOST_OK : st == CPEX_E_NOMEM ? CPEX_HOST_ENOMEM : CPEX_HOST_EINVAL;
}

/* Send op `m` when the write was allowed and done, or refused by the
   rules (so the host records the refusal); not when it was invalid. */
static int32_t finish_write(wcall *wc, op_mark m, int32_t rc)
{
    if (rc == CPEX_HOST_OK || rc == CPEX_HOST_EDENIED) {
        int32_t sent = op_end(wc, m);
        return sent == CPEX_HOST_OK ? rc : sent;
    }
    wc->out->len = m.len;
    wc->out->over = false;
    return rc;
}

static int32_t w_ext_set_header(const cpex_call *call, uint32_t set, const char *name,
                                const char *value)
{
    wcall *wc = active(call);
    if (!wc || !name || !value || set > CPEX_HEADERS_RESPONSE)
        return CPEX_HOST_EINVAL;
    int32_t rc = may_write(wc, CPEX_CAP_WRITE_HEADERS);
    if (rc == CPEX_HOST_OK)
        rc = status_to_host(cpex_extensions_set_header(wc->pending, set, name, value));
    op_mark m = op_begin(wc, ISO_OP_HEADER);
    cpex__iso_wr_u32(wc->out, set);
    wr_text(wc->out, name);
    wr_text(wc->out, value);
    return finish_write(wc, m, rc);
}

static int32_t w_ext_append_label(const cpex_call *call, const char *label)
{
    wcall *wc = active(call);
    if (!wc || !label || !*label)
        return CPEX_HOST_EINVAL;
    int32_t rc = may_write(wc, CPEX_CAP_APPEND_LABELS);
    if (rc == CPEX_HOST_OK)
        rc = status_to_host(cpex_extensions_add(wc->pending, CPEX_EXT_LABELS, label));
    op_mark m = op_begin(wc, ISO_OP_LABEL);
    wr_text(wc->out, label);
    return finish_write(wc, m, rc);
}

static int32_t w_ext_remove_label(const cpex_call *call, const char *label)
{
    wcall *wc = active(call);
    if (!wc)
        return CPEX_HOST_EINVAL;
    op_mark m = op_begin(wc, ISO_OP_REMOVE_LABEL);
    wr_text(wc->out, label ? label : "");
    return finish_write(wc, m, CPEX_HOST_EDENIED);
}

static int32_t w_ext_set_custom(const cpex_call *call, const char *key, cpex_json *value)
{
    wcall *wc = active(call);
    json_t *v = cpex_json_to_jansson(value);
    if (!wc || !key) {
        json_decref(v);
        return CPEX_HOST_EINVAL;
    }
    int32_t rc = may_write(wc, CPEX_CAP_WRITE_CUSTOM);
    op_mark m = op_begin(wc, ISO_OP_CUSTOM);
    wr_text(wc->out, key);
    wr_flagged_json(wc->out, v);
    if (rc == CPEX_HOST_OK)
        rc = status_to_host(cpex_extensions_set_custom(wc->pending, key, v));
    else
        json_decref(v);
    return finish_write(wc, m, rc);
}

/* ------------------------------------------------------------------ */
/* Context                                                             */
/* ------------------------------------------------------------------ */

/* The scope's object as the plugin sees it; created on a write. */
static json_t *ctx_object(wcall *wc, uint32_t scope, bool create)
{
    if (!wc->ctx_read[scope]) {
        wc->ctx_read[scope] = true;
        if (wc->ctx_raw[scope]) {
            cpex__iso_rd r;
            cpex__iso_rd_init(&r, wc->ctx_raw[scope], wc->ctx_len[scope]);
            r.trusted = true;
            wc->ctx[scope] = cpex__iso_rd_json(&r, "context");
        }
    }
    if (!wc->ctx[scope] && create)
        wc->ctx[scope] = json_object();
    return json_is_object(wc->ctx[scope]) ? wc->ctx[scope] : NULL;
}

static const cpex_json *w_ctx_get(const cpex_call *call, uint32_t scope, const char *key)
{
    wcall *wc = active(call);
    if (!wc || !key || scope > CPEX_CTX_GLOBAL)
        return NULL;
    return (const cpex_json *)json_object_get(ctx_object(wc, scope, false), key);
}

static int32_t w_ctx_set(const cpex_call *call, uint32_t scope, const char *key, cpex_json *value)
{
    wcall *wc = active(call);
    json_t *v = cpex_json_to_jansson(value);
    if (!wc || !key || scope > CPEX_CTX_GLOBAL) {
        json_decref(v);
        return CPEX_HOST_EINVAL;
    }
    json_t *obj = ctx_object(wc, scope, v != NULL);
    if (v && !obj) {
        json_decref(v);
        return CPEX_HOST_ENOMEM;
    }
    op_mark m = op_begin(wc, ISO_OP_CTX_SET);
    cpex__iso_wr_u32(wc->out, scope);
    wr_text(wc->out, key);
    wr_flagged_json(wc->out, v);
    int32_t rc = op_end(wc, m);
    if (rc != CPEX_HOST_OK) {
        json_decref(v);
        return rc;
    }
    if (!v) {
        if (obj)
            json_object_del(obj, key);
        return CPEX_HOST_OK;
    }
    return json_object_set_new(obj, key, v) == 0 ? CPEX_HOST_OK : CPEX_HOST_ENOMEM;
}

/* ------------------------------------------------------------------ */
/* The table and a call's life                                         */
/* ------------------------------------------------------------------ */

static cpex_host_api table;
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

static void table_init(void)
{
    /* libcpex's own table: JSON, CMF and free are the same code here. */
    table = *cpex_host_api_get();
    table.host_identity = &table;
    table.log = w_log;
    table.deny = w_deny;
    table.set_error = w_set_error;
    table.set_metadata = w_set_metadata;
    table.set_payload_cmf = w_set_payload_cmf;
    table.set_payload_json = w_set_payload_json;
    table.ext_get = w_ext_get;
    table.ext_count = w_ext_count;
    table.ext_item = w_ext_item;
    table.ext_header = w_ext_header;
    table.ext_header_count = w_ext_header_count;
    table.ext_header_at = w_ext_header_at;
    table.ext_custom = w_ext_custom;
    table.ext_set_header = w_ext_set_header;
    table.ext_append_label = w_ext_append_label;
    table.ext_remove_label = w_ext_remove_label;
    table.ext_set_custom = w_ext_set_custom;
    table.ctx_get = w_ctx_get;
    table.ctx_set = w_ctx_set;
    wk_state_slots(&table);
}

const cpex_host_api *wk_host_table(void)
{
    pthread_once(&table_once, table_init);
    return &table;
}

/* Room kept at the end of the reply for the ISO_OP_LOST op. */
#define LOST_ROOM 16u

void wk_call_begin(wcall *wc, cpex__iso_wr *out)
{
    wc->magic = WCALL_MAGIC;
    wc->active = true;
    wc->out = out;
    wc->op_cap = out->cap > LOST_ROOM ? out->cap - LOST_ROOM : 0;
    wc->ops = wc->lost = wc->logs = 0;
    wc->call.host_private = wc;
}

void wk_call_end(wcall *wc)
{
    /* Under the upcall lock: a plugin thread still in a state slot finishes
       its upcall before the reply is posted, and none starts after. */
    pthread_mutex_lock(&wk_chan_of(wc)->up_lock);
    wc->active = false;
    pthread_mutex_unlock(&wk_chan_of(wc)->up_lock);
    wc->out->cap = wc->op_cap + LOST_ROOM;
    if (wc->lost) {
        cpex__iso_wr_u8(wc->out, ISO_OP_LOST);
        cpex__iso_wr_u32(wc->out, wc->lost);
        wc->ops++;
    }
    cpex_extensions_unref(wc->pending);
    wc->pending = NULL;
    json_decref(wc->custom);
    wc->custom = NULL;
    wc->custom_read = false;
    for (int s = 0; s < 2; s++) {
        json_decref(wc->ctx[s]);
        wc->ctx[s] = NULL;
        wc->ctx_read[s] = false;
        wc->ctx_raw[s] = NULL;
        wc->ctx_len[s] = 0;
    }
    json_decref(wc->json_payload);
    wc->json_payload = NULL;
}
