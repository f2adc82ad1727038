/*
 * test_wire_verdict.c — an audit sink's verdict on the transport
 * (src/isolation/wire_verdict.c), without a worker: every field of the
 * verdict and of each execution record survives the trip (absent strings
 * stay absent, records are read with the sender's stride whatever it is),
 * and the reader stops with a reason, leaking nothing, on a request cut
 * short at any byte, an impossible record count or too many config keys.
 */
#include <string.h>

#include <jansson.h>

#include "cpex/json.h"
#include "isolation/arena.h"
#include "isolation/wire.h"
#include "isolation/wire_verdict.h"
#include "test_support.h"

static uint8_t buf[1 << 14];

static cpex_str S(const char *s)
{
    cpex_str out = {s, s ? strlen(s) : 0};
    return out;
}

/* Records as a later minor might lay them out: a longer stride. */
typedef struct wide_record {
    cpex_execution_record r;
    char newer_fields[24];
} wide_record;

static const cpex_str keys[] = {{"allow", 5}, {"limit", 5}};

/* A denied verdict with three records (one of each shape), laid out with
   the stride of `wide_record` when `wide`, else of the record. */
static void make(cpex_verdict *v, wide_record *store, bool wide, json_t *details)
{
    memset(v, 0, sizeof *v);
    memset(store, 0xa5, 3 * sizeof *store); /* the newer fields: not ours to read */
    size_t stride = wide ? sizeof(wide_record) : sizeof(cpex_execution_record);
    cpex_execution_record *r[3];
    for (size_t i = 0; i < 3; i++) {
        r[i] = (cpex_execution_record *)(void *)((char *)store + i * stride);
        memset(r[i], 0, sizeof *r[i]);
        r[i]->struct_size = (uint32_t)sizeof *r[i];
    }
    r[0]->status = CPEX_EXEC_COMPLETED;
    r[0]->mode = CPEX_MODE_SEQUENTIAL;
    r[0]->requested = CPEX_DENY;
    r[0]->effective = CPEX_DENY;
    r[0]->matched = 1;
    r[0]->applied = 1;
    r[0]->start_unix_ns = 1765069395282031104;
    r[0]->duration_ns = 1753;
    r[0]->plugin_name = S("tool-allowlist");
    r[0]->plugin_kind = S("lib:/x/libtool_allowlist.so");
    r[0]->hook = S("cmf.tool_pre_invoke");
    r[0]->code = S("tool_not_allowed");
    r[0]->reason = S("tool 'delete_repo' is not allowed \xe2\x80\xa6");
    r[0]->trace_id = S("t-1");
    r[0]->span_id = S("");
    r[0]->config_keys = keys;
    r[0]->config_key_count = 2;
    r[1]->status = CPEX_EXEC_TIMEOUT;
    r[1]->mode = CPEX_MODE_FIRE_AND_FORGET;
    r[1]->requested = -1;
    r[1]->effective = CPEX_ALLOW;
    r[1]->matched = -1;
    r[1]->payload_modified = 1;
    r[1]->extensions_modified = 1;
    r[1]->duration_ns = -5; /* whatever the host says, as it says it */
    r[1]->plugin_name = S("bg");
    r[1]->hook = S("cmf.tool_pre_invoke"); /* no kind, code, reason, ids, keys */
    r[2]->status = CPEX_EXEC_NOT_STARTED;
    r[2]->plugin_name = S("queued");
    v->struct_size = (uint32_t)sizeof *v;
    v->decision = CPEX_DENY;
    v->hook = S("cmf.tool_pre_invoke");
    v->violation_code = S("tool_not_allowed");
    v->violation_reason = S("not allowed");
    v->violation_plugin = S("tool-allowlist"); /* no description */
    v->violation_details = cpex_json_from_jansson(details);
    v->payload_modified = 1;
    v->time_unix_ns = 1765069395282999999;
    v->record_size = (uint32_t)stride;
    v->record_count = 3;
    v->records = r[0];
}

static void assert_str_eq(cpex_str a, cpex_str b)
{
    if (!a.ptr || !b.ptr) {
        assert_null(a.ptr);
        assert_null(b.ptr);
        return;
    }
    assert_int_equal(a.len, b.len);
    assert_memory_equal(a.ptr, b.ptr, a.len);
    assert_int_equal(a.ptr[a.len], '\0'); /* a plugin may read it as a C string */
}

static void assert_record_eq(const cpex_execution_record *a, const cpex_execution_record *b)
{
    assert_int_equal(a->struct_size, sizeof *a);
    assert_int_equal(a->status, b->status);
    assert_int_equal(a->mode, b->mode);
    assert_int_equal(a->requested, b->requested);
    assert_int_equal(a->effective, b->effective);
    assert_int_equal(a->matched, b->matched);
    assert_int_equal(a->applied, b->applied);
    assert_int_equal(a->payload_modified, b->payload_modified);
    assert_int_equal(a->extensions_modified, b->extensions_modified);
    assert_true(a->start_unix_ns == b->start_unix_ns);
    assert_true(a->duration_ns == b->duration_ns);
    assert_str_eq(a->plugin_name, b->plugin_name);
    assert_str_eq(a->plugin_kind, b->plugin_kind);
    assert_str_eq(a->hook, b->hook);
    assert_str_eq(a->code, b->code);
    assert_str_eq(a->reason, b->reason);
    assert_str_eq(a->trace_id, b->trace_id);
    assert_str_eq(a->span_id, b->span_id);
    assert_int_equal(a->config_key_count, b->config_key_count);
    for (uint32_t k = 0; k < a->config_key_count; k++)
        assert_str_eq(a->config_keys[k], b->config_keys[k]);
}

static size_t encode(const cpex_verdict *v)
{
    cpex__iso_wr w;
    cpex__iso_wr_init(&w, buf, sizeof buf);
    cpex__iso_wr_verdict(&w, v);
    assert_false(w.over);
    return w.len;
}

static void round_trip(bool wide)
{
    json_t *details = json_pack("{s:s,s:[i,i]}", "tool", "delete_repo", "n", 1, 2);
    wide_record store[3];
    cpex_verdict v, got;
    make(&v, store, wide, details);
    size_t n = encode(&v);
    cpex__iso_rd r;
    cpex__iso_rd_init(&r, buf, n);
    r.trusted = true; /* as the worker reads it */
    cpex__iso_arena a = {0};
    if (!cpex__iso_rd_verdict(&r, &a, &got))
        fail_msg("%s", r.why);
    assert_int_equal(r.pos, n); /* nothing left over */
    assert_int_equal(got.struct_size, sizeof got);
    assert_int_equal(got.decision, CPEX_DENY);
    assert_str_eq(got.hook, v.hook);
    assert_str_eq(got.violation_code, v.violation_code);
    assert_str_eq(got.violation_reason, v.violation_reason);
    assert_null(got.violation_description.ptr);
    assert_str_eq(got.violation_plugin, v.violation_plugin);
    assert_true(json_equal(cpex_json_to_jansson_const(got.violation_details), details));
    assert_int_equal(got.payload_modified, 1);
    assert_int_equal(got.extensions_modified, 0);
    assert_true(got.time_unix_ns == v.time_unix_ns);
    assert_null(got.payload); /* the caller's: the call's payload */
    assert_int_equal(got.record_size, sizeof(cpex_execution_record));
    assert_int_equal(got.record_count, 3);
    for (size_t i = 0; i < 3; i++)
        assert_record_eq(cpex_verdict_record(&got, i), cpex_verdict_record(&v, i));
    assert_null(cpex_verdict_record(&got, 3));
    cpex__iso_arena_free(&a);
    json_decref(details);
}

static void test_round_trip(void **state)
{
    (void)state;
    round_trip(false);
    round_trip(true); /* a longer stride is followed, its extra bytes never read */
}

/* An allowed verdict without violation or records. */
static void test_allow_without_records(void **state)
{
    (void)state;
    cpex_verdict v, got;
    memset(&v, 0, sizeof v);
    v.decision = CPEX_ALLOW;
    v.hook = S("doc.check");
    v.record_size = (uint32_t)sizeof(cpex_execution_record);
    size_t n = encode(&v);
    cpex__iso_rd r;
    cpex__iso_rd_init(&r, buf, n);
    cpex__iso_arena a = {0};
    assert_true(cpex__iso_rd_verdict(&r, &a, &got));
    assert_int_equal(got.decision, CPEX_ALLOW);
    assert_null(got.violation_code.ptr);
    assert_null(got.violation_details);
    assert_int_equal(got.record_count, 0);
    assert_null(got.records);
    cpex__iso_arena_free(&a);
}

static void test_refusals(void **state)
{
    (void)state;
    json_t *details = json_pack("{s:i}", "k", 1);
    wide_record store[3];
    cpex_verdict v, got;
    make(&v, store, false, details);
    size_t n = encode(&v);
    cpex__iso_rd r;
    cpex__iso_arena a = {0};
    /* Cut short anywhere: a reason, never a read past the end. */
    for (size_t cut = 0; cut < n; cut++) {
        cpex__iso_rd_init(&r, buf, cut);
        assert_false(cpex__iso_rd_verdict(&r, &a, &got));
        assert_true(r.bad && r.why[0]);
        cpex__iso_arena_reset(&a);
    }
    /* More records than the bytes could hold. */
    cpex_verdict none = v;
    none.record_count = 0;
    n = encode(&none);
    uint32_t huge = 0x7fffffffu;
    memcpy(buf + n - 4, &huge, 4);
    cpex__iso_rd_init(&r, buf, n);
    assert_false(cpex__iso_rd_verdict(&r, &a, &got));
    assert_contains(r.why, "records");
    cpex__iso_arena_reset(&a);
    /* More config keys than a record has (abi.h: at most 64). */
    cpex_str many[65];
    for (size_t i = 0; i < 65; i++)
        many[i] = S("k");
    cpex_execution_record *r0 = (cpex_execution_record *)(void *)store;
    r0->config_keys = many;
    r0->config_key_count = 65;
    n = encode(&v);
    cpex__iso_rd_init(&r, buf, n);
    assert_false(cpex__iso_rd_verdict(&r, &a, &got));
    assert_contains(r.why, "config keys: 65");
    cpex__iso_arena_reset(&a);
    /* Details that are not an object; a presence flag that is no flag. */
    r0->config_key_count = 0;
    json_t *arr = json_array();
    v.violation_details = cpex_json_from_jansson(arr);
    n = encode(&v);
    cpex__iso_rd_init(&r, buf, n);
    assert_false(cpex__iso_rd_verdict(&r, &a, &got));
    assert_contains(r.why, "expected a JSON object");
    cpex__iso_arena_reset(&a);
    v.violation_details = NULL;
    n = encode(&v);
    size_t flag = 4 + (5 + strlen("cmf.tool_pre_invoke")) + (5 + 16) + (5 + 11) + 4 + (5 + 14);
    assert_int_equal(buf[flag], 0);
    buf[flag] = 2;
    cpex__iso_rd_init(&r, buf, n);
    assert_false(cpex__iso_rd_verdict(&r, &a, &got));
    assert_contains(r.why, "presence flag 2");
    cpex__iso_arena_free(&a);
    json_decref(arr);
    json_decref(details);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_allow_without_records),
        cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
