/*
 * fuzz_reply.c — the host's decoders of what a worker process says
 * (src/isolation/reply.c): a worker runs a plugin that may have taken it
 * over, so every byte of its replies is hostile input.
 *
 * The first byte picks the decoder: 0 a CALL reply (a VERDICT's reply to an
 * audit sink's verdict is the same shape), 1-6 the reply to that control
 * request (LOAD, INIT, SHUTDOWN, DESTROY, CALL, PREPARE); the rest is the
 * reply. Checked on an accepted reply: every string it hands the host is
 * UTF-8 without NUL, within the reply's bytes; the op count is bounded; a
 * deny's details are an object; an accepted CMF payload is a message the
 * host owns (cloned: freed with cpex_cmf_free, compared with itself); a
 * LOAD reply names at least one handler or has a verdict handler (an audit
 * sink: corpus load_sink). A refusal must come with a reason. LeakSanitizer
 * checks that both paths free everything.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "cpex/cmf.h"
#include "fuzz_common.h"
#include "isolation/proto.h"
#include "isolation/reply.h"
#include "isolation/wire.h"

static const uint8_t *lo, *hi;

static void check_text(const char *s)
{
    if (!s)
        return;
    size_t n = strlen(s);
    CHECK((const uint8_t *)s >= lo && (const uint8_t *)s + n < hi);
    CHECK(cpex__iso_text_ok(s, n));
}

static void check_call(const cpex__iso_call_reply *r)
{
    CHECK(r->op_count <= ISO_MAX_OPS);
    check_text(r->message);
    for (size_t i = 0; i < r->op_count; i++) {
        const cpex__iso_op *op = &r->ops[i];
        check_text(op->a);
        check_text(op->b);
        check_text(op->c);
        if (op->type == ISO_OP_DENY) {
            CHECK(op->a && op->b);
            CHECK(!op->json || json_is_object(op->json));
        }
        if (op->type == ISO_OP_PAYLOAD_CMF && op->num)
            CHECK(op->cmf && cpex_cmf_equal(op->cmf, op->cmf));
        if (op->type == ISO_OP_LOG)
            CHECK(op->num <= CPEX_LOG_ERROR && op->a);
    }
}

static void check_ctl(uint8_t req, const cpex__iso_ctl_reply *r)
{
    check_text(r->origin);
    check_text(r->name);
    check_text(r->version);
    check_text(r->protections);
    check_text(r->message);
    if (req == ISO_REQ_LOAD && r->status == ISO_REP_OK)
        CHECK((r->handler_count >= 1 || r->has_verdict) && r->origin && r->protections);
    for (size_t i = 0; i < r->handler_count; i++) {
        CHECK(r->handlers[i].hook && r->handlers[i].hook[0]);
        check_text(r->handlers[i].hook);
        check_text(r->handlers[i].payload_type);
    }
    for (size_t i = 0; i < r->warning_count; i++)
        check_text(r->warnings[i]);
    for (size_t i = 0; i < r->error_count; i++) {
        check_text(r->errors[i]);
        CHECK(r->error_codes[i] < CPEX_OK);
    }
    for (size_t i = 0; i < r->log_count; i++) {
        check_text(r->logs[i].text);
        CHECK(r->logs[i].level <= CPEX_LOG_ERROR);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t which = data[0] % 7;
    lo = data + 1;
    hi = data + size;
    char why[200] = "";
    if (which == 0) {
        cpex__iso_call_reply r;
        if (cpex__iso_call_reply_decode(data + 1, size - 1, &r, why, sizeof why)) {
            check_call(&r);
            cpex__iso_call_reply_free(&r);
        } else {
            CHECK(why[0]);
        }
        return 0;
    }
    cpex__iso_ctl_reply r;
    if (cpex__iso_ctl_reply_decode(which, data + 1, size - 1, &r, why, sizeof why)) {
        check_ctl(which, &r);
        cpex__iso_ctl_reply_free(&r);
    } else {
        CHECK(why[0]);
    }
    return 0;
}
