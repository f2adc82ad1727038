/*
 * test_isolation_life.c — the life of an isolated plugin: loading (its
 * errors as in process, a create or initialize that hangs or crashes),
 * restarts (state lost, initialize again), the crash budget (disabled
 * after max_crashes_per_minute) and 1,000 crashes in a row within it, the
 * configuration keys and their mistakes, the phases other than
 * sequential, and nothing left running after the manager is freed.
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
    unsetenv("CPEX_WORKER_TEST_NO_LANDLOCK");
    return 0;
}

/* The YAML of the probe with `extra` (4-space lines), isolated. */
static char *probe_yaml(const char *extra)
{
    char *y = NULL;
    assert_true(asprintf(&y,
                         "plugins:\n"
                         "  - name: probe\n"
                         "    kind: \"lib:%s\"\n"
                         "    hooks: [cmf.tool_pre_invoke]\n"
                         "%s",
                         ISO_PROBE, extra) > 0);
    return y;
}

/* Loading must fail with `code`; the message must hold each needle. */
static void refused(const char *extra, cpex_status code, const char *needle1, const char *needle2)
{
    cpex_manager *m = iso_manager_new();
    char *y = probe_yaml(extra);
    char *msg = e2e_load_refused(m, y, "life.yaml", code, NULL);
    assert_contains(msg, "life.yaml");
    assert_contains(msg, needle1);
    if (needle2)
        assert_contains(msg, needle2);
    free(msg);
    free(y);
    cpex_manager_free(m);
}

/* ------------------------------------------------------------------ */
/* Loading                                                             */
/* ------------------------------------------------------------------ */

static void test_create_errors_as_in_process(void **state)
{
    (void)state;
    refused("    isolation: process\n    config: {reject: 1}\n", CPEX_E_CONFIG,
            "rejected its configuration: the probe rejects this configuration on purpose",
            "plugin 'probe'");
    cpex_manager *m = iso_manager_new();
    char *msg = e2e_load_refused(m,
                                 "plugins:\n  - name: nolib\n    kind: \"lib:/nonexistent/x.so\"\n"
                                 "    hooks: [h]\n    isolation: process\n",
                                 "life.yaml", CPEX_E_LOAD, NULL);
    assert_contains(msg, "cannot load library '/nonexistent/x.so'");
    assert_contains(msg, "does not exist");
    free(msg);
    cpex_manager_free(m);
}

static void test_create_that_crashes(void **state)
{
    (void)state;
    refused("    isolation: process\n    config: {create_crash: 1}\n", CPEX_E_LOAD, "SIGABRT",
            "during loading the plugin");
}

static void test_create_that_hangs(void **state)
{
    (void)state;
    double t0 = iso_now();
    refused("    isolation: process\n    sandbox: {load_timeout: 0.3}\n"
            "    config: {create_sleep_ms: 60000}\n",
            CPEX_E_LOAD, "did not finish within the load timeout", "0.3 s");
    assert_true(iso_now() - t0 < 5.0);
}

static void test_initialize_that_hangs(void **state)
{
    (void)state;
    live = iso_manager_new();
    char *y = probe_yaml("    isolation: process\n    sandbox: {load_timeout: 0.3}\n"
                         "    config: {init_sleep_ms: 60000}\n");
    e2e_load_ok(live, y, "life.yaml");
    free(y);
    cpex_error err = CPEX_ERROR_INIT;
    double t0 = iso_now();
    assert_int_equal(cpex_manager_initialize(live, &err), CPEX_E_PLUGIN);
    assert_true(iso_now() - t0 < 5.0);
    assert_contains(cpex_error_message(&err), "initialize did not finish within the load timeout");
    cpex_error_cleanup(&err);
    /* It fails closed, as any plugin whose initialize failed. */
    e2e_outcome o;
    iso_call(live, "hello", NULL, NULL, &o);
    assert_denied(&o.r, "plugin_error", "probe");
    e2e_outcome_cleanup(&o);
}

static void test_initialize_failure_message(void **state)
{
    (void)state;
    live = iso_manager_new();
    char *y = probe_yaml("    isolation: process\n    config: {init_fail: 1}\n");
    e2e_load_ok(live, y, "life.yaml");
    free(y);
    cpex_error err = CPEX_ERROR_INIT;
    assert_int_equal(cpex_manager_initialize(live, &err), CPEX_E_PLUGIN);
    assert_contains(cpex_error_message(&err), "the probe was told to fail its initialize");
    cpex_error_cleanup(&err);
}

/* The plugin's log lines from its create reach the manager's log. */
typedef struct lines {
    pthread_mutex_t lock;
    char text[4096];
} lines;

static void collect(void *user, uint32_t level, const char *plugin, const char *message)
{
    lines *l = user;
    (void)level;
    pthread_mutex_lock(&l->lock);
    size_t n = strlen(l->text);
    snprintf(l->text + n, sizeof l->text - n, "[%s] %s\n", plugin ? plugin : "-", message);
    pthread_mutex_unlock(&l->lock);
}

static void test_logs_of_create_reach_the_host(void **state)
{
    (void)state;
    static lines l = {PTHREAD_MUTEX_INITIALIZER, ""};
    cpex_manager_options o;
    cpex_manager_options_init(&o);
    o.worker_path = ISO_WORKER;
    o.log = collect;
    o.log_user = &l;
    o.log_level = CPEX_LOG_DEBUG;
    live = e2e_manager_new(&o);
    char *y = probe_yaml("    isolation: process\n");
    e2e_load_ok(live, y, "life.yaml");
    free(y);
    pthread_mutex_lock(&l.lock);
    assert_contains(l.text, "[probe] iso-probe created");
    assert_contains(l.text, "[probe] loaded plugin 'probe' from");
    pthread_mutex_unlock(&l.lock);
}

/* ------------------------------------------------------------------ */
/* Restarts                                                            */
/* ------------------------------------------------------------------ */

static void test_restart_initializes_and_loses_state(void **state)
{
    (void)state;
    live = iso_probe_manager(NULL);
    e2e_outcome o;
    for (int i = 1; i <= 3; i++) {
        iso_call(live, "count", NULL, NULL, &o);
        assert_int_equal(iso_meta_int(&o.r, "probe.calls"), i);
        e2e_outcome_cleanup(&o);
    }
    iso_call(live, "segv", NULL, NULL, &o);
    e2e_outcome_cleanup(&o);
    iso_call(live, "count", NULL, NULL, &o);
    /* A new instance in a new process: initialized again, counting anew. */
    assert_int_equal(iso_meta_int(&o.r, "probe.calls"), 1);
    assert_int_equal(iso_meta_int(&o.r, "probe.initialized"), 1);
    e2e_outcome_cleanup(&o);
}

static void test_crash_budget_disables(void **state)
{
    (void)state;
    live = iso_probe_manager("    sandbox: {max_crashes_per_minute: 3}\n");
    e2e_outcome o;
    for (int i = 0; i < 2; i++) {
        iso_call(live, "segv", NULL, NULL, &o);
        iso_expect_denied(&o.r, "plugin_crashed", "a new worker is started");
        e2e_outcome_cleanup(&o);
    }
    iso_call(live, "segv", NULL, NULL, &o);
    iso_expect_denied(&o.r, "plugin_crashed", "the plugin is disabled");
    e2e_outcome_cleanup(&o);
    /* From now on every call fails at once, saying why. */
    double t0 = iso_now();
    iso_call(live, "hello", NULL, NULL, &o);
    iso_expect_denied(&o.r, "plugin_crashed", "crashed 3 times within a minute");
    assert_contains(o.r.violation->reason, "max_crashes_per_minute");
    e2e_outcome_cleanup(&o);
    assert_true(iso_now() - t0 < 1.0);
}

static void test_thousand_crashes_in_a_row(void **state)
{
    (void)state;
    /* A sanitized worker takes tens of milliseconds to start: fewer there. */
    int crashes = test_sanitized() ? 250 : 1000;
    live = iso_probe_manager("    sandbox: {max_crashes_per_minute: 5000}\n");
    double t0 = iso_now();
    for (int i = 0; i < crashes; i++) {
        e2e_outcome o;
        iso_call(live, "segv", NULL, NULL, &o);
        if (!o.r.violation || strcmp(o.r.violation->code, "plugin_crashed") != 0) {
            tp_print_result(&o.r);
            fail_msg("crash %d was not reported as plugin_crashed", i + 1);
        }
        e2e_outcome_cleanup(&o);
    }
    double took = iso_now() - t0;
    iso_expect_serving(live);
    print_message("%d crash-and-restart cycles: %.2f s (%.2f ms each)\n", crashes, took,
                  took * 1000 / crashes);
    assert_true(took < 240.0);
}

/* ------------------------------------------------------------------ */
/* The keys                                                            */
/* ------------------------------------------------------------------ */

static void test_key_mistakes(void **state)
{
    (void)state;
    refused("    isolation: proccess\n", CPEX_E_CONFIG, "unknown isolation 'proccess'",
            "did you mean 'process'?");
    refused("    isolation: process\n    sandbox: {memory_md: 64}\n", CPEX_E_CONFIG,
            "unknown sandbox key 'memory_md'", "did you mean 'memory_mb'?");
    refused("    isolaton: process\n", CPEX_E_CONFIG, "unknown key 'isolaton'",
            "did you mean 'isolation'?");
    refused("    sandbox: {network: true}\n", CPEX_E_CONFIG,
            "'sandbox' applies only to a plugin with 'isolation: process'", NULL);
    refused("    workers: 4\n", CPEX_E_CONFIG, "'workers' applies only", NULL);
    refused("    isolation: process\n    workers: 0\n", CPEX_E_CONFIG,
            "'workers' must be from 1 to 64", NULL);
    refused("    isolation: process\n    sandbox: {network: \"yes\"}\n", CPEX_E_CONFIG,
            "'sandbox.network' must be true or false", NULL);
    refused("    isolation: process\n    sandbox: {read_paths: /etc}\n", CPEX_E_CONFIG,
            "'sandbox.read_paths' must be a list of paths", NULL);
    refused("    isolation: process\n    sandbox: {write_paths: [/nonexistent/dir]}\n", CPEX_E_LOAD,
            "sandbox path '/nonexistent/dir' cannot be opened", NULL);
}

static int created;
static int32_t allow(void *i, const cpex_call *c)
{
    (void)i;
    (void)c;
    return CPEX_ALLOW;
}
static const cpex_handler_reg allow_reg[] = {CPEX_HANDLER("cmf.tool_pre_invoke", allow, "cmf")};
static void gone(void *i)
{
    (void)i;
    created--;
}

static cpex_status in_process_only(void *data, const cpex_factory_request *req,
                                   cpex_factory_product *out, cpex_error *err)
{
    (void)data;
    (void)req;
    (void)err;
    created++;
    out->registration.struct_size = (uint32_t)sizeof out->registration;
    out->registration.abi_version = CPEX_ABI_VERSION;
    out->registration.handler_count = 1;
    out->registration.handlers = allow_reg;
    out->registration.destroy = gone;
    return CPEX_OK;
}

static void test_isolation_needs_a_lib_plugin(void **state)
{
    (void)state;
    live = iso_manager_new();
    cpex_factory f = {sizeof f, in_process_only, NULL, NULL};
    assert_int_equal(cpex_manager_register_factory(live, "builtin", &f, NULL), CPEX_OK);
    char *msg = e2e_load_refused(live,
                                 "plugins:\n  - name: b\n    kind: builtin\n    hooks: "
                                 "[cmf.tool_pre_invoke]\n    isolation: process\n",
                                 "life.yaml", CPEX_E_CONFIG, NULL);
    assert_contains(msg, "cannot run a plugin in a separate process");
    assert_int_equal(created, 0); /* what the factory made was destroyed */
    free(msg);
}

static void test_worker_not_found(void **state)
{
    (void)state;
    cpex_manager_options o;
    cpex_manager_options_init(&o);
    o.worker_path = "/nonexistent/cpex-worker";
    o.log = iso_quiet;
    live = e2e_manager_new(&o);
    char *y = probe_yaml("    isolation: process\n");
    char *msg = e2e_load_refused(live, y, "life.yaml", CPEX_E_LOAD, NULL);
    assert_contains(msg, "the worker program '/nonexistent/cpex-worker'");
    free(msg);
    free(y);
}

static void test_missing_protection(void **state)
{
    (void)state;
    setenv("CPEX_WORKER_TEST_NO_LANDLOCK", "1", 1);
    /* Without `require`, the worker starts and says what is missing. */
    live = iso_probe_manager(NULL);
    cpex_plugin_info info = CPEX_PLUGIN_INFO_INIT;
    assert_int_equal(cpex_manager_plugin_info(live, "probe", &info), CPEX_OK);
    assert_contains(info.isolation, "MISSING: ");
    assert_contains(strstr(info.isolation, "MISSING: "), "the kernel offers no Landlock");
    cpex_plugin_info_cleanup(&info);
    iso_expect_serving(live);
    /* With it, loading fails naming the protection. */
    refused("    isolation: process\n    sandbox: {require: true}\n", CPEX_E_LOAD,
            "sandbox.require: true", "no Landlock");
}

/* ------------------------------------------------------------------ */
/* Other phases                                                        */
/* ------------------------------------------------------------------ */

static void test_concurrent_and_background(void **state)
{
    (void)state;
    live = iso_probe_manager("    mode: concurrent\n    on_error: fail\n");
    e2e_outcome o;
    iso_call(live, "segv", NULL, NULL, &o);
    iso_expect_denied(&o.r, "plugin_crashed", "SIGSEGV");
    e2e_outcome_cleanup(&o);
    iso_call(live, "hello", NULL, NULL, &o);
    assert_allowed(&o.r);
    e2e_outcome_cleanup(&o);
    cpex_manager_free(live);

    live = iso_probe_manager("    mode: fire_and_forget\n");
    iso_call(live, "abort", NULL, NULL, &o);
    assert_allowed(&o.r);
    e2e_outcome_cleanup(&o);
    assert_int_equal(cpex_manager_wait_background(live, 30), CPEX_OK);
    cpex_error_record *rec = NULL;
    size_t n = cpex_manager_take_background_errors(live, &rec);
    assert_int_equal(n, 1);
    assert_contains(rec[0].message, "plugin_crashed");
    cpex_error_records_free(rec, n);
}

static void *busy_caller(void *arg)
{
    e2e_outcome o;
    iso_call(arg, "sleep:300", NULL, NULL, &o);
    int ok = o.r.continue_processing && !o.r.violation;
    e2e_outcome_cleanup(&o);
    return ok ? arg : NULL;
}

/* One channel: a second call waits for it (within its deadline). */
static void test_one_channel_queues(void **state)
{
    (void)state;
    live = iso_probe_manager("    workers: 1\n    timeout: 10\n");
    pthread_t t[2];
    double t0 = iso_now();
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&t[i], NULL, busy_caller, live), 0);
    for (int i = 0; i < 2; i++) {
        void *r = NULL;
        pthread_join(t[i], &r);
        assert_non_null(r);
    }
    assert_true(iso_now() - t0 >= 0.59);
}

static void test_nothing_left_running(void **state)
{
    (void)state;
    live = iso_probe_manager(NULL);
    long long pid = iso_worker_pid(live);
    cpex_manager_shutdown(live);
    cpex_manager_free(live);
    live = NULL;
    assert_true(iso_pid_gone(pid));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_create_errors_as_in_process, teardown),
        cmocka_unit_test_teardown(test_create_that_crashes, teardown),
        cmocka_unit_test_teardown(test_create_that_hangs, teardown),
        cmocka_unit_test_teardown(test_initialize_that_hangs, teardown),
        cmocka_unit_test_teardown(test_initialize_failure_message, teardown),
        cmocka_unit_test_teardown(test_logs_of_create_reach_the_host, teardown),
        cmocka_unit_test_teardown(test_restart_initializes_and_loses_state, teardown),
        cmocka_unit_test_teardown(test_crash_budget_disables, teardown),
        cmocka_unit_test_teardown(test_thousand_crashes_in_a_row, teardown),
        cmocka_unit_test_teardown(test_key_mistakes, teardown),
        cmocka_unit_test_teardown(test_isolation_needs_a_lib_plugin, teardown),
        cmocka_unit_test_teardown(test_worker_not_found, teardown),
        cmocka_unit_test_teardown(test_missing_protection, teardown),
        cmocka_unit_test_teardown(test_concurrent_and_background, teardown),
        cmocka_unit_test_teardown(test_one_channel_queues, teardown),
        cmocka_unit_test_teardown(test_nothing_left_running, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
