/* wire_verdict.c — an audit sink's verdict on the transport (see wire_verdict.h). */
#include "isolation/wire_verdict.h"

#include <string.h>

#include "cpex/json.h"

/* The most config keys a record carries (abi.h: at most 64); more is a
   broken request. */
#define MAX_CONFIG_KEYS 64u

static void wr_record(cpex__iso_wr *w, const cpex_execution_record *r)
{
    cpex__iso_wr_u32(w, r->status);
    cpex__iso_wr_u32(w, r->mode);
    cpex__iso_wr_i32(w, r->requested);
    cpex__iso_wr_u32(w, r->effective);
    cpex__iso_wr_i32(w, r->matched);
    cpex__iso_wr_u32(w, r->applied);
    cpex__iso_wr_u32(w, r->payload_modified);
    cpex__iso_wr_u32(w, r->extensions_modified);
    cpex__iso_wr_i64(w, r->start_unix_ns);
    cpex__iso_wr_i64(w, r->duration_ns);
    cpex__iso_wr_opt(w, r->plugin_name);
    cpex__iso_wr_opt(w, r->plugin_kind);
    cpex__iso_wr_opt(w, r->hook);
    cpex__iso_wr_opt(w, r->code);
    cpex__iso_wr_opt(w, r->reason);
    cpex__iso_wr_opt(w, r->trace_id);
    cpex__iso_wr_opt(w, r->span_id);
    uint32_t keys = r->config_keys ? r->config_key_count : 0;
    cpex__iso_wr_u32(w, keys);
    for (uint32_t k = 0; k < keys; k++)
        cpex__iso_wr_strn(w, r->config_keys[k].ptr, r->config_keys[k].len);
}

void cpex__iso_wr_verdict(cpex__iso_wr *w, const cpex_verdict *v)
{
    cpex__iso_wr_u32(w, v->decision);
    cpex__iso_wr_strn(w, v->hook.ptr, v->hook.len);
    cpex__iso_wr_opt(w, v->violation_code);
    cpex__iso_wr_opt(w, v->violation_reason);
    cpex__iso_wr_opt(w, v->violation_description);
    cpex__iso_wr_opt(w, v->violation_plugin);
    const json_t *details = cpex_json_to_jansson_const(v->violation_details);
    cpex__iso_wr_u8(w, details != NULL);
    if (details)
        cpex__iso_wr_json(w, details);
    cpex__iso_wr_u32(w, v->payload_modified);
    cpex__iso_wr_u32(w, v->extensions_modified);
    cpex__iso_wr_i64(w, v->time_unix_ns);
    /* A stride shorter than the record this build knows cannot be read
       safely; the core never makes one, and a sink then sees no records
       rather than garbage. */
    size_t n = v->records && v->record_size >= sizeof(cpex_execution_record) ? v->record_count : 0;
    if (n > UINT32_MAX) {
        w->over = true;
        return;
    }
    cpex__iso_wr_u32(w, (uint32_t)n);
    for (size_t i = 0; i < n && !w->over; i++)
        wr_record(w, cpex_verdict_record(v, i));
}

static cpex_str opt(cpex__iso_rd *r, const char *what)
{
    return cpex__iso_rd_str(r, ISO_S_TEXT | ISO_S_OPTIONAL, what);
}

static void rd_record(cpex__iso_rd *r, cpex__iso_arena *arena, cpex_execution_record *rec)
{
    rec->struct_size = (uint32_t)sizeof *rec;
    rec->status = cpex__iso_rd_u32(r);
    rec->mode = cpex__iso_rd_u32(r);
    rec->requested = cpex__iso_rd_i32(r);
    rec->effective = cpex__iso_rd_u32(r);
    rec->matched = cpex__iso_rd_i32(r);
    rec->applied = cpex__iso_rd_u32(r);
    rec->payload_modified = cpex__iso_rd_u32(r);
    rec->extensions_modified = cpex__iso_rd_u32(r);
    rec->start_unix_ns = cpex__iso_rd_i64(r);
    rec->duration_ns = cpex__iso_rd_i64(r);
    rec->plugin_name = opt(r, "record plugin name");
    rec->plugin_kind = opt(r, "record plugin kind");
    rec->hook = opt(r, "record hook");
    rec->code = opt(r, "record code");
    rec->reason = opt(r, "record reason");
    rec->trace_id = opt(r, "record trace id");
    rec->span_id = opt(r, "record span id");
    uint32_t keys = cpex__iso_rd_count(r, 5, "config keys");
    if (keys > MAX_CONFIG_KEYS) {
        cpex__iso_rd_fail(r, "config keys: %u (at most %u)", keys, MAX_CONFIG_KEYS);
        return;
    }
    if (r->bad || keys == 0)
        return;
    cpex_str *k = cpex__iso_arena_alloc(arena, keys * sizeof *k);
    if (!k) {
        cpex__iso_rd_fail(r, "config keys: out of memory");
        return;
    }
    for (uint32_t i = 0; i < keys && !r->bad; i++)
        k[i] = cpex__iso_rd_str(r, ISO_S_TEXT, "config key");
    rec->config_keys = k;
    rec->config_key_count = keys;
}

bool cpex__iso_rd_verdict(cpex__iso_rd *r, cpex__iso_arena *arena, cpex_verdict *out)
{
    memset(out, 0, sizeof *out);
    out->struct_size = (uint32_t)sizeof *out;
    out->decision = cpex__iso_rd_u32(r);
    out->hook = cpex__iso_rd_str(r, ISO_S_TEXT, "verdict hook");
    out->violation_code = opt(r, "violation code");
    out->violation_reason = opt(r, "violation reason");
    out->violation_description = opt(r, "violation description");
    out->violation_plugin = opt(r, "violation plugin");
    uint8_t has = cpex__iso_rd_u8(r);
    if (has > 1)
        cpex__iso_rd_fail(r, "violation details: presence flag %u", has);
    if (has == 1 && !r->bad) {
        json_t *d = cpex__iso_rd_json(r, "violation details");
        if (d && !json_is_object(d)) {
            json_decref(d);
            cpex__iso_rd_fail(r, "violation details: expected a JSON object");
        } else if (d && !cpex__iso_arena_own(arena, d)) {
            cpex__iso_rd_fail(r, "violation details: out of memory");
        } else {
            out->violation_details = (const cpex_json *)d;
        }
    }
    out->payload_modified = cpex__iso_rd_u32(r);
    out->extensions_modified = cpex__iso_rd_u32(r);
    out->time_unix_ns = cpex__iso_rd_i64(r);
    /* A record takes at least 80 bytes: its ten numbers, seven string
       lengths and its config key count. */
    uint32_t n = cpex__iso_rd_count(r, 8 * 4 + 2 * 8 + 7 * 4 + 4, "records");
    out->record_size = (uint32_t)sizeof(cpex_execution_record);
    if (r->bad)
        return false;
    if (n) {
        cpex_execution_record *recs = cpex__iso_arena_alloc(arena, n * sizeof *recs);
        if (!recs)
            return cpex__iso_rd_fail(r, "records: out of memory");
        for (uint32_t i = 0; i < n && !r->bad; i++)
            rd_record(r, arena, &recs[i]);
        out->records = recs;
        out->record_count = n;
    }
    return !r->bad;
}
