/* wire_cmf.c — CMF messages on the transport (see wire_cmf.h). */
#include "isolation/wire_cmf.h"

#include <string.h>

#include "model/cmf_internal.h"
#include "util/names.h"

/* ------------------------------------------------------------------ */
/* Writing                                                             */
/* ------------------------------------------------------------------ */

/* A required string: a view from a hostile source could hold NULL. */
static void wr_req(cpex__iso_wr *w, cpex_str s)
{
    cpex__iso_wr_strn(w, s.ptr ? s.ptr : "", s.ptr ? s.len : 0);
}

static void wr_message(cpex__iso_wr *w, const cpex_cmf_message *m, int depth);

static void wr_body(cpex__iso_wr *w, uint32_t kind, const void *body, int depth)
{
    switch (kind) {
    case CPEX_PART_TOOL_CALL: {
        const cpex_cmf_tool_call *b = body;
        wr_req(w, b->tool_call_id);
        wr_req(w, b->name);
        cpex__iso_wr_json(w, (const json_t *)b->arguments);
        cpex__iso_wr_opt(w, b->namespace_);
        break;
    }
    case CPEX_PART_TOOL_RESULT: {
        const cpex_cmf_tool_result *b = body;
        cpex__iso_wr_u32(w, b->is_error);
        wr_req(w, b->tool_call_id);
        wr_req(w, b->tool_name);
        cpex__iso_wr_json(w, (const json_t *)b->content);
        break;
    }
    case CPEX_PART_RESOURCE: {
        const cpex_cmf_resource *b = body;
        cpex__iso_wr_u32(w, b->resource_type);
        wr_req(w, b->resource_request_id);
        wr_req(w, b->uri);
        cpex__iso_wr_opt(w, b->name);
        cpex__iso_wr_opt(w, b->description);
        cpex__iso_wr_opt(w, b->content);
        cpex__iso_wr_opt(w, b->blob);
        cpex__iso_wr_opt(w, b->mime_type);
        cpex__iso_wr_i64(w, b->size_bytes);
        cpex__iso_wr_json(w, (const json_t *)b->annotations);
        cpex__iso_wr_opt(w, b->version);
        break;
    }
    case CPEX_PART_RESOURCE_REF: {
        const cpex_cmf_resource_ref *b = body;
        cpex__iso_wr_u32(w, b->resource_type);
        wr_req(w, b->resource_request_id);
        wr_req(w, b->uri);
        cpex__iso_wr_opt(w, b->name);
        cpex__iso_wr_i64(w, b->range_start);
        cpex__iso_wr_i64(w, b->range_end);
        cpex__iso_wr_opt(w, b->selector);
        break;
    }
    case CPEX_PART_PROMPT_REQUEST: {
        const cpex_cmf_prompt_request *b = body;
        wr_req(w, b->prompt_request_id);
        wr_req(w, b->name);
        cpex__iso_wr_json(w, (const json_t *)b->arguments);
        cpex__iso_wr_opt(w, b->server_id);
        break;
    }
    case CPEX_PART_PROMPT_RESULT: {
        const cpex_cmf_prompt_result *b = body;
        cpex__iso_wr_u32(w, b->is_error);
        wr_req(w, b->prompt_request_id);
        wr_req(w, b->prompt_name);
        cpex__iso_wr_u32(w, (uint32_t)b->message_count);
        for (size_t i = 0; i < b->message_count && !w->over; i++)
            wr_message(w, b->messages[i], depth + 1);
        cpex__iso_wr_opt(w, b->content);
        cpex__iso_wr_opt(w, b->error_message);
        break;
    }
    default: { /* the four media kinds */
        const cpex_cmf_media *b = body;
        wr_req(w, b->type);
        wr_req(w, b->data);
        cpex__iso_wr_opt(w, b->media_type);
        cpex__iso_wr_i64(w, b->duration_ms);
        cpex__iso_wr_opt(w, b->title);
        break;
    }
    }
}

static void wr_message(cpex__iso_wr *w, const cpex_cmf_message *m, int depth)
{
    if (!m || depth > CMF_MAX_DEPTH || m->part_count > UINT32_MAX) {
        w->over = true;
        return;
    }
    cpex__iso_wr_u32(w, m->role);
    if (m->schema_version.ptr)
        cpex__iso_wr_strn(w, m->schema_version.ptr, m->schema_version.len);
    else
        cpex__iso_wr_strn(w, "2.0", 3);
    cpex__iso_wr_opt(w, m->channel);
    cpex__iso_wr_u32(w, (uint32_t)m->part_count);
    for (size_t i = 0; i < m->part_count && !w->over; i++) {
        const cpex_cmf_part *p = &m->parts[i];
        cpex__iso_wr_u32(w, p->kind);
        if (p->kind == CPEX_PART_TEXT || p->kind == CPEX_PART_THINKING)
            wr_req(w, p->text);
        else if (p->kind < CPEX_PART_KIND_COUNT && p->body)
            wr_body(w, p->kind, p->body, depth);
        else
            w->over = true; /* not a message libcpex could have built */
    }
}

void cpex__iso_wr_cmf(cpex__iso_wr *w, const cpex_cmf_message *message)
{
    wr_message(w, message, 1);
}

/* ------------------------------------------------------------------ */
/* Reading                                                             */
/* ------------------------------------------------------------------ */

typedef struct rd_ctx {
    cpex__iso_rd *r;
    cpex__iso_arena *a;
} rd_ctx;

static void *alloc(rd_ctx *c, size_t size)
{
    void *p = c->r->bad ? NULL : cpex__iso_arena_alloc(c->a, size);
    if (!p && !c->r->bad)
        cpex__iso_rd_fail(c->r, "message: out of memory");
    return p;
}

/* A JSON value owned by the arena; `object` requires an object. */
static const cpex_json *rd_json_owned(rd_ctx *c, const char *what, bool object)
{
    json_t *v = cpex__iso_rd_json(c->r, what);
    if (!v)
        return NULL;
    if (!cpex__iso_arena_own(c->a, v)) {
        cpex__iso_rd_fail(c->r, "%s: out of memory", what);
        return NULL;
    }
    if (object && !json_is_object(v)) {
        cpex__iso_rd_fail(c->r, "%s: expected a JSON object", what);
        return NULL;
    }
    return (const cpex_json *)v;
}

static int64_t rd_count64(rd_ctx *c, const char *what)
{
    int64_t v = cpex__iso_rd_i64(c->r);
    if (v < -1)
        cpex__iso_rd_fail(c->r, "%s: %lld is neither -1 (absent) nor a count", what, (long long)v);
    return v;
}

static uint32_t rd_flag(rd_ctx *c, const char *what)
{
    uint32_t v = cpex__iso_rd_u32(c->r);
    if (v > 1)
        cpex__iso_rd_fail(c->r, "%s: %u is not 0 or 1", what, v);
    return v;
}

static uint32_t rd_resource_type(rd_ctx *c)
{
    uint32_t v = cpex__iso_rd_u32(c->r);
    if (v >= CMF_RESOURCE_TYPE_COUNT)
        cpex__iso_rd_fail(c->r, "resource_type %u is not one of the %u types", v,
                          CMF_RESOURCE_TYPE_COUNT);
    return v;
}

#define TXT(what) cpex__iso_rd_str(c->r, ISO_S_TEXT, what)
#define OPT(what) cpex__iso_rd_str(c->r, ISO_S_TEXT | ISO_S_OPTIONAL, what)

static const cpex_cmf_message *rd_message(rd_ctx *c, int depth);

static const void *rd_body(rd_ctx *c, uint32_t kind, int depth)
{
    switch (kind) {
    case CPEX_PART_TOOL_CALL: {
        cpex_cmf_tool_call *b = alloc(c, sizeof *b);
        if (!b)
            return NULL;
        b->struct_size = (uint32_t)sizeof *b;
        b->tool_call_id = TXT("tool_call.tool_call_id");
        b->name = TXT("tool_call.name");
        b->arguments = rd_json_owned(c, "tool_call.arguments", true);
        b->namespace_ = OPT("tool_call.namespace");
        return b;
    }
    case CPEX_PART_TOOL_RESULT: {
        cpex_cmf_tool_result *b = alloc(c, sizeof *b);
        if (!b)
            return NULL;
        b->struct_size = (uint32_t)sizeof *b;
        b->is_error = rd_flag(c, "tool_result.is_error");
        b->tool_call_id = TXT("tool_result.tool_call_id");
        b->tool_name = TXT("tool_result.tool_name");
        b->content = rd_json_owned(c, "tool_result.content", false);
        return b;
    }
    case CPEX_PART_RESOURCE: {
        cpex_cmf_resource *b = alloc(c, sizeof *b);
        if (!b)
            return NULL;
        b->struct_size = (uint32_t)sizeof *b;
        b->resource_type = rd_resource_type(c);
        b->resource_request_id = TXT("resource.resource_request_id");
        b->uri = TXT("resource.uri");
        b->name = OPT("resource.name");
        b->description = OPT("resource.description");
        b->content = OPT("resource.content");
        b->blob = cpex__iso_rd_str(c->r, ISO_S_BYTES | ISO_S_OPTIONAL, "resource.blob");
        b->mime_type = OPT("resource.mime_type");
        b->size_bytes = rd_count64(c, "resource.size_bytes");
        b->annotations = rd_json_owned(c, "resource.annotations", true);
        b->version = OPT("resource.version");
        return b;
    }
    case CPEX_PART_RESOURCE_REF: {
        cpex_cmf_resource_ref *b = alloc(c, sizeof *b);
        if (!b)
            return NULL;
        b->struct_size = (uint32_t)sizeof *b;
        b->resource_type = rd_resource_type(c);
        b->resource_request_id = TXT("resource_ref.resource_request_id");
        b->uri = TXT("resource_ref.uri");
        b->name = OPT("resource_ref.name");
        b->range_start = rd_count64(c, "resource_ref.range_start");
        b->range_end = rd_count64(c, "resource_ref.range_end");
        b->selector = OPT("resource_ref.selector");
        return b;
    }
    case CPEX_PART_PROMPT_REQUEST: {
        cpex_cmf_prompt_request *b = alloc(c, sizeof *b);
        if (!b)
            return NULL;
        b->struct_size = (uint32_t)sizeof *b;
        b->prompt_request_id = TXT("prompt_request.prompt_request_id");
        b->name = TXT("prompt_request.name");
        b->arguments = rd_json_owned(c, "prompt_request.arguments", true);
        b->server_id = OPT("prompt_request.server_id");
        return b;
    }
    case CPEX_PART_PROMPT_RESULT: {
        cpex_cmf_prompt_result *b = alloc(c, sizeof *b);
        if (!b)
            return NULL;
        b->struct_size = (uint32_t)sizeof *b;
        b->is_error = rd_flag(c, "prompt_result.is_error");
        b->prompt_request_id = TXT("prompt_result.prompt_request_id");
        b->prompt_name = TXT("prompt_result.prompt_name");
        uint32_t n = cpex__iso_rd_count(c->r, 16, "prompt_result.messages");
        const cpex_cmf_message **msgs = n ? alloc(c, n * sizeof *msgs) : NULL;
        for (uint32_t i = 0; i < n && msgs && !c->r->bad; i++)
            msgs[i] = rd_message(c, depth + 1);
        b->message_count = c->r->bad ? 0 : n;
        b->messages = (const cpex_cmf_message *const *)msgs;
        b->content = OPT("prompt_result.content");
        b->error_message = OPT("prompt_result.error_message");
        return b;
    }
    default: {
        cpex_cmf_media *b = alloc(c, sizeof *b);
        if (!b)
            return NULL;
        b->struct_size = (uint32_t)sizeof *b;
        b->type = TXT("media.type");
        b->data = TXT("media.data");
        b->media_type = OPT("media.media_type");
        b->duration_ms = rd_count64(c, "media.duration_ms");
        b->title = OPT("media.title");
        return b;
    }
    }
}

static const cpex_cmf_message *rd_message(rd_ctx *c, int depth)
{
    if (depth > CMF_MAX_DEPTH) {
        cpex__iso_rd_fail(c->r, "message: prompt_result messages nested deeper than %d",
                          CMF_MAX_DEPTH);
        return NULL;
    }
    cpex_cmf_message *m = alloc(c, sizeof *m);
    if (!m)
        return NULL;
    m->struct_size = (uint32_t)sizeof *m;
    m->role = cpex__iso_rd_u32(c->r);
    if (m->role >= CMF_ROLE_COUNT)
        cpex__iso_rd_fail(c->r, "message: role %u is not one of the %u roles", m->role,
                          CMF_ROLE_COUNT);
    m->schema_version = TXT("message.schema_version");
    m->channel = OPT("message.channel");
    if (m->channel.ptr && cpex__names_find(cpex__cmf_channel_names, CMF_CHANNEL_COUNT,
                                           m->channel.ptr, m->channel.len) < 0)
        cpex__iso_rd_fail(c->r, "message: channel is not analysis, commentary or final");
    uint32_t n = cpex__iso_rd_count(c->r, 8, "message.parts");
    cpex_cmf_part *parts = n ? alloc(c, n * sizeof *parts) : NULL;
    for (uint32_t i = 0; i < n && parts && !c->r->bad; i++) {
        cpex_cmf_part *p = &parts[i];
        p->struct_size = (uint32_t)sizeof *p;
        p->kind = cpex__iso_rd_u32(c->r);
        if (c->r->bad)
            break;
        if (p->kind >= CPEX_PART_KIND_COUNT) {
            cpex__iso_rd_fail(c->r, "message: part kind %u is not one of the %u kinds", p->kind,
                              CPEX_PART_KIND_COUNT);
            break;
        }
        if (p->kind == CPEX_PART_TEXT || p->kind == CPEX_PART_THINKING)
            p->text = TXT("part.text");
        else
            p->body = rd_body(c, p->kind, depth);
    }
    if (c->r->bad)
        return NULL;
    m->part_count = n;
    m->parts = parts;
    return m;
}

const cpex_cmf_message *cpex__iso_rd_cmf(cpex__iso_rd *r, cpex__iso_arena *arena)
{
    rd_ctx c = {r, arena};
    return rd_message(&c, 1);
}
