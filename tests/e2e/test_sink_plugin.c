/*
 * test_sink_plugin.c — an audit sink from a shared library: loaded with
 * the `lib:` loader from YAML as a hookless audit-mode plugin, it receives
 * every verdict (its handler is not wired); and the SDK's handshake: a
 * sink built against ABI 1.1 refuses, with a message, a host whose
 * registration cannot carry a verdict handler, and a 1.0 host.
 */
#include "e2e.h"

TP_FIXTURE;

typedef void (*counts_fn)(int *, int *, int *, int *, int *);

static counts_fn counts(void **lib)
{
    *lib = dlopen(E2E_LIB("verdict_sink"), RTLD_NOW | RTLD_LOCAL);
    assert_non_null(*lib);
    counts_fn f = (counts_fn)dlsym(*lib, "verdict_sink_counts");
    assert_non_null(f);
    return f;
}

static void test_hookless_sink_from_library(void **state)
{
    (void)state;
    void *lib;
    counts_fn f = counts(&lib);
    int v0, d0, c0, r0, x0;
    f(&v0, &d0, &c0, &r0, &x0);
    cpex_manager *m = tp_manager();
    cpex_error err = CPEX_ERROR_INIT;
    assert_int_equal(cpex_loader_register(m, &err), CPEX_OK);
    static const char yaml[] = "plugins:\n"
                               "  - name: sink\n"
                               "    kind: \"lib:" E2E_LIB("verdict_sink") "\"\n"
                                                                          "    mode: audit\n";
    if (cpex_manager_load_string(m, yaml, sizeof yaml - 1, NULL, NULL, &err) != CPEX_OK)
        fail_msg("%s", cpex_error_message(&err));
    tp_plugin *gate = tp_denying(tp_new("gate", &trace), "nope", "closed");
    gate->hooks[0] = E2E_POST;
    tp_start(m, tp_new("open", &trace), gate);
    cpex_plugin_info info = CPEX_PLUGIN_INFO_INIT;
    assert_int_equal(cpex_manager_plugin_info(m, "sink", &info), CPEX_OK);
    assert_true(info.audit_sink);
    assert_null(info.sink_hooks); /* every hook */
    assert_null(info.hooks[0]);   /* no handler wired */
    cpex_plugin_info_cleanup(&info);
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    tp_run(m, E2E_PRE, &res);
    assert_allowed(&res);
    cpex_pipeline_result_cleanup(&res);
    tp_run(m, E2E_POST, &res);
    assert_denied(&res, "nope", "gate");
    cpex_pipeline_result_cleanup(&res);
    assert_int_equal(cpex_manager_wait_background(m, 60), CPEX_OK);
    int v, d, c, r, x;
    f(&v, &d, &c, &r, &x);
    assert_int_equal(v - v0, 2);
    assert_int_equal(d - d0, 1);
    assert_int_equal(c - c0, 0);
    assert_int_equal(r - r0, 2); /* open's record, gate's record */
    cpex_error_cleanup(&err);
    tp_finish(m, &res);
    f(&v, &d, &c, &r, &x);
    assert_int_equal(x - x0, 1);
    dlclose(lib);
}

static void test_sdk_refuses_hosts_without_sinks(void **state)
{
    (void)state;
    void *lib;
    counts_fn f = counts(&lib);
    cpex_plugin_create_fn create = (cpex_plugin_create_fn)dlsym(lib, "cpex_plugin_create");
    assert_non_null(create);
    int v, d, c, r, x0, x1;
    f(&v, &d, &c, &r, &x0);
    cpex_plugin_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.struct_size = (uint32_t)sizeof cfg;
    cfg.mode = CPEX_MODE_AUDIT;
    cpex_plugin_registration out;
    char err[512];
    /* A host of this minor whose registration stops before the verdict
       handler (as the first 1.1 hosts did). */
    memset(&out, 0, sizeof out);
    out.struct_size = (uint32_t)CPEX_REGISTRATION_SIZE_1_1;
    assert_int_equal(create(CPEX_ABI_VERSION, cpex_host_api_get(), &cfg, &out, err, sizeof err),
                     CPEX_CREATE_INIT_FAILED);
    assert_contains(err, "audit sink");
    assert_contains(err, "verdict handler");
    f(&v, &d, &c, &r, &x1);
    assert_int_equal(x1 - x0, 1); /* it freed what it made */
    /* A 1.0 host. */
    memset(&out, 0, sizeof out);
    out.struct_size = (uint32_t)CPEX_REGISTRATION_SIZE_1_0;
    assert_int_equal(
        create(CPEX_ABI_MAKE_VERSION(1, 0), cpex_host_api_get(), &cfg, &out, err, sizeof err),
        CPEX_CREATE_ABI_MISMATCH);
    assert_contains(err, "plugin built for ABI 1.1, host has 1.0");
    /* This host: fine. */
    memset(&out, 0, sizeof out);
    out.struct_size = (uint32_t)sizeof out;
    assert_int_equal(create(CPEX_ABI_VERSION, cpex_host_api_get(), &cfg, &out, err, sizeof err),
                     CPEX_CREATE_OK);
    assert_non_null(out.verdict);
    out.destroy(out.instance);
    dlclose(lib);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TP_TEST(test_hookless_sink_from_library),
        TP_TEST(test_sdk_refuses_hosts_without_sinks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
