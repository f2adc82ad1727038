/*
 * test_records.c — execution records on the pipeline result: one per
 * handler call, in execution order, with every field, in every phase and
 * outcome (the reference's Rust and Python record tests, ported, plus the
 * cases where libcpex decides: timeouts, not initialized, cancelled,
 * not started), off by default, filled only for a result large enough.
 */
#include "test_support.h"
#include "plugins.h"

#include "core/observe.h"
#include "util/alloc.h"

#define HOOK "cmf.tool_pre_invoke"

TP_FIXTURE;

/* A manager with execution records on (and `workers` worker threads). */
static cpex_manager *rec_manager(uint32_t workers)
{
    cpex_manager_options o;
    cpex_manager_options_init(&o);
    o.execution_records = true;
    o.worker_threads = workers;
    return tp_manager_with(&o);
}

static const cpex_execution_record *rec_at(const cpex_pipeline_result *r, size_t i)
{
    const cpex_execution_record *x = cpex_pipeline_result_execution(r, i);
    if (!x) {
        tp_print_result(r);
        fail_msg("no execution record #%zu (there are %zu)", i, r->execution_count);
    }
    return x;
}

static void assert_str(cpex_str s, const char *want)
{
    if (!want) {
        assert_null(s.ptr);
        return;
    }
    assert_non_null(s.ptr);
    assert_int_equal(s.len, strlen(want));
    assert_string_equal(s.ptr, want);
}

#define assert_count(res_, n_)                                                                     \
    do {                                                                                           \
        if ((res_)->execution_count != (n_)) {                                                     \
            tp_print_result(res_);                                                                 \
            fail_msg("expected %zu execution records, got %zu", (size_t)(n_),                      \
                     (res_)->execution_count);                                                     \
        }                                                                                          \
    } while (0)

/* ------------------------------------------------------------------ */
/* Serial phases                                                       */
/* ------------------------------------------------------------------ */

static void test_allow_record(void **state)
{
    (void)state;
    cpex_manager *m = rec_manager(2);
    tp_plugin *a = tp_new("allow", &trace);
    a->config = "{\"policy_file\":\"secret.rego\",\"timeout\":3}";
    tp_start(m, a);
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    tp_run(m, HOOK, &res);
    assert_allowed(&res);
    assert_count(&res, 1);
    assert_int_equal(res.execution_size, sizeof(cpex_execution_record));
    const cpex_execution_record *r = rec_at(&res, 0);
    assert_int_equal(r->struct_size, sizeof *r);
    assert_str(r->plugin_name, "allow");
    assert_str(r->plugin_kind, "test");
    assert_str(r->hook, HOOK);
    assert_int_equal(r->mode, CPEX_MODE_SEQUENTIAL);
    assert_int_equal(r->status, CPEX_EXEC_COMPLETED);
    assert_int_equal(r->requested, CPEX_ALLOW);
    assert_int_equal(r->effective, CPEX_ALLOW);
    assert_int_equal(r->matched, 0);
    assert_int_equal(r->applied, 0);
    assert_int_equal(r->payload_modified, 0);
    assert_int_equal(r->extensions_modified, 0);
    assert_null(r->code.ptr);
    assert_null(r->reason.ptr);
    assert_true(r->duration_ns >= 0);
    assert_true(r->start_unix_ns > 1600000000LL * 1000000000LL); /* after 2020: wall clock */
    /* Names of the config keys, never their values. */
    assert_int_equal(r->config_key_count, 2);
    assert_str(r->config_keys[0], "policy_file");
    assert_str(r->config_keys[1], "timeout");
    json_t *j = cpex_execution_record_to_json(r);
    char *text = json_dumps(j, JSON_SORT_KEYS);
    assert_true(strstr(text, "secret.rego") == NULL);
    assert_contains(text, "\"config_keys\": [\"policy_file\", \"timeout\"]");
    assert_contains(text, "\"status\": \"completed\"");
    assert_contains(text, "\"requested_allow\": true");
    free(text);
    json_decref(j);
    tp_finish(m, &res);
}

static void test_deny_sequential(void **state)
{
    (void)state;
    cpex_manager *m = rec_manager(2);
    tp_plugin *d = tp_denying(tp_new("pii-guard", &trace), "test_deny", "test denied");
    tp_start(m, d);
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    tp_run(m, HOOK, &res);
    assert_denied(&res, "test_deny", "pii-guard");
    assert_count(&res, 1);
    const cpex_execution_record *r = rec_at(&res, 0);
    assert_int_equal(r->status, CPEX_EXEC_COMPLETED);
    assert_int_equal(r->requested, CPEX_DENY);
    assert_int_equal(r->effective, CPEX_DENY);
    assert_int_equal(r->matched, 1);
    assert_int_equal(r->applied, 1);
    assert_str(r->code, "test_deny");
    assert_str(r->reason, "test denied");
    tp_finish(m, &res);
}

static void test_deny_without_violation_halts(void **state)
{
    (void)state;
    cpex_manager *m = rec_manager(2);
    tp_plugin *d = tp_denying(tp_new("quiet", &trace), NULL, NULL);
    tp_start(m, d);
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    tp_run(m, HOOK, &res);
    assert_denied(&res, "plugin_deny", "quiet");
    const cpex_execution_record *r = rec_at(&res, 0);
    assert_int_equal(r->effective, CPEX_DENY);
    assert_int_equal(r->applied, 1);
    assert_str(r->code, "plugin_deny");
    assert_non_null(r->reason.ptr);
    tp_finish(m, &res);
}

static void test_deny_stops_subsequent(void **state)
{
    (void)state;
    cpex_manager *m = rec_manager(2);
    tp_plugin *a = tp_new_in("first", &trace, CPEX_MODE_SEQUENTIAL, 1);
    tp_plugin *d = tp_denying(tp_new_in("denier", &trace, CPEX_MODE_SEQUENTIAL, 2), "no", "no");
    tp_plugin *b = tp_new_in("after", &trace, CPEX_MODE_SEQUENTIAL, 3);
    tp_plugin *t = tp_new_in("transform", &trace, CPEX_MODE_TRANSFORM, 1);
    tp_start(m, a, d, b, t);
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    tp_run(m, HOOK, &res);
    assert_count(&res, 2);
    assert_str(rec_at(&res, 0)->plugin_name, "first");
    assert_str(rec_at(&res, 1)->plugin_name, "denier");
    tp_finish(m, &res);
}

static void test_multiple_allows_keep_order(void **state)
{
    (void)state;
    cpex_manager *m = rec_manager(2);
    tp_plugin *s = tp_new_in("second", &trace, CPEX_MODE_SEQUENTIAL, 2);
    tp_plugin *f = tp_new_in("first", &trace, CPEX_MODE_SEQUENTIAL, 1);
    tp_plugin *t = tp_new_in("third", &trace, CPEX_MODE_TRANSFORM, 0);
    tp_plugin *au = tp_new_in("fourth", &trace, CPEX_MODE_AUDIT, 0);
    tp_plugin *c = tp_new_in("fifth", &trace, CPEX_MODE_CONCURRENT, 0);
    tp_start(m, s, f, t, au, c);
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    tp_run(m, HOOK, &res);
    assert_count(&res, 5);
    const char *order[] = {"first", "second", "third", "fourth", "fifth"};
    const uint32_t modes[] = {CPEX_MODE_SEQUENTIAL, CPEX_MODE_SEQUENTIAL, CPEX_MODE_TRANSFORM,
                              CPEX_MODE_AUDIT, CPEX_MODE_CONCURRENT};
    for (size_t i = 0; i < 5; i++) {
        assert_str(rec_at(&res, i)->plugin_name, order[i]);
        assert_int_equal(rec_at(&res, i)->mode, modes[i]);
        assert_int_equal(rec_at(&res, i)->effective, CPEX_ALLOW);
    }
    tp_finish(m, &res);
}

static void test_transform_record(void **state)
{
    (void)state;
    cpex_manager *m = rec_manager(2);
    tp_plugin *t = tp_new_in("redact", &trace, CPEX_MODE_TRANSFORM, 1);
    t->append_text = "+r";
    tp_plugin *h = tp_new_in("header", &trace, CPEX_MODE_TRANSFORM, 2);
    h->caps[0] = "write_headers";
    h->set_header_name = "x-a";
    h->set_header_value = "1";
    tp_plugin *dd = tp_denying(tp_new_in("t-deny", &trace, CPEX_MODE_TRANSFORM, 3), "tx", "why");
    tp_start(m, t, h, dd);
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    cpex_extensions *ext = cpex_extensions_new();
    tp_invoke_text(m, HOOK, "hello", ext, NULL, &res);
    assert_allowed(&res);
    assert_count(&res, 3);
    const cpex_execution_record *r = rec_at(&res, 0);
    assert_int_equal(r->payload_modified, 1);
    assert_int_equal(r->extensions_modified, 0);
    assert_int_equal(r->applied, 1);
    assert_int_equal(r->matched, 1);
    r = rec_at(&res, 1);
    assert_int_equal(r->payload_modified, 0);
    assert_int_equal(r->extensions_modified, 1);
    assert_int_equal(r->applied, 1);
    /* A transform deny is dropped: asked for, not in effect. */
    r = rec_at(&res, 2);
    assert_int_equal(r->requested, CPEX_DENY);
    assert_int_equal(r->effective, CPEX_ALLOW);
    assert_int_equal(r->matched, 1);
    assert_int_equal(r->applied, 0);
    assert_str(r->code, "tx");
    assert_str(r->reason, "why");
    cpex_extensions_unref(ext);
    tp_finish(m, &res);
}

static void test_audit_record(void **state)
{
    (void)state;
    cpex_manager *m = rec_manager(2);
    tp_plugin *a = tp_new_in("watch", &trace, CPEX_MODE_AUDIT, 1);
    a->append_text = "+x"; /* refused: audit cannot modify */
    tp_plugin *d = tp_denying(tp_new_in("watch-deny", &trace, CPEX_MODE_AUDIT, 2), "a", "b");
    tp_start(m, a, d);
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    tp_run(m, HOOK, &res);
    assert_allowed(&res);
    const cpex_execution_record *r = rec_at(&res, 0);
    assert_int_equal(r->status, CPEX_EXEC_COMPLETED);
    assert_int_equal(r->payload_modified, 0);
    assert_int_equal(r->applied, 0);
    assert_int_equal(r->matched, 0);
    r = rec_at(&res, 1);
    assert_int_equal(r->requested, CPEX_DENY); /* what it returned (Python's rule) */
    assert_int_equal(r->effective, CPEX_ALLOW);
    assert_int_equal(r->applied, 0);
    tp_finish(m, &res);
}

static void test_error_ignore_and_fail(void **state)
{
    (void)state;
    cpex_manager *m = rec_manager(2);
    tp_plugin *e = tp_failing(tp_new_in("soft", &trace, CPEX_MODE_SEQUENTIAL, 1),
                              CPEX_ON_ERROR_IGNORE, "it broke");
    tp_plugin *f = tp_failing(tp_new_in("hard", &trace, CPEX_MODE_SEQUENTIAL, 2),
                              CPEX_ON_ERROR_FAIL, "really broke");
    tp_start(m, e, f);
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    tp_run(m, HOOK, &res);
    assert_denied(&res, "plugin_error", "hard");
    assert_count(&res, 2);
    const cpex_execution_record *r = rec_at(&res, 0);
    assert_int_equal(r->status, CPEX_EXEC_ERROR);
    assert_int_equal(r->requested, -1);
    assert_int_equal(r->matched, -1);
    assert_int_equal(r->effective, CPEX_ALLOW);
    assert_int_equal(r->applied, 0);
    assert_str(r->code, "error");
    assert_str(r->reason, "it broke");
    r = rec_at(&res, 1);
    assert_int_equal(r->status, CPEX_EXEC_ERROR);
    assert_int_equal(r->effective, CPEX_DENY);
    assert_int_equal(r->applied, 1);
    assert_str(r->code, "plugin_error");
    assert_contains(r->reason.ptr, "really broke");
    json_t *j = cpex_execution_record_to_json(r);
    assert_null(json_object_get(j, "requested_allow")); /* no result: left out */
    assert_null(json_object_get(j, "matched"));
    assert_string_equal(json_string_value(json_object_get(j, "status")), "error");
    json_decref(j);
    tp_finish(m, &res);
}

static void test_timeouts_recorded_as_timeout(void **state)
{
    (void)state;
    cpex_manager *m = rec_manager(2);
    tp_plugin *s = tp_new_in("slow-soft", &trace, CPEX_MODE_SEQUENTIAL, 1);
    s->timeout = 0.02;
    s->on_error = CPEX_ON_ERROR_IGNORE;
    s->sleep_ms = 60;
    tp_plugin *h = tp_new_in("slow-hard", &trace, CPEX_MODE_SEQUENTIAL, 2);
    h->timeout = 0.02;
    h->on_error = CPEX_ON_ERROR_FAIL;
    h->sleep_ms = 60;
    tp_start(m, s, h);
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    tp_run(m, HOOK, &res);
    assert_denied(&res, "plugin_timeout", "slow-hard");
    assert_count(&res, 2);
    const cpex_execution_record *r = rec_at(&res, 0);
    assert_int_equal(r->status, CPEX_EXEC_TIMEOUT);
    assert_str(r->code, "timeout");
    assert_int_equal(r->effective, CPEX_ALLOW);
    assert_true(r->duration_ns >= 40000000); /* it slept 60 ms */
    r = rec_at(&res, 1);
    /* on_error fail: still a timeout (not an error as Python has it) */
    assert_int_equal(r->status, CPEX_EXEC_TIMEOUT);
    assert_int_equal(r->effective, CPEX_DENY);
    assert_str(r->code, "plugin_timeout");
    tp_finish(m, &res);
}

static void test_duration_measured(void **state)
{
    (void)state;
    cpex_manager *m = rec_manager(2);
    tp_plugin *s = tp_new("sleeper", &trace);
    s->sleep_ms = 2;
    tp_start(m, s);
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    tp_run(m, HOOK, &res);
    const cpex_execution_record *r = rec_at(&res, 0);
    assert_true(r->duration_ns >= 1000000);
    assert_true(r->duration_ns < 10LL * 1000000000); /* generous: a loaded machine */
    tp_finish(m, &res);
}

static void test_not_initialized(void **state)
{
    (void)state;
    cpex_manager *m = rec_manager(2);
    tp_plugin *f = tp_new("broken", &trace);
    f->init_rc = 1;
    f->init_msg = "no database";
    f->on_error = CPEX_ON_ERROR_IGNORE;
    tp_reg(m, f);
    assert_int_not_equal(cpex_manager_initialize(m, NULL), CPEX_OK);
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    tp_run(m, HOOK, &res);
    assert_allowed(&res);
    const cpex_execution_record *r = rec_at(&res, 0);
    assert_int_equal(r->status, CPEX_EXEC_NOT_INITIALIZED);
    assert_str(r->code, "not_initialized");
    assert_contains(r->reason.ptr, "no database");
    assert_int_equal(r->duration_ns, 0);
    assert_int_equal(r->start_unix_ns, 0);
    assert_int_equal(tp_calls(f), 0);
    tp_finish(m, &res);
}

static void test_disabled_plugin_gets_no_record(void **state)
{
    (void)state;
    cpex_manager *m = rec_manager(2);
    tp_plugin *f = tp_failing(tp_new_in("flaky", &trace, CPEX_MODE_SEQUENTIAL, 1),
                              CPEX_ON_ERROR_DISABLE, "flake");
    tp_plugin *a = tp_new_in("steady", &trace, CPEX_MODE_SEQUENTIAL, 2);
    tp_start(m, f, a);
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    tp_run(m, HOOK, &res);
    assert_count(&res, 2);
    assert_int_equal(rec_at(&res, 0)->status, CPEX_EXEC_ERROR);
    assert_int_equal(rec_at(&res, 0)->mode, CPEX_MODE_SEQUENTIAL); /* configured mode */
    cpex_pipeline_result_cleanup(&res);
    tp_run(m, HOOK, &res);
    assert_count(&res, 1); /* not dispatched any more */
    assert_str(rec_at(&res, 0)->plugin_name, "steady");
    tp_finish(m, &res);
}

/* ------------------------------------------------------------------ */
/* Worker-thread phases                                                */
/* ------------------------------------------------------------------ */

static void test_concurrent_allow_and_deny(void **state)
{
    (void)state;
    cpex_manager *m = rec_manager(2);
    tp_plugin *a = tp_new_in("c-allow", &trace, CPEX_MODE_CONCURRENT, 1);
    a->sleep_ms = 2;
    tp_plugin *d =
        tp_denying(tp_new_in("c-deny", &trace, CPEX_MODE_CONCURRENT, 2), "test_deny", "nope");
    tp_start(m, a, d);
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    tp_run(m, HOOK, &res);
    assert_denied(&res, "test_deny", "c-deny");
    assert_count(&res, 2);
    const cpex_execution_record *r = rec_at(&res, 0);
    assert_str(r->plugin_name, "c-allow");
    assert_int_equal(r->status, CPEX_EXEC_COMPLETED);
    assert_int_equal(r->effective, CPEX_ALLOW);
    assert_int_equal(r->matched, 0);        /* Python's rule: a clean allow did not match */
    assert_true(r->duration_ns >= 1000000); /* measured on the worker */
    r = rec_at(&res, 1);
    assert_int_equal(r->requested, CPEX_DENY);
    assert_int_equal(r->effective, CPEX_DENY);
    assert_int_equal(r->applied, 1);
    assert_str(r->code, "test_deny");
    tp_finish(m, &res);
}

static void test_concurrent_short_circuit_cancelled(void **state)
{
    (void)state;
    cpex_manager *m = rec_manager(2);
    tp_plugin *d = tp_denying(tp_new_in("fast-deny", &trace, CPEX_MODE_CONCURRENT, 1), "x", "y");
    tp_plugin *s = tp_new_in("slow", &trace, CPEX_MODE_CONCURRENT, 2);
    s->sleep_ms = 400;
    tp_start(m, d, s);
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    tp_run(m, HOOK, &res);
    assert_denied(&res, "x", "fast-deny");
    assert_count(&res, 2);
    assert_int_equal(rec_at(&res, 0)->effective, CPEX_DENY);
    const cpex_execution_record *r = rec_at(&res, 1);
    assert_str(r->plugin_name, "slow");
    assert_int_equal(r->status, CPEX_EXEC_CANCELLED);
    assert_int_equal(r->requested, -1);
    assert_int_equal(r->effective, CPEX_ALLOW);
    assert_int_equal(r->applied, 0);
    assert_string_equal(cpex_exec_status_name(r->status), "cancelled");
    cpex_pipeline_result_cleanup(&res);
    assert_int_equal(cpex_manager_wait_background(m, 30), CPEX_OK);
    tp_finish(m, &res);
}

static void test_concurrent_timeout_ignore_and_disable_keep_mode(void **state)
{
    (void)state;
    cpex_manager *m = rec_manager(2);
    tp_plugin *s = tp_new_in("c-slow", &trace, CPEX_MODE_CONCURRENT, 1);
    s->timeout = 0.05;
    s->on_error = CPEX_ON_ERROR_IGNORE;
    s->sleep_ms = 300;
    tp_plugin *e = tp_failing(tp_new_in("c-flaky", &trace, CPEX_MODE_CONCURRENT, 2),
                              CPEX_ON_ERROR_DISABLE, "boom");
    tp_start(m, s, e);
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    tp_run(m, HOOK, &res);
    assert_allowed(&res);
    assert_count(&res, 2);
    const cpex_execution_record *r = rec_at(&res, 0);
    assert_int_equal(r->status, CPEX_EXEC_TIMEOUT);
    assert_int_equal(r->effective, CPEX_ALLOW);
    assert_true(r->duration_ns >= 30000000);
    r = rec_at(&res, 1);
    assert_int_equal(r->status, CPEX_EXEC_ERROR);
    assert_int_equal(r->mode, CPEX_MODE_CONCURRENT);
    assert_str(r->reason, "boom");
    cpex_pipeline_result_cleanup(&res);
    assert_int_equal(cpex_manager_wait_background(m, 30), CPEX_OK);
    tp_finish(m, &res);
}

static void test_concurrent_not_started(void **state)
{
    (void)state;
    /* One worker, held by a hung handler of another invoke... simpler: a
     * pool of one thread busy with a slow fire-and-forget call while the
     * concurrent call's deadline passes. */
    cpex_manager_options o;
    cpex_manager_options_init(&o);
    o.execution_records = true;
    o.worker_threads = 1;
    o.max_worker_threads = 1;
    cpex_manager *m = tp_manager_with(&o);
    tp_plugin *busy = tp_new_in("busy", &trace, CPEX_MODE_FIRE_AND_FORGET, 1);
    busy->sleep_ms = 300;
    busy->hooks[0] = "other.hook";
    tp_plugin *c = tp_new_in("late", &trace, CPEX_MODE_CONCURRENT, 1);
    c->timeout = 0.05;
    c->on_error = CPEX_ON_ERROR_IGNORE;
    tp_start(m, busy, c);
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    tp_run(m, "other.hook", &res);
    cpex_pipeline_result_cleanup(&res);
    tp_sleep_ms(20); /* the worker is inside "busy" now */
    tp_run(m, HOOK, &res);
    assert_allowed(&res);
    assert_count(&res, 1);
    const cpex_execution_record *r = rec_at(&res, 0);
    assert_int_equal(r->status, CPEX_EXEC_NOT_STARTED);
    assert_str(r->code, "not_started");
    assert_int_equal(r->duration_ns, 0);
    cpex_pipeline_result_cleanup(&res);
    assert_int_equal(cpex_manager_wait_background(m, 30), CPEX_OK);
    tp_finish(m, &res);
}

static void test_fire_and_forget_not_in_result(void **state)
{
    (void)state;
    cpex_manager *m = rec_manager(2);
    tp_plugin *s = tp_new_in("seq", &trace, CPEX_MODE_SEQUENTIAL, 1);
    tp_plugin *f = tp_new_in("bg", &trace, CPEX_MODE_FIRE_AND_FORGET, 1);
    tp_start(m, s, f);
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    tp_run(m, HOOK, &res);
    assert_count(&res, 1); /* it ends after the invoke: sinks and metrics see it */
    assert_str(rec_at(&res, 0)->plugin_name, "seq");
    cpex_pipeline_result_cleanup(&res);
    assert_int_equal(cpex_manager_wait_background(m, 30), CPEX_OK);
    assert_int_equal(tp_calls(f), 1);
    tp_finish(m, &res);
}

/* ------------------------------------------------------------------ */
/* Switches, sizes, bounds                                             */
/* ------------------------------------------------------------------ */

static void test_off_by_default(void **state)
{
    (void)state;
    cpex_manager *m = tp_manager();
    tp_start(m, tp_new("a", &trace));
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    tp_run(m, HOOK, &res);
    assert_int_equal(res.execution_count, 0);
    assert_null(res.executions);
    json_t *j = cpex_pipeline_result_to_json(&res);
    assert_null(json_object_get(j, "executions"));
    json_decref(j);
    tp_finish(m, &res);
}

static void test_setting_turns_records_on(void **state)
{
    (void)state;
    cpex_manager *m = tp_manager();
    static const char yaml[] = "plugin_settings:\n  execution_records: true\nplugins: []\n";
    cpex_error err = CPEX_ERROR_INIT;
    assert_int_equal(cpex_manager_load_string(m, yaml, sizeof yaml - 1, NULL, NULL, &err), CPEX_OK);
    tp_start(m, tp_new("a", &trace));
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    tp_run(m, HOOK, &res);
    assert_count(&res, 1);
    cpex_pipeline_result_cleanup(&res);
    static const char off[] = "plugin_settings:\n  execution_records: false\n";
    assert_int_equal(cpex_manager_load_string(m, off, sizeof off - 1, NULL, NULL, &err), CPEX_OK);
    tp_run(m, HOOK, &res);
    assert_int_equal(res.execution_count, 0);
    cpex_error_cleanup(&err);
    tp_finish(m, &res);
}

/* A caller built against the first layout: its struct ends before the
 * records, and nothing past its size is written. */
static void test_short_result_gets_no_records(void **state)
{
    (void)state;
    cpex_manager *m = rec_manager(2);
    tp_start(m, tp_new("a", &trace));
    cpex_pipeline_result res;
    memset(&res, 0x5a, sizeof res);
    cpex_pipeline_result_init(&res);
    res.struct_size = (uint32_t)CPEX_PIPELINE_RESULT_SIZE_V1;
    memset((char *)&res + CPEX_PIPELINE_RESULT_SIZE_V1, 0x5a,
           sizeof res - CPEX_PIPELINE_RESULT_SIZE_V1);
    tp_run(m, HOOK, &res);
    assert_allowed(&res);
    const unsigned char *tail = (const unsigned char *)&res + CPEX_PIPELINE_RESULT_SIZE_V1;
    for (size_t i = 0; i < sizeof res - CPEX_PIPELINE_RESULT_SIZE_V1; i++)
        assert_int_equal(tail[i], 0x5a);
    cpex_pipeline_result_cleanup(&res);
    tp_finish(m, &res);
}

static void test_records_per_invoke_and_trace_ids(void **state)
{
    (void)state;
    cpex_manager *m = rec_manager(2);
    tp_start(m, tp_new("a", &trace));
    cpex_extensions *ext = cpex_extensions_new();
    cpex_extensions_set(ext, CPEX_EXT_TRACE_ID, "4bf92f3577b34da6a3ce929d0e0e4736");
    cpex_extensions_set(ext, CPEX_EXT_SPAN_ID, "00f067aa0ba902b7");
    cpex_pipeline_result r1 = CPEX_PIPELINE_RESULT_INIT, r2 = CPEX_PIPELINE_RESULT_INIT;
    tp_invoke_text(m, HOOK, "one", ext, NULL, &r1);
    tp_invoke_text(m, HOOK, "two", NULL, NULL, &r2);
    assert_ptr_not_equal(r1.executions, r2.executions);
    assert_str(rec_at(&r1, 0)->trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_str(rec_at(&r1, 0)->span_id, "00f067aa0ba902b7");
    assert_null(rec_at(&r2, 0)->trace_id.ptr);
    cpex_pipeline_result_cleanup(&r1);
    assert_str(rec_at(&r2, 0)->plugin_name, "a"); /* independent of r1 */
    cpex_extensions_unref(ext);
    cpex_pipeline_result_cleanup(&r2);
    tp_finish(m, &r1);
}

static void test_text_bounds(void **state)
{
    (void)state;
    char buf[CPEX__REC_MAX_TEXT + 1];
    assert_int_equal(cpex__rec_text_cut(buf, "short"), 5);
    assert_string_equal(buf, "short");
    char ascii[600];
    memset(ascii, 'a', sizeof ascii - 1);
    ascii[sizeof ascii - 1] = '\0';
    size_t n = cpex__rec_text_cut(buf, ascii);
    assert_int_equal(n, 256);
    assert_int_equal(strlen(buf), 256);
    assert_string_equal(buf + 253, "\xE2\x80\xA6");
    /* 2-byte characters: the cut never splits one. */
    char uni[600];
    size_t k = 0;
    uni[k++] = 'x'; /* odd offset so that byte 253 is a continuation byte */
    while (k + 2 < sizeof uni) {
        uni[k++] = '\xC3';
        uni[k++] = '\xA9';
    }
    uni[k] = '\0';
    n = cpex__rec_text_cut(buf, uni);
    assert_true(n <= 256);
    assert_string_equal(buf + n - 3, "\xE2\x80\xA6");
    assert_int_not_equal((unsigned char)buf[n - 4] & 0xC0, 0xC0); /* no lead byte left alone */
    /* exactly 256 bytes: kept whole */
    ascii[256] = '\0';
    assert_int_equal(cpex__rec_text_cut(buf, ascii), 256);
    assert_int_equal(buf[255], 'a');
}

static void test_long_reason_and_many_keys(void **state)
{
    (void)state;
    cpex_manager *m = rec_manager(2);
    static char reason[1000];
    memset(reason, 'r', sizeof reason - 1);
    static char config[100 * 16];
    size_t pos = (size_t)snprintf(config, sizeof config, "{");
    for (int i = 0; i < 80; i++)
        pos += (size_t)snprintf(config + pos, sizeof config - pos, "%s\"k%02d\":%d", i ? "," : "",
                                i, i);
    snprintf(config + pos, sizeof config - pos, "}");
    tp_plugin *d = tp_denying(tp_new("verbose", &trace), "long", reason);
    d->config = config;
    tp_start(m, d);
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    tp_run(m, HOOK, &res);
    const cpex_execution_record *r = rec_at(&res, 0);
    assert_int_equal(r->reason.len, 256);
    assert_int_equal(r->config_key_count, 64);
    assert_str(r->config_keys[0], "k00");
    assert_str(r->config_keys[63], "k63");
    tp_finish(m, &res);
}

/* On: one allocation per invoke for the records (the all-allow path
 * otherwise allocates nothing). */
static void test_one_allocation_per_invoke(void **state)
{
    (void)state;
    cpex_manager *m = rec_manager(2);
    tp_plugin *ps[5];
    for (int i = 0; i < 5; i++) {
        char name[16];
        snprintf(name, sizeof name, "p%d", i);
        ps[i] = tp_new(name, NULL);
    }
    tp_start(m, ps[0], ps[1], ps[2], ps[3], ps[4]);
    cpex_cmf_message *msg = test_text_message("hello");
    cpex_payload pl = cpex_payload_cmf(msg);
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    cpex_manager_invoke(m, HOOK, &pl, NULL, NULL, &res); /* warm up */
    cpex_pipeline_result_cleanup(&res);
    cpex__alloc_count_reset();
    for (int i = 0; i < 100; i++) {
        cpex_manager_invoke(m, HOOK, &pl, NULL, NULL, &res);
        assert_int_equal(res.execution_count, 5);
        cpex_pipeline_result_cleanup(&res);
    }
    assert_int_equal(cpex__alloc_count(), 100);
    cpex_cmf_free(msg);
    tp_finish(m, &res);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TP_TEST(test_allow_record),
        TP_TEST(test_deny_sequential),
        TP_TEST(test_deny_without_violation_halts),
        TP_TEST(test_deny_stops_subsequent),
        TP_TEST(test_multiple_allows_keep_order),
        TP_TEST(test_transform_record),
        TP_TEST(test_audit_record),
        TP_TEST(test_error_ignore_and_fail),
        TP_TEST(test_timeouts_recorded_as_timeout),
        TP_TEST(test_duration_measured),
        TP_TEST(test_not_initialized),
        TP_TEST(test_disabled_plugin_gets_no_record),
        TP_TEST(test_concurrent_allow_and_deny),
        TP_TEST(test_concurrent_short_circuit_cancelled),
        TP_TEST(test_concurrent_timeout_ignore_and_disable_keep_mode),
        TP_TEST(test_concurrent_not_started),
        TP_TEST(test_fire_and_forget_not_in_result),
        TP_TEST(test_off_by_default),
        TP_TEST(test_setting_turns_records_on),
        TP_TEST(test_short_result_gets_no_records),
        TP_TEST(test_records_per_invoke_and_trace_ids),
        TP_TEST(test_text_bounds),
        TP_TEST(test_long_reason_and_many_keys),
        TP_TEST(test_one_allocation_per_invoke),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
