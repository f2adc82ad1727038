/*
 * test_isolation.c — a plugin in a worker process (isolation: process)
 * that crashes, hangs or garbles its reply cannot take the host down:
 * each case ends its own call with the documented outcome
 * (plugin_crashed, plugin_timeout) under on_error, and the host serves
 * the next request correctly from a new worker. Also: what a plugin does
 * through the host table (deny, payload, context, headers, logs) arrives
 * as in process.
 *
 * The probe plugin (tests/plugins/iso_probe.c) does what the text of the
 * request says. docs/testing.md lists the cases.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "iso.h"

static cpex_manager *live;

static int teardown(void **state)
{
    (void)state;
    cpex_manager_free(live);
    live = NULL;
    unsetenv("CPEX_WORKER_TEST_GARBLE");
    return 0;
}

/* ------------------------------------------------------------------ */
/* The plain path                                                      */
/* ------------------------------------------------------------------ */

static void test_allow_runs_in_another_process(void **state)
{
    (void)state;
    live = iso_probe_manager(NULL);
    e2e_outcome o;
    iso_call(live, "hello", NULL, NULL, &o);
    assert_allowed(&o.r);
    assert_string_equal(iso_meta_str(&o.r, "probe.echo"), "hello");
    long long pid = iso_meta_int(&o.r, "probe.pid");
    assert_true(pid > 0 && pid != (long long)getpid());
    assert_int_equal(iso_meta_int(&o.r, "probe.calls"), 1);
    assert_int_equal(iso_meta_int(&o.r, "probe.initialized"), 1);
    e2e_outcome_cleanup(&o);
    /* The same worker serves on: the plugin's state lives there. */
    iso_call(live, "again", NULL, NULL, &o);
    assert_int_equal(iso_meta_int(&o.r, "probe.pid"), pid);
    assert_int_equal(iso_meta_int(&o.r, "probe.calls"), 2);
    e2e_outcome_cleanup(&o);

    cpex_plugin_info info = CPEX_PLUGIN_INFO_INIT;
    assert_int_equal(cpex_manager_plugin_info(live, "probe", &info), CPEX_OK);
    assert_non_null(info.isolation);
    assert_contains(info.isolation, "process (2 worker threads)");
    assert_non_null(info.origin);
    assert_string_equal(info.origin, ISO_PROBE);
    assert_string_equal(info.reported_name, "iso-probe");
    cpex_plugin_info_cleanup(&info);

    cpex_manager_free(live);
    live = NULL;
    assert_true(iso_pid_gone(pid)); /* nothing left running */
}

static void test_what_the_plugin_asks_arrives(void **state)
{
    (void)state;
    live = iso_probe_manager("    capabilities: [write_headers]\n");
    e2e_outcome o;
    iso_call(live, "deny", NULL, NULL, &o);
    iso_expect_denied(&o.r, "probe_deny", "the probe denies");
    e2e_outcome_cleanup(&o);

    iso_call(live, "modify", NULL, NULL, &o);
    assert_allowed(&o.r);
    assert_true(o.r.payload_modified);
    const cpex_cmf_message *m = o.r.modified_payload->data;
    assert_int_equal(m->part_count, 1);
    assert_string_equal(m->parts[0].text.ptr, "modified");
    e2e_outcome_cleanup(&o);

    /* Context from the pre hook reaches the next call of the same request. */
    iso_call(live, "ctx", NULL, NULL, &o);
    assert_int_equal(iso_meta_int(&o.r, "probe.n"), 1);
    cpex_context_table *ctx = cpex_pipeline_result_take_context(&o.r);
    e2e_outcome_cleanup(&o);
    iso_call(live, "ctx", NULL, ctx, &o);
    assert_int_equal(iso_meta_int(&o.r, "probe.n"), 2);
    e2e_outcome_cleanup(&o);

    iso_call(live, "header", NULL, NULL, &o);
    assert_int_equal(iso_meta_int(&o.r, "probe.rc"), CPEX_HOST_OK);
    assert_true(o.r.extensions_modified);
    assert_string_equal(cpex_extensions_header(o.r.extensions, CPEX_HEADERS_RESPONSE, "x-probe"),
                        "1");
    e2e_outcome_cleanup(&o);
}

static void test_refused_write_is_recorded_as_in_process(void **state)
{
    (void)state;
    live = iso_probe_manager(NULL); /* no write_headers */
    e2e_outcome o;
    iso_call(live, "header", NULL, NULL, &o);
    assert_allowed(&o.r);
    assert_int_equal(iso_meta_int(&o.r, "probe.rc"), CPEX_HOST_EDENIED);
    assert_false(o.r.extensions_modified);
    assert_int_equal(o.r.error_count, 1);
    assert_string_equal(o.r.errors[0].code, "denied_write");
    assert_contains(o.r.errors[0].message, "write_headers");
    e2e_outcome_cleanup(&o);
}

/* ------------------------------------------------------------------ */
/* Crashes                                                             */
/* ------------------------------------------------------------------ */

/* `text` ends the worker; the call says how; the next call is served. */
static void crash_case(const char *text, const char *how)
{
    live = iso_probe_manager("    on_error: fail\n");
    long long before = iso_worker_pid(live);
    e2e_outcome o;
    iso_call(live, text, NULL, NULL, &o);
    iso_expect_denied(&o.r, "plugin_crashed", how);
    assert_contains(o.r.violation->reason, "a new worker is started");
    assert_int_equal(json_integer_value(json_object_get(o.r.violation->details, "worker_pid")),
                     before);
    e2e_outcome_cleanup(&o);
    long long after = iso_expect_serving(live);
    assert_true(after != before);
    assert_true(iso_pid_gone(before));
}

static void test_sigsegv(void **state)
{
    (void)state;
    crash_case("segv", "SIGSEGV");
}

static void test_abort(void **state)
{
    (void)state;
    crash_case("abort", "SIGABRT");
}

static void test_exit0(void **state)
{
    (void)state;
    crash_case("exit0", "exited with status 0");
}

static void test_stack_overflow(void **state)
{
    (void)state;
    /* SIGSEGV on the guard page (a sanitizer reports it and exits instead). */
    crash_case("stack", "its worker process");
}

static void test_sigkill(void **state)
{
    (void)state;
    crash_case("raise_kill", "SIGKILL");
}

static void test_crash_details(void **state)
{
    (void)state;
    live = iso_probe_manager(NULL);
    e2e_outcome o;
    iso_call(live, "segv", NULL, NULL, &o);
    const json_t *d = o.r.violation->details;
    assert_int_equal(json_integer_value(json_object_get(d, "signal")), SIGSEGV);
    assert_string_equal(json_string_value(json_object_get(d, "signal_name")), "SIGSEGV");
    e2e_outcome_cleanup(&o);
    iso_expect_serving(live);
}

/* on_error ignore: the crash is a soft error and the pipeline goes on. */
static void test_crash_under_ignore(void **state)
{
    (void)state;
    live = iso_probe_manager("    on_error: ignore\n");
    e2e_outcome o;
    iso_call(live, "abort", NULL, NULL, &o);
    assert_allowed(&o.r);
    assert_int_equal(o.r.error_count, 1);
    assert_string_equal(o.r.errors[0].plugin_name, "probe");
    assert_contains(o.r.errors[0].message, "plugin_crashed");
    assert_contains(o.r.errors[0].message, "SIGABRT");
    e2e_outcome_cleanup(&o);
    iso_expect_serving(live);
}

/* on_error disable: the manager disables the plugin, as for any failure. */
static void test_crash_under_disable(void **state)
{
    (void)state;
    live = iso_probe_manager("    on_error: disable\n");
    e2e_outcome o;
    iso_call(live, "segv", NULL, NULL, &o);
    assert_allowed(&o.r);
    assert_int_equal(o.r.error_count, 1);
    e2e_outcome_cleanup(&o);
    cpex_plugin_info info = CPEX_PLUGIN_INFO_INIT;
    assert_int_equal(cpex_manager_plugin_info(live, "probe", &info), CPEX_OK);
    assert_true(info.disabled);
    assert_contains(info.reason, "plugin_crashed");
    cpex_plugin_info_cleanup(&info);
}

/* ------------------------------------------------------------------ */
/* Hung calls: a hard timeout                                          */
/* ------------------------------------------------------------------ */

static void timeout_case(const char *text)
{
    live = iso_probe_manager("    timeout: 0.3\n");
    long long before = iso_worker_pid(live);
    e2e_outcome o;
    double t0 = iso_now();
    iso_call(live, text, NULL, NULL, &o);
    double took = iso_now() - t0;
    iso_expect_denied(&o.r, "plugin_timeout", NULL);
    e2e_outcome_cleanup(&o);
    /* At the deadline, not when the plugin felt like returning (generous:
       a loaded machine). */
    assert_true(took >= 0.29);
    assert_true(took < 5.0);
    long long after = iso_expect_serving(live);
    assert_true(after != before);
    assert_true(iso_pid_gone(before));
}

static void test_endless_loop(void **state)
{
    (void)state;
    timeout_case("loop");
}

static void test_sleep_past_timeout(void **state)
{
    (void)state;
    timeout_case("sleep:30000");
}

static void test_cpu_limit_per_call(void **state)
{
    (void)state;
    live = iso_probe_manager("    timeout: 30\n"
                             "    sandbox: {cpu_seconds_per_call: 0.2}\n");
    e2e_outcome o;
    double t0 = iso_now();
    iso_call(live, "cpu", NULL, NULL, &o);
    double took = iso_now() - t0;
    iso_expect_denied(&o.r, "plugin_timeout", "CPU time");
    e2e_outcome_cleanup(&o);
    assert_true(took < 8.0);
    iso_expect_serving(live);
}

/* ------------------------------------------------------------------ */
/* A worker that garbles its reply                                     */
/* ------------------------------------------------------------------ */

static void test_garbled_replies(void **state)
{
    (void)state;
    static const char *const modes[] = {"trailing", "truncate", "status", "op",
                                        "utf8",     "count",    "length"};
    for (size_t i = 0; i < sizeof modes / sizeof *modes; i++) {
        setenv("CPEX_WORKER_TEST_GARBLE", modes[i], 1);
        live = iso_probe_manager(NULL);
        long long before = iso_worker_pid(live); /* hook cmf.*: not garbled */
        e2e_outcome o;
        o.msg = test_text_message("garble");
        e2e_invoke_cmf(live, "test.garble", o.msg, NULL, NULL, &o.r);
        if (!o.r.violation || strcmp(o.r.violation->code, "plugin_crashed") != 0 ||
            !strstr(o.r.violation->reason, "malformed reply")) {
            tp_print_result(&o.r);
            fail_msg("garble mode '%s' was not refused as a crash", modes[i]);
        }
        e2e_outcome_cleanup(&o);
        long long after = iso_expect_serving(live);
        assert_true(after != before);
        cpex_manager_free(live);
        live = NULL;
    }
}

/* ------------------------------------------------------------------ */
/* Calls at once                                                       */
/* ------------------------------------------------------------------ */

static void *sleeper(void *arg)
{
    e2e_outcome o;
    iso_call(arg, "sleep:500", NULL, NULL, &o);
    int ok = o.r.continue_processing;
    e2e_outcome_cleanup(&o);
    return ok ? arg : NULL;
}

/* Two calls at once do not queue behind one channel (workers: 2). */
static void test_calls_run_at_once(void **state)
{
    (void)state;
    live = iso_probe_manager("    workers: 2\n");
    pthread_t t[2];
    double t0 = iso_now();
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&t[i], NULL, sleeper, live), 0);
    for (int i = 0; i < 2; i++) {
        void *r = NULL;
        pthread_join(t[i], &r);
        assert_non_null(r);
    }
    double took = iso_now() - t0;
    /* One after the other would take a second at least. */
    assert_true(took < 0.95);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_allow_runs_in_another_process, teardown),
        cmocka_unit_test_teardown(test_what_the_plugin_asks_arrives, teardown),
        cmocka_unit_test_teardown(test_refused_write_is_recorded_as_in_process, teardown),
        cmocka_unit_test_teardown(test_sigsegv, teardown),
        cmocka_unit_test_teardown(test_abort, teardown),
        cmocka_unit_test_teardown(test_exit0, teardown),
        cmocka_unit_test_teardown(test_stack_overflow, teardown),
        cmocka_unit_test_teardown(test_sigkill, teardown),
        cmocka_unit_test_teardown(test_crash_details, teardown),
        cmocka_unit_test_teardown(test_crash_under_ignore, teardown),
        cmocka_unit_test_teardown(test_crash_under_disable, teardown),
        cmocka_unit_test_teardown(test_endless_loop, teardown),
        cmocka_unit_test_teardown(test_sleep_past_timeout, teardown),
        cmocka_unit_test_teardown(test_cpu_limit_per_call, teardown),
        cmocka_unit_test_teardown(test_garbled_replies, teardown),
        cmocka_unit_test_teardown(test_calls_run_at_once, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
