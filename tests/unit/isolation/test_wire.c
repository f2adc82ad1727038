/*
 * test_wire.c — the transport's encoding (src/isolation/wire*.c, reply.c)
 * without a worker: what the host sends is only what the plugin may read
 * (the secret bytes are not in the request at all), CMF messages and JSON
 * survive the trip, and every reply decoder refuses what a broken or
 * hostile worker could write.
 */
#include <string.h>

#include <jansson.h>

#include "cpex/cmf.h"
#include "cpex/extensions.h"
#include "isolation/arena.h"
#include "isolation/proto.h"
#include "isolation/reply.h"
#include "isolation/wire.h"
#include "isolation/wire_cmf.h"
#include "isolation/wire_ext.h"
#include "model/capabilities.h"
#include "test_support.h"
#include "util/alloc.h"

static uint8_t buf[1 << 16];

/* ------------------------------------------------------------------ */
/* Extensions: filtered before they leave                              */
/* ------------------------------------------------------------------ */

static cpex_extensions *secret_ext(void)
{
    cpex_extensions *e = cpex_extensions_new();
    assert_int_equal(cpex_extensions_set(e, CPEX_EXT_ENTITY_NAME, "get_weather"), CPEX_OK);
    assert_int_equal(cpex_extensions_add(e, CPEX_EXT_TAGS, "public-tag"), CPEX_OK);
    assert_int_equal(cpex_extensions_set(e, CPEX_EXT_SUBJECT_ID, "SECRET-SUBJECT"), CPEX_OK);
    assert_int_equal(cpex_extensions_add(e, CPEX_EXT_ROLES, "SECRET-ROLE"), CPEX_OK);
    assert_int_equal(cpex_extensions_add(e, CPEX_EXT_LABELS, "SECRET-LABEL"), CPEX_OK);
    assert_int_equal(cpex_extensions_set(e, CPEX_EXT_REQUEST_ID, "SECRET-REQUEST"), CPEX_OK);
    assert_int_equal(
        cpex_extensions_set_header(e, CPEX_HEADERS_REQUEST, "authorization", "SECRET-TOKEN"),
        CPEX_OK);
    assert_int_equal(cpex_extensions_set_custom(e, "k", json_string("SECRET-CUSTOM")), CPEX_OK);
    return e;
}

static void test_hidden_fields_never_leave(void **state)
{
    (void)state;
    cpex_extensions *e = secret_ext();
    cpex__iso_wr w;
    cpex__iso_wr_init(&w, buf, sizeof buf);
    cpex__iso_wr_ext(&w, e, 0); /* no capabilities */
    assert_false(w.over);
    assert_null(memmem(buf, w.len, "SECRET", 6));
    assert_non_null(memmem(buf, w.len, "get_weather", 11));
    assert_non_null(memmem(buf, w.len, "public-tag", 10));

    cpex__iso_rd r;
    cpex__iso_arena a = {0};
    cpex__iso_ext_view v;
    cpex__iso_rd_init(&r, buf, w.len);
    assert_true(cpex__iso_rd_ext(&r, &a, &v));
    assert_int_equal(r.pos, w.len);
    assert_string_equal(v.single[cpex__iso_ext_single_index(CPEX_EXT_ENTITY_NAME)].ptr,
                        "get_weather");
    assert_null(v.single[cpex__iso_ext_single_index(CPEX_EXT_SUBJECT_ID)].ptr);
    assert_int_equal(v.list[cpex__iso_ext_list_index(CPEX_EXT_ROLES)].count, 0);
    assert_int_equal(v.headers[CPEX_HEADERS_REQUEST].count, 0);
    assert_null(v.custom);
    cpex__iso_arena_free(&a);
    cpex_extensions_unref(e);
}

static void test_granted_fields_arrive(void **state)
{
    (void)state;
    cpex_extensions *e = secret_ext();
    uint32_t caps = CPEX_CAP_READ_SUBJECT | CPEX_CAP_READ_ROLES | CPEX_CAP_READ_LABELS |
                    CPEX_CAP_READ_HEADERS | CPEX_CAP_READ_REQUEST | CPEX_CAP_READ_CUSTOM;
    cpex__iso_wr w;
    cpex__iso_wr_init(&w, buf, sizeof buf);
    cpex__iso_wr_ext(&w, e, caps);
    cpex__iso_rd r;
    cpex__iso_arena a = {0};
    cpex__iso_ext_view v;
    cpex__iso_rd_init(&r, buf, w.len);
    assert_true(cpex__iso_rd_ext(&r, &a, &v));
    assert_string_equal(v.single[cpex__iso_ext_single_index(CPEX_EXT_SUBJECT_ID)].ptr,
                        "SECRET-SUBJECT");
    assert_string_equal(v.list[cpex__iso_ext_list_index(CPEX_EXT_ROLES)].items[0].ptr,
                        "SECRET-ROLE");
    assert_string_equal(v.headers[CPEX_HEADERS_REQUEST].values[0].ptr, "SECRET-TOKEN");
    assert_non_null(v.custom);
    /* The worker's copy, made on a write, holds the same. */
    cpex__iso_rd cr;
    cpex__iso_rd_init(&cr, v.custom, v.custom_len);
    json_t *custom = cpex__iso_rd_json(&cr, "custom");
    cpex_extensions *copy = cpex__iso_ext_materialize(&v, custom);
    assert_non_null(copy);
    assert_int_equal(cpex_extensions_equal(copy, e), 1);
    cpex_extensions_unref(copy);
    json_decref(custom);
    cpex__iso_arena_free(&a);
    cpex_extensions_unref(e);
}

/* ------------------------------------------------------------------ */
/* CMF and JSON                                                        */
/* ------------------------------------------------------------------ */

static const char every_kind[] =
    "{\"role\":\"assistant\",\"channel\":\"final\",\"content\":["
    "{\"content_type\":\"text\",\"text\":\"h\\u00e9llo\"},"
    "{\"content_type\":\"thinking\",\"text\":\"hmm\"},"
    "{\"content_type\":\"tool_call\",\"content\":{\"tool_call_id\":\"1\",\"name\":\"t\","
    "\"arguments\":{\"a\":[1,2.5,null,true,{\"b\":\"c\"}]},\"namespace\":\"ns\"}},"
    "{\"content_type\":\"tool_result\",\"content\":{\"tool_call_id\":\"1\",\"tool_name\":\"t\","
    "\"content\":[\"x\"],\"is_error\":true}},"
    "{\"content_type\":\"resource\",\"content\":{\"resource_request_id\":\"r\",\"uri\":\"u\","
    "\"resource_type\":\"blob\",\"blob\":[0,1,255],\"size_bytes\":3,\"annotations\":{\"k\":1}}},"
    "{\"content_type\":\"resource_ref\",\"content\":{\"resource_request_id\":\"r\",\"uri\":\"u\","
    "\"range_start\":1,\"range_end\":9}},"
    "{\"content_type\":\"prompt_request\",\"content\":{\"prompt_request_id\":\"p\",\"name\":\"n\","
    "\"arguments\":{}}},"
    "{\"content_type\":\"prompt_result\",\"content\":{\"prompt_request_id\":\"p\","
    "\"prompt_name\":\"n\",\"messages\":[{\"role\":\"user\",\"content\":[{\"content_type\":"
    "\"text\",\"text\":\"inner\"}]}]}},"
    "{\"content_type\":\"image\",\"content\":{\"type\":\"url\",\"data\":\"http://x\"}},"
    "{\"content_type\":\"document\",\"content\":{\"type\":\"base64\",\"data\":\"QQ==\","
    "\"title\":\"T\"}}]}";

static void test_cmf_round_trip(void **state)
{
    (void)state;
    cpex_error err = CPEX_ERROR_INIT;
    cpex_cmf_message *m = cpex_cmf_parse(every_kind, strlen(every_kind), &err);
    if (!m)
        fail_msg("%s", cpex_error_message(&err));
    cpex__iso_wr w;
    cpex__iso_wr_init(&w, buf, sizeof buf);
    cpex__iso_wr_cmf(&w, m);
    assert_false(w.over);
    cpex__iso_rd r;
    cpex__iso_arena a = {0};
    cpex__iso_rd_init(&r, buf, w.len);
    const cpex_cmf_message *view = cpex__iso_rd_cmf(&r, &a);
    if (!view)
        fail_msg("%s", r.why);
    assert_int_equal(r.pos, w.len);
    assert_int_equal(cpex_cmf_equal(view, m), 1);
    cpex_cmf_message *copy = cpex_cmf_clone(view); /* what the host makes of a reply */
    cpex__iso_arena_free(&a);
    assert_int_equal(cpex_cmf_equal(copy, m), 1);
    cpex_cmf_free(copy);
    cpex_cmf_free(m);
}

/* Read `len` bytes as a message: the reader must stop with `why` in its reason. */
static void cmf_refused(const uint8_t *bytes, size_t len, const char *why)
{
    cpex__iso_rd r;
    cpex__iso_arena a = {0};
    cpex__iso_rd_init(&r, bytes, len);
    assert_null(cpex__iso_rd_cmf(&r, &a));
    assert_true(r.bad);
    assert_contains(r.why, why);
    cpex__iso_arena_free(&a);
}

static void test_cmf_refusals(void **state)
{
    (void)state;
    cpex_cmf_message *m = cpex_cmf_new(CPEX_ROLE_USER);
    assert_int_equal(cpex_cmf_append_text(m, CPEX_PART_TEXT, "ok", 2), CPEX_OK);
    cpex__iso_wr w;
    cpex__iso_wr_init(&w, buf, sizeof buf);
    cpex__iso_wr_cmf(&w, m);
    cpex_cmf_free(m);
    uint8_t b[256];
    size_t n = w.len;
    /* role u32 | str "2.0" (4+3+1) | opt channel absent (4) | count (4) | kind (4) | str */
    memcpy(b, buf, n);
    b[0] = 9;
    cmf_refused(b, n, "role 9");
    memcpy(b, buf, n);
    b[20] = 77; /* the part kind */
    cmf_refused(b, n, "part kind 77");
    memcpy(b, buf, n);
    b[28] = 0xff; /* the text: 'o' -> a byte that is not UTF-8 */
    cmf_refused(b, n, "not UTF-8");
    memcpy(b, buf, n);
    b[16] = 0xff, b[17] = 0xff, b[18] = 0xff, b[19] = 0x0f; /* part count */
    cmf_refused(b, n, "cannot fit");
    cmf_refused(buf, n - 1, "past the end");
    memcpy(b, buf, n);
    b[n - 1] = 'x'; /* the last NUL */
    cmf_refused(b, n, "not NUL-terminated");
}

static void test_json_refusals(void **state)
{
    (void)state;
    /* Deeper than the limit. */
    uint8_t deep[400];
    size_t n = 0;
    for (int i = 0; i < 70; i++) {
        deep[n++] = ISO_J_ARRAY;
        uint32_t one = 1;
        memcpy(deep + n, &one, 4);
        n += 4;
        if (n > sizeof deep - 10)
            break;
    }
    deep[n++] = ISO_J_NULL;
    cpex__iso_rd r;
    cpex__iso_rd_init(&r, deep, n);
    assert_null(cpex__iso_rd_json(&r, "v"));
    assert_contains(r.why, "deeper than");
    /* A duplicate key; a number that is not finite; an unknown tag. */
    const uint8_t dup[] = {ISO_J_OBJECT, 2, 0, 0, 0, 1,   0, 0,         0, 'a', 0,
                           ISO_J_NULL,   1, 0, 0, 0, 'a', 0, ISO_J_TRUE};
    cpex__iso_rd_init(&r, dup, sizeof dup);
    assert_null(cpex__iso_rd_json(&r, "v"));
    assert_contains(r.why, "duplicate");
    uint8_t inf[9] = {ISO_J_REAL};
    double d = 1e308 * 10;
    memcpy(inf + 1, &d, 8);
    cpex__iso_rd_init(&r, inf, sizeof inf);
    assert_null(cpex__iso_rd_json(&r, "v"));
    assert_contains(r.why, "not finite");
    const uint8_t tag[] = {42};
    cpex__iso_rd_init(&r, tag, 1);
    assert_null(cpex__iso_rd_json(&r, "v"));
    assert_contains(r.why, "unknown JSON tag");
    /* A round trip. */
    json_t *v = json_pack("{s:[i,f,b,n,s],s:{}}", "a", 1, 2.5, 1, "x", "o");
    cpex__iso_wr w;
    cpex__iso_wr_init(&w, buf, sizeof buf);
    cpex__iso_wr_json(&w, v);
    cpex__iso_rd_init(&r, buf, w.len);
    json_t *back = cpex__iso_rd_json(&r, "v");
    assert_true(json_equal(v, back));
    json_decref(v);
    json_decref(back);
}

static void test_text_fix(void **state)
{
    (void)state;
    const char bad[] = "ok\xff\xc3x";
    char *fixed = cpex__iso_text_fix(bad, strlen(bad));
    assert_string_equal(fixed, "ok?"
                               "?x"); /* two strings: no trigraph */
    cpex__free(fixed);
    const char *good = "h\xc3\xa9";
    assert_ptr_equal(cpex__iso_text_fix(good, strlen(good)), good);
}

/* ------------------------------------------------------------------ */
/* Replies                                                             */
/* ------------------------------------------------------------------ */

/* A CALL reply: status, decision, then the ops `fill` writes. */
static size_t call_reply(void (*fill)(cpex__iso_wr *), uint32_t ops)
{
    cpex__iso_wr w;
    cpex__iso_wr_init(&w, buf, sizeof buf);
    cpex__iso_wr_u8(&w, ISO_REP_OK);
    cpex__iso_wr_i32(&w, CPEX_DENY);
    cpex__iso_wr_u32(&w, ops);
    if (fill)
        fill(&w);
    assert_false(w.over);
    return w.len;
}

static void every_op(cpex__iso_wr *w)
{
    cpex__iso_wr_u8(w, ISO_OP_LOG);
    cpex__iso_wr_u32(w, CPEX_LOG_WARN);
    cpex__iso_wr_cstr(w, "line");
    cpex__iso_wr_u8(w, ISO_OP_DENY);
    cpex__iso_wr_cstr(w, "code");
    cpex__iso_wr_cstr(w, "reason");
    cpex__iso_wr_cstr(w, NULL);
    cpex__iso_wr_u8(w, 1);
    json_t *d = json_pack("{s:i}", "n", 1);
    cpex__iso_wr_json(w, d);
    json_decref(d);
    cpex__iso_wr_u8(w, ISO_OP_HEADER);
    cpex__iso_wr_u32(w, CPEX_HEADERS_RESPONSE);
    cpex__iso_wr_cstr(w, "x-a");
    cpex__iso_wr_cstr(w, "1");
    cpex__iso_wr_u8(w, ISO_OP_CTX_SET);
    cpex__iso_wr_u32(w, CPEX_CTX_LOCAL);
    cpex__iso_wr_cstr(w, "k");
    cpex__iso_wr_u8(w, 0);
    cpex__iso_wr_u8(w, ISO_OP_PAYLOAD_CMF);
    cpex__iso_wr_u8(w, 1);
    cpex_cmf_message *m = cpex_cmf_new(CPEX_ROLE_TOOL);
    cpex_cmf_append_text(m, CPEX_PART_TEXT, "new", 3);
    cpex__iso_wr_cmf(w, m);
    cpex_cmf_free(m);
    cpex__iso_wr_u8(w, ISO_OP_LOST);
    cpex__iso_wr_u32(w, 3);
}

static void test_call_reply_accepted(void **state)
{
    (void)state;
    size_t n = call_reply(every_op, 6);
    cpex__iso_call_reply r;
    char why[200];
    if (!cpex__iso_call_reply_decode(buf, n, &r, why, sizeof why))
        fail_msg("%s", why);
    assert_int_equal(r.decision, CPEX_DENY);
    assert_int_equal(r.op_count, 6);
    assert_string_equal(r.ops[1].b, "reason");
    assert_null(r.ops[1].c);
    assert_int_equal(json_integer_value(json_object_get(r.ops[1].json, "n")), 1);
    assert_null(r.ops[3].json); /* a delete */
    assert_string_equal(r.ops[4].cmf->parts[0].text.ptr, "new");
    assert_int_equal(r.ops[5].num, 3);
    cpex__iso_call_reply_free(&r);
}

/* The reply of `n` bytes in buf, with byte `at` set to `v`, is refused saying `want`. */
static void call_refused(size_t n, size_t at, uint8_t v, const char *want)
{
    uint8_t saved = buf[at];
    if (at < n)
        buf[at] = v;
    cpex__iso_call_reply r;
    char why[200] = "";
    assert_false(cpex__iso_call_reply_decode(buf, n, &r, why, sizeof why));
    assert_contains(why, want);
    buf[at] = saved;
}

static void bad_details(cpex__iso_wr *w)
{
    cpex__iso_wr_u8(w, ISO_OP_DENY);
    cpex__iso_wr_cstr(w, "c");
    cpex__iso_wr_cstr(w, "r");
    cpex__iso_wr_cstr(w, NULL);
    cpex__iso_wr_u8(w, 1);
    cpex__iso_wr_u8(w, ISO_J_TRUE); /* details must be an object */
}

static void test_call_reply_refusals(void **state)
{
    (void)state;
    size_t n = call_reply(every_op, 6);
    call_refused(n + 1, n, 0, "after the end"); /* a byte too many */
    call_refused(n - 1, 0, ISO_REP_OK, "");     /* cut short */
    call_refused(n, 0, 0x77, "status 119");
    call_refused(n, 9, 0xee, "unknown request 238"); /* the first op */
    call_refused(n, 10, 9, "log: level 9");
    n = call_reply(every_op, 7); /* says 7, holds 6 */
    call_refused(n, 0, ISO_REP_OK, "cut short");
    n = call_reply(NULL, 0x7fffffff);
    call_refused(n, 0, ISO_REP_OK, "cannot fit");
    n = call_reply(bad_details, 1);
    call_refused(n, 0, ISO_REP_OK, "expected a JSON object");
}

/* A LOAD reply of a plugin with `handlers` handlers and, with `verdict`, a
   verdict handler. Returns its length. */
static size_t load_reply(uint32_t handlers, uint8_t verdict)
{
    cpex__iso_wr w;
    cpex__iso_wr_init(&w, buf, sizeof buf);
    cpex__iso_wr_u8(&w, ISO_REP_OK);
    cpex__iso_wr_cstr(&w, "/lib/p.so");
    cpex__iso_wr_cstr(&w, "p");
    cpex__iso_wr_cstr(&w, NULL);
    cpex__iso_wr_u8(&w, 1);
    cpex__iso_wr_u8(&w, 0);
    cpex__iso_wr_u8(&w, verdict);
    cpex__iso_wr_u32(&w, handlers);
    for (uint32_t i = 0; i < handlers; i++) {
        cpex__iso_wr_cstr(&w, "cmf.tool_pre_invoke");
        cpex__iso_wr_cstr(&w, "cmf");
    }
    cpex__iso_wr_u32(&w, ISO_SB_SECCOMP);
    cpex__iso_wr_cstr(&w, "seccomp");
    cpex__iso_wr_u32(&w, 0);
    cpex__iso_wr_u32(&w, 0);
    return w.len;
}

static void test_load_reply(void **state)
{
    (void)state;
    cpex__iso_ctl_reply r;
    char why[200] = "";
    size_t n = load_reply(1, 0);
    if (!cpex__iso_ctl_reply_decode(ISO_REQ_LOAD, buf, n, &r, why, sizeof why))
        fail_msg("%s", why);
    assert_string_equal(r.handlers[0].hook, "cmf.tool_pre_invoke");
    assert_null(r.version);
    assert_true(r.has_initialize);
    assert_false(r.has_verdict);
    cpex__iso_ctl_reply_free(&r);
    /* An audit sink: a verdict handler, with or without handlers. */
    n = load_reply(0, 1);
    if (!cpex__iso_ctl_reply_decode(ISO_REQ_LOAD, buf, n, &r, why, sizeof why))
        fail_msg("%s", why);
    assert_true(r.has_verdict);
    assert_int_equal(r.handler_count, 0);
    cpex__iso_ctl_reply_free(&r);
    n = load_reply(1, 1);
    assert_true(cpex__iso_ctl_reply_decode(ISO_REQ_LOAD, buf, n, &r, why, sizeof why));
    assert_true(r.has_verdict && r.handler_count == 1);
    cpex__iso_ctl_reply_free(&r);
    /* Neither: nothing to call. A flag that is not 0 or 1. */
    n = load_reply(0, 0);
    assert_false(cpex__iso_ctl_reply_decode(ISO_REQ_LOAD, buf, n, &r, why, sizeof why));
    assert_contains(why, "no handlers and no verdict handler");
    n = load_reply(1, 2);
    assert_false(cpex__iso_ctl_reply_decode(ISO_REQ_LOAD, buf, n, &r, why, sizeof why));
    assert_contains(why, "has verdict: 2 is not 0 or 1");
    /* An error code that is no status. */
    cpex__iso_wr w;
    cpex__iso_wr_init(&w, buf, sizeof buf);
    cpex__iso_wr_u8(&w, ISO_REP_FAILED);
    cpex__iso_wr_u32(&w, 1);
    cpex__iso_wr_i32(&w, -99);
    cpex__iso_wr_cstr(&w, "no");
    cpex__iso_wr_u32(&w, 0);
    assert_false(cpex__iso_ctl_reply_decode(ISO_REQ_LOAD, buf, w.len, &r, why, sizeof why));
    assert_contains(why, "error code -99");
    int32_t ok_code =
        CPEX_OK; /* a failure must say which: success is no error (found by fuzzing) */
    memcpy(buf + 5, &ok_code, 4);
    assert_false(cpex__iso_ctl_reply_decode(ISO_REQ_PREPARE, buf, w.len, &r, why, sizeof why));
    assert_contains(why, "error code 0");
    /* A status a request cannot have. */
    buf[0] = ISO_REP_FAILED;
    assert_false(cpex__iso_ctl_reply_decode(ISO_REQ_SHUTDOWN, buf, 1, &r, why, sizeof why));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hidden_fields_never_leave),
        cmocka_unit_test(test_granted_fields_arrive),
        cmocka_unit_test(test_cmf_round_trip),
        cmocka_unit_test(test_cmf_refusals),
        cmocka_unit_test(test_json_refusals),
        cmocka_unit_test(test_text_fix),
        cmocka_unit_test(test_call_reply_accepted),
        cmocka_unit_test(test_call_reply_refusals),
        cmocka_unit_test(test_load_reply),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
