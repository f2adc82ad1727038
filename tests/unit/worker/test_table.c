/*
 * test_table.c — the host table a plugin gets in a worker
 * (src/worker/table.c), in process: its slots answer with the statuses the
 * host's own slots give (capabilities, modes, the model's validation), the
 * requests they write into the reply decode as the host will read them, and
 * a call leaves nothing behind (LeakSanitizer, in `make test-asan`: the
 * worker itself runs without leak checks, see docs/isolation.md).
 */
#include <string.h>

#include <jansson.h>

#include "cpex/cmf.h"
#include "cpex/extensions.h"
#include "cpex/json.h"
#include "isolation/proto.h"
#include "isolation/reply.h"
#include "isolation/wire_ext.h"
#include "model/capabilities.h"
#include "test_support.h"
#include "worker/worker.h"

/* The worker's control log (load.c), which the table calls outside calls. */
static int control_lines;
void wk_log_control(uint32_t level, const char *text)
{
    (void)level;
    (void)text;
    control_lines++;
}

static uint8_t request[1 << 14], reply[1 << 16];

typedef struct fixture {
    wchan c; /* the call is served on a channel (wk_chan_of) */
    cpex__iso_arena arena;
    cpex__iso_wr out;
    const cpex_host_api *h;
    cpex_cmf_message *msg;
} fixture;

/* A call in `mode` with `caps`, extensions with a subject and a header, a
   local context {"n": 1}, and a CMF payload. */
static void begin(fixture *f, uint32_t mode, uint32_t caps)
{
    memset(f, 0, sizeof *f);
    pthread_mutex_init(&f->c.up_lock, NULL);
    f->h = wk_host_table();
    cpex_extensions *e = cpex_extensions_new();
    cpex_extensions_set(e, CPEX_EXT_SUBJECT_ID, "alice");
    cpex_extensions_set_header(e, CPEX_HEADERS_REQUEST, "X-Trace", "t1");
    json_t *local = json_pack("{s:i}", "n", 1);
    cpex__iso_wr w;
    cpex__iso_wr_init(&w, request, sizeof request);
    cpex__iso_wr_ext(&w, e, caps);
    cpex__iso_wr_ctx(&w, local);
    cpex__iso_wr_ctx(&w, NULL);
    json_decref(local);
    cpex_extensions_unref(e);
    cpex__iso_rd r;
    cpex__iso_rd_init(&r, request, w.len);
    r.trusted = true;
    assert_true(cpex__iso_rd_ext(&r, &f->arena, &f->c.call.ext));
    cpex__iso_rd_ctx(&r, &f->c.call.ctx_raw[CPEX_CTX_LOCAL], &f->c.call.ctx_len[CPEX_CTX_LOCAL]);
    cpex__iso_rd_ctx(&r, &f->c.call.ctx_raw[CPEX_CTX_GLOBAL], &f->c.call.ctx_len[CPEX_CTX_GLOBAL]);
    f->msg = cpex_cmf_new(CPEX_ROLE_USER);
    cpex_cmf_append_text(f->msg, CPEX_PART_TEXT, "hi", 2);
    f->c.call.payload = (cpex_payload){sizeof(cpex_payload), CPEX_PAYLOAD_CMF, {"cmf", 3}, f->msg};
    f->c.call.payload_kind = CPEX_PAYLOAD_CMF;
    f->c.call.call.struct_size = (uint32_t)sizeof f->c.call.call;
    f->c.call.call.mode = mode;
    f->c.call.call.payload = &f->c.call.payload;
    f->c.call.caps = caps;
    f->c.call.can_modify = mode == CPEX_MODE_SEQUENTIAL || mode == CPEX_MODE_TRANSFORM;
    cpex__iso_wr_init(&f->out, reply, sizeof reply);
    cpex__iso_wr_u8(&f->out, ISO_REP_OK);
    cpex__iso_wr_i32(&f->out, CPEX_ALLOW);
    cpex__iso_wr_u32(&f->out, 0);
    wk_call_begin(&f->c.call, &f->out);
}

/* End the call and decode its reply as the host would. */
static void end(fixture *f, cpex__iso_call_reply *r)
{
    wk_call_end(&f->c.call);
    memcpy(reply + 5, &f->c.call.ops, 4);
    char why[200] = "";
    if (!cpex__iso_call_reply_decode(reply, f->out.len, r, why, sizeof why))
        fail_msg("the reply does not decode: %s", why);
    assert_int_equal(r->op_count, f->c.call.ops);
    cpex__iso_arena_free(&f->arena);
    cpex_cmf_free(f->msg);
}

static void test_reads_follow_capabilities(void **state)
{
    (void)state;
    fixture f;
    begin(&f, CPEX_MODE_SEQUENTIAL, CPEX_CAP_READ_HEADERS);
    const cpex_call *c = &f.c.call.call;
    cpex_str s;
    assert_int_equal(f.h->ext_get(c, CPEX_EXT_SUBJECT_ID, &s), CPEX_HOST_ENOTFOUND);
    assert_int_equal(f.h->ext_header(c, CPEX_HEADERS_REQUEST, "x-trace", &s), CPEX_HOST_OK);
    assert_string_equal(s.ptr, "t1"); /* names compare without regard to case */
    assert_int_equal(f.h->ext_header_count(c, CPEX_HEADERS_REQUEST), 1);
    assert_int_equal(json_integer_value((const json_t *)f.h->ctx_get(c, CPEX_CTX_LOCAL, "n")), 1);
    assert_null(f.h->ctx_get(c, CPEX_CTX_GLOBAL, "n"));
    assert_int_equal(f.h->ext_get(NULL, CPEX_EXT_SUBJECT_ID, &s), CPEX_HOST_EINVAL);
    cpex__iso_call_reply r;
    end(&f, &r);
    assert_int_equal(r.op_count, 0); /* reading asks nothing of the host */
    cpex__iso_call_reply_free(&r);
}

static void test_writes_predict_the_host(void **state)
{
    (void)state;
    fixture f;
    begin(&f, CPEX_MODE_SEQUENTIAL, CPEX_CAP_WRITE_HEADERS | CPEX_CAP_READ_HEADERS);
    const cpex_call *c = &f.c.call.call;
    const cpex_host_api *h = f.h;
    /* Allowed: done here (reads see it) and sent. */
    assert_int_equal(h->ext_set_header(c, CPEX_HEADERS_RESPONSE, "x-a", "1"), CPEX_HOST_OK);
    cpex_str s;
    assert_int_equal(h->ext_header(c, CPEX_HEADERS_RESPONSE, "X-A", &s), CPEX_HOST_OK);
    /* Refused by a missing capability: EDENIED, and sent so the host records it. */
    assert_int_equal(h->ext_append_label(c, "l"), CPEX_HOST_EDENIED);
    /* Invalid (the model refuses the name): EINVAL, not sent. */
    assert_int_equal(h->ext_set_header(c, CPEX_HEADERS_RESPONSE, "bad name", "1"),
                     CPEX_HOST_EINVAL);
    assert_int_equal(h->ext_remove_label(c, "l"), CPEX_HOST_EDENIED);
    /* Context: written here and sent; a delete too. */
    assert_int_equal(h->ctx_set(c, CPEX_CTX_LOCAL, "n", h->json_new_integer(2)), CPEX_HOST_OK);
    assert_int_equal(json_integer_value((const json_t *)h->ctx_get(c, CPEX_CTX_LOCAL, "n")), 2);
    assert_int_equal(h->ctx_set(c, CPEX_CTX_GLOBAL, "g", NULL), CPEX_HOST_OK);
    /* The payload: accepted in sequential mode; of another kind: EINVAL, sent. */
    assert_int_equal(h->set_payload_cmf(c, h->cmf_clone(f.msg)), CPEX_HOST_OK);
    assert_int_equal(h->set_payload_json(c, h->json_new_null()), CPEX_HOST_EINVAL);
    assert_int_equal(h->deny(c, "code", "re\xffson", NULL, h->json_new_object()), CPEX_HOST_OK);
    assert_int_equal(h->deny(c, "code", "reason", NULL, h->json_new_integer(1)),
                     CPEX_HOST_EINVAL); /* details must be an object */
    assert_int_equal(h->set_metadata(c, "k", h->json_new_string("v", 1)), CPEX_HOST_OK);
    h->log(c, CPEX_LOG_INFO, "a line");
    cpex__iso_call_reply r;
    end(&f, &r);
    static const uint8_t want[] = {ISO_OP_HEADER,       ISO_OP_LABEL,   ISO_OP_REMOVE_LABEL,
                                   ISO_OP_CTX_SET,      ISO_OP_CTX_SET, ISO_OP_PAYLOAD_CMF,
                                   ISO_OP_PAYLOAD_JSON, ISO_OP_DENY,    ISO_OP_METADATA,
                                   ISO_OP_LOG};
    assert_int_equal(r.op_count, sizeof want);
    for (size_t i = 0; i < sizeof want; i++)
        assert_int_equal(r.ops[i].type, want[i]);
    assert_int_equal(r.ops[5].num, 1); /* the CMF payload: accepted */
    assert_non_null(r.ops[5].cmf);
    assert_int_equal(r.ops[6].num, 0);         /* the JSON one: refused */
    assert_string_equal(r.ops[7].b, "re?son"); /* stray bytes became '?' */
    assert_null(r.ops[4].json);                /* the delete */
    cpex__iso_call_reply_free(&r);
}

static void test_audit_mode_refuses_changes(void **state)
{
    (void)state;
    fixture f;
    begin(&f, CPEX_MODE_AUDIT, CPEX_CAP_WRITE_CUSTOM);
    const cpex_call *c = &f.c.call.call;
    assert_int_equal(f.h->ext_set_custom(c, "k", f.h->json_new_integer(1)), CPEX_HOST_EDENIED);
    assert_int_equal(f.h->set_payload_cmf(c, f.h->cmf_clone(f.msg)), CPEX_HOST_EDENIED);
    cpex__iso_call_reply r;
    end(&f, &r);
    assert_int_equal(r.op_count, 2); /* both sent: the host records the refusals */
    assert_int_equal(r.ops[1].num, 0);
    cpex__iso_call_reply_free(&r);
}

static void test_a_full_reply_loses_requests_not_the_call(void **state)
{
    (void)state;
    fixture f;
    begin(&f, CPEX_MODE_SEQUENTIAL, 0);
    f.out.cap = 200; /* a tiny reply area */
    f.c.call.op_cap = f.out.cap - 16;
    int lost = 0;
    for (int i = 0; i < 50; i++)
        if (f.h->set_metadata(&f.c.call.call, "key", f.h->json_new_string("value", 5)) ==
            CPEX_HOST_ENOMEM)
            lost++;
    assert_true(lost > 0);
    cpex__iso_call_reply r;
    end(&f, &r);
    assert_int_equal(r.ops[r.op_count - 1].type, ISO_OP_LOST);
    assert_int_equal(r.ops[r.op_count - 1].num, lost);
    cpex__iso_call_reply_free(&r);
}

static void test_outside_a_call(void **state)
{
    (void)state;
    const cpex_host_api *h = wk_host_table();
    control_lines = 0;
    h->log(NULL, CPEX_LOG_WARN, "from create");
    assert_int_equal(control_lines, 1);
    cpex_call forged;
    memset(&forged, 0, sizeof forged);
    assert_int_equal(h->set_error(&forged, "x"), CPEX_HOST_EINVAL);
    /* JSON and CMF are libcpex's own slots. */
    cpex_json *v = h->json_parse("[1]", 3);
    assert_int_equal(h->json_size(v), 1);
    h->json_free(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reads_follow_capabilities),
        cmocka_unit_test(test_writes_predict_the_host),
        cmocka_unit_test(test_audit_mode_refuses_changes),
        cmocka_unit_test(test_a_full_reply_loses_requests_not_the_call),
        cmocka_unit_test(test_outside_a_call),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
