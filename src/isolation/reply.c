/* reply.c — the strict decoders of what a worker says (see reply.h). */
#include "isolation/reply.h"

#include <stdio.h>
#include <string.h>

#include "core/registration.h"
#include "cpex/cmf.h"
#include "cpex/manager.h"
#include "isolation/arena.h"
#include "isolation/proto.h"
#include "isolation/wire.h"
#include "isolation/wire_cmf.h"
#include "util/alloc.h"

/* Bounds beyond which a worker is broken rather than busy. */
#define MAX_LOGS 4096u
#define MAX_WARNINGS 64u
#define MAX_ERRORS 256u

static bool done(cpex__iso_rd *r, char *why, size_t cap)
{
    if (!r->bad && r->pos != r->len)
        cpex__iso_rd_fail(r, "%zu bytes after the end of the reply", r->len - r->pos);
    if (r->bad)
        snprintf(why, cap, "%s", r->why);
    return !r->bad;
}

static const char *text(cpex__iso_rd *r, const char *what)
{
    return cpex__iso_rd_str(r, ISO_S_TEXT, what).ptr;
}
static const char *opt_text(cpex__iso_rd *r, const char *what)
{
    return cpex__iso_rd_str(r, ISO_S_TEXT | ISO_S_OPTIONAL, what).ptr;
}

/* An optional JSON value behind a u8 flag; `object` requires an object. */
static json_t *flagged_json(cpex__iso_rd *r, const char *what, bool object)
{
    uint8_t has = cpex__iso_rd_u8(r);
    if (r->bad || !has)
        return NULL;
    if (has != 1) {
        cpex__iso_rd_fail(r, "%s: presence flag %u", what, has);
        return NULL;
    }
    json_t *v = cpex__iso_rd_json(r, what);
    if (v && object && !json_is_object(v)) {
        json_decref(v);
        cpex__iso_rd_fail(r, "%s: expected a JSON object", what);
        return NULL;
    }
    return v;
}

static uint8_t rd_bool(cpex__iso_rd *r, const char *what)
{
    uint8_t v = cpex__iso_rd_u8(r);
    if (v > 1)
        cpex__iso_rd_fail(r, "%s: %u is not 0 or 1", what, v);
    return v;
}

/* ------------------------------------------------------------------ */
/* CALL replies                                                        */
/* ------------------------------------------------------------------ */

static void op_clear(cpex__iso_op *op)
{
    json_decref(op->json);
    cpex_cmf_free(op->cmf);
    memset(op, 0, sizeof *op);
}

static void rd_op(cpex__iso_rd *r, cpex__iso_op *op)
{
    op->type = cpex__iso_rd_u8(r);
    switch (r->bad ? 0 : op->type) {
    case 0: break;
    case ISO_OP_LOG:
        op->num = cpex__iso_rd_u32(r);
        if (op->num > CPEX_LOG_ERROR)
            cpex__iso_rd_fail(r, "log: level %u", op->num);
        op->a = text(r, "log message");
        break;
    case ISO_OP_DENY:
        op->a = text(r, "deny code");
        op->b = text(r, "deny reason");
        op->c = opt_text(r, "deny description");
        op->json = flagged_json(r, "deny details", true);
        break;
    case ISO_OP_SET_ERROR: op->a = text(r, "error message"); break;
    case ISO_OP_METADATA:
        op->a = text(r, "metadata key");
        op->json = cpex__iso_rd_json(r, "metadata value");
        break;
    case ISO_OP_PAYLOAD_CMF:
        op->num = rd_bool(r, "payload accepted");
        if (op->num && !r->bad) {
            /* The view lives in an arena only until it is cloned: the clone
               is a message of the host's own, as any payload must be. */
            cpex__iso_arena a;
            memset(&a, 0, sizeof a);
            const cpex_cmf_message *view = cpex__iso_rd_cmf(r, &a);
            if (view && !(op->cmf = cpex_cmf_clone(view)))
                cpex__iso_rd_fail(r, "payload: out of memory");
            cpex__iso_arena_free(&a);
        }
        break;
    case ISO_OP_PAYLOAD_JSON:
        op->num = rd_bool(r, "payload accepted");
        if (op->num && !r->bad)
            op->json = cpex__iso_rd_json(r, "JSON payload");
        break;
    case ISO_OP_HEADER:
        op->num = cpex__iso_rd_u32(r);
        if (op->num > CPEX_HEADERS_RESPONSE)
            cpex__iso_rd_fail(r, "header: set %u", op->num);
        op->a = text(r, "header name");
        op->b = text(r, "header value");
        break;
    case ISO_OP_LABEL:
    case ISO_OP_REMOVE_LABEL: op->a = text(r, "label"); break;
    case ISO_OP_CUSTOM:
        op->a = text(r, "custom key");
        op->json = flagged_json(r, "custom value", false);
        break;
    case ISO_OP_CTX_SET:
        op->num = cpex__iso_rd_u32(r);
        if (op->num > CPEX_CTX_GLOBAL)
            cpex__iso_rd_fail(r, "context: scope %u", op->num);
        op->a = text(r, "context key");
        op->json = flagged_json(r, "context value", false);
        break;
    case ISO_OP_LOST: op->num = cpex__iso_rd_u32(r); break;
    default: cpex__iso_rd_fail(r, "unknown request %u of the plugin", op->type); break;
    }
}

bool cpex__iso_call_reply_decode(const void *buf, size_t len, cpex__iso_call_reply *out, char *why,
                                 size_t cap)
{
    memset(out, 0, sizeof *out);
    cpex__iso_rd r;
    cpex__iso_rd_init(&r, buf, len);
    out->status = cpex__iso_rd_u8(&r);
    if (out->status == ISO_REP_BADREQ) {
        out->message = text(&r, "message");
        return done(&r, why, cap);
    }
    if (!r.bad && out->status != ISO_REP_OK)
        cpex__iso_rd_fail(&r, "status %u", out->status);
    out->decision = cpex__iso_rd_i32(&r);
    uint32_t n = cpex__iso_rd_count(&r, 1, "requests");
    if (n > ISO_MAX_OPS)
        cpex__iso_rd_fail(&r, "%u requests (at most %u)", n, ISO_MAX_OPS);
    if (!r.bad && n) {
        out->ops = cpex__calloc(n, sizeof *out->ops);
        if (!out->ops)
            cpex__iso_rd_fail(&r, "out of memory");
    }
    for (uint32_t i = 0; i < n && !r.bad; i++) {
        rd_op(&r, &out->ops[i]);
        out->op_count = i + 1;
    }
    if (done(&r, why, cap))
        return true;
    cpex__iso_call_reply_free(out);
    return false;
}

void cpex__iso_call_reply_free(cpex__iso_call_reply *r)
{
    for (size_t i = 0; i < r->op_count; i++)
        op_clear(&r->ops[i]);
    cpex__free(r->ops);
    memset(r, 0, sizeof *r);
}

/* ------------------------------------------------------------------ */
/* Control replies                                                     */
/* ------------------------------------------------------------------ */

/* A list of `count` items of `size` bytes, each at least `min` bytes on the wire. */
static void *rd_list(cpex__iso_rd *r, size_t *count, size_t size, size_t min, uint32_t max,
                     const char *what)
{
    uint32_t n = cpex__iso_rd_count(r, min, what);
    *count = 0;
    if (n > max) {
        cpex__iso_rd_fail(r, "%s: %u items (at most %u)", what, n, max);
        return NULL;
    }
    if (r->bad || n == 0)
        return NULL;
    void *items = cpex__calloc(n, size);
    if (!items)
        cpex__iso_rd_fail(r, "%s: out of memory", what);
    else
        *count = n;
    return items;
}

static void rd_logs(cpex__iso_rd *r, cpex__iso_ctl_reply *out)
{
    out->logs = rd_list(r, &out->log_count, sizeof *out->logs, 9, MAX_LOGS, "log lines");
    for (size_t i = 0; i < out->log_count && !r->bad; i++) {
        out->logs[i].level = cpex__iso_rd_u32(r);
        if (out->logs[i].level > CPEX_LOG_ERROR)
            cpex__iso_rd_fail(r, "log: level %u", out->logs[i].level);
        out->logs[i].text = text(r, "log line");
    }
}

static void rd_load_ok(cpex__iso_rd *r, cpex__iso_ctl_reply *out)
{
    out->origin = text(r, "origin");
    out->name = opt_text(r, "reported name");
    out->version = opt_text(r, "reported version");
    out->has_initialize = rd_bool(r, "has initialize");
    out->has_shutdown = rd_bool(r, "has shutdown");
    out->has_verdict = rd_bool(r, "has verdict");
    out->handlers =
        rd_list(r, &out->handler_count, sizeof *out->handlers, 9, CPEX__MAX_HANDLERS, "handlers");
    /* As the core's registration check: handlers, or a verdict handler. */
    if (!r->bad && out->handler_count == 0 && !out->has_verdict)
        cpex__iso_rd_fail(r, "no handlers and no verdict handler");
    for (size_t i = 0; i < out->handler_count && !r->bad; i++) {
        out->handlers[i].hook = text(r, "hook");
        out->handlers[i].payload_type = opt_text(r, "payload type");
        if (!r->bad && !out->handlers[i].hook[0])
            cpex__iso_rd_fail(r, "an empty hook name");
    }
    out->sandbox = cpex__iso_rd_u32(r);
    out->protections = text(r, "protections");
    out->warnings =
        rd_list(r, &out->warning_count, sizeof *out->warnings, 5, MAX_WARNINGS, "warnings");
    for (size_t i = 0; i < out->warning_count && !r->bad; i++)
        out->warnings[i] = text(r, "warning");
}

static void rd_load_failed(cpex__iso_rd *r, cpex__iso_ctl_reply *out)
{
    out->errors = rd_list(r, &out->error_count, sizeof *out->errors, 9, MAX_ERRORS, "errors");
    if (!r->bad && out->error_count == 0)
        cpex__iso_rd_fail(r, "a failure without an error");
    if (out->error_count &&
        !(out->error_codes = cpex__calloc(out->error_count, sizeof *out->error_codes))) {
        cpex__iso_rd_fail(r, "errors: out of memory");
        out->error_count = 0;
    }
    for (size_t i = 0; i < out->error_count && !r->bad; i++) {
        int32_t code = cpex__iso_rd_i32(r);
        if (code >= CPEX_OK || code < CPEX_E_TYPE)
            cpex__iso_rd_fail(r, "error code %d", code);
        out->error_codes[i] = (cpex_status)code;
        out->errors[i] = text(r, "error message");
    }
}

bool cpex__iso_ctl_reply_decode(uint8_t req, const void *buf, size_t len, cpex__iso_ctl_reply *out,
                                char *why, size_t cap)
{
    memset(out, 0, sizeof *out);
    cpex__iso_rd r;
    cpex__iso_rd_init(&r, buf, len);
    out->status = cpex__iso_rd_u8(&r);
    if (out->status == ISO_REP_BADREQ) {
        out->message = text(&r, "message");
    } else if (out->status == ISO_REP_OK) {
        if (req == ISO_REQ_LOAD)
            rd_load_ok(&r, out);
    } else if (out->status == ISO_REP_FAILED && (req == ISO_REQ_LOAD || req == ISO_REQ_PREPARE)) {
        rd_load_failed(&r, out);
    } else if (out->status == ISO_REP_FAILED && req == ISO_REQ_INIT) {
        out->message = text(&r, "message");
    } else if (!r.bad) {
        cpex__iso_rd_fail(&r, "status %u to request %u", out->status, req);
    }
    if (!r.bad && out->status != ISO_REP_BADREQ)
        rd_logs(&r, out);
    if (done(&r, why, cap))
        return true;
    cpex__iso_ctl_reply_free(out);
    return false;
}

void cpex__iso_ctl_reply_free(cpex__iso_ctl_reply *r)
{
    cpex__free(r->handlers);
    cpex__free(r->warnings);
    cpex__free(r->error_codes);
    cpex__free((void *)r->errors);
    cpex__free(r->logs);
    memset(r, 0, sizeof *r);
}
