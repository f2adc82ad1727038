/*
 * test_state_compat.c — plugins that use the state slots on a host that has
 * none (ABI 1.0): the host table is the real one cut to its 1.0 size, as an
 * older host would hand it over. The rate limiter loads and falls back to
 * counting in its own process; a plugin that needs the slots is refused
 * with a message that says why.
 */
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

#include "cpex/cpex.h"
#include "cpex/plugin.h"
#include "e2e.h"
#include "test_support.h"

/* The host table as a 1.0 host would hand it over. */
static cpex_host_api old_host;

static void make_old_host(void)
{
    memcpy(&old_host, cpex_host_api_get(), sizeof old_host);
    old_host.struct_size = (uint32_t)offsetof(cpex_host_api, state_get);
    old_host.abi_version = CPEX_ABI_MAKE_VERSION(1, 0);
}

static cpex_plugin_create_fn entry(void *dl)
{
    void *sym = dlsym(dl, "cpex_plugin_create");
    assert_non_null(sym);
    cpex_plugin_create_fn fn;
    memcpy(&fn, &sym, sizeof fn);
    return fn;
}

static void sdk_helper_says_why(void **state)
{
    (void)state;
    make_old_host();
    char err[256] = "";
    assert_int_equal(cpex_host_has_state(&old_host, err, sizeof err), 0);
    assert_contains(err, "the host (ABI 1.0) has no state slots");
    assert_contains(err, "ABI 1.1 or newer");
    assert_int_equal(cpex_host_has_state(cpex_host_api_get(), err, sizeof err), 1);
    assert_int_equal(cpex_host_has_state(NULL, NULL, 0), 0);
}

static void rate_limit_falls_back_on_a_1_0_host(void **state)
{
    (void)state;
    make_old_host();
    void *dl = dlopen(E2E_LIB("rate_limit"), RTLD_NOW | RTLD_LOCAL);
    assert_non_null(dl);
    /* it claims ABI 1.0 in its manifest: older hosts load it */
    const cpex_manifest *man = dlsym(dl, "cpex_plugin_list");
    assert_non_null(man);
    assert_int_equal(man->abi_version, CPEX_ABI_MAKE_VERSION(1, 0));

    json_t *conf = json_pack("{s:i, s:i}", "limit", 3, "window_seconds", 3600);
    char *text = json_dumps(conf, JSON_COMPACT);
    cpex_plugin_config pc;
    memset(&pc, 0, sizeof pc);
    pc.struct_size = (uint32_t)sizeof pc;
    pc.name.ptr = "limiter";
    pc.name.len = 7;
    pc.config_json.ptr = text;
    pc.config_json.len = strlen(text);
    pc.config = cpex_json_from_jansson(conf);
    cpex_plugin_registration reg;
    memset(&reg, 0, sizeof reg);
    reg.struct_size = (uint32_t)sizeof reg;
    char err[256] = "";
    assert_int_equal(entry(dl)(CPEX_ABI_MAKE_VERSION(1, 0), &old_host, &pc, &reg, err, sizeof err),
                     CPEX_PLUGIN_OK);
    free(text);
    json_decref(conf);

    /* run it in a manager: it counts in its own table, with the same windows */
    cpex_manager *m = e2e_manager_new(NULL);
    cpex_plugin_spec spec;
    cpex_plugin_spec_init(&spec);
    spec.name = "limiter";
    cpex_error e = CPEX_ERROR_INIT;
    assert_int_equal(cpex_manager_register(m, &spec, &reg, &e), CPEX_OK);
    e2e_initialize_ok(m);
    cpex_cmf_message *msg = e2e_tool_call_msg("c1", "search", "{}");
    for (int i = 0; i < 4; i++) {
        cpex_pipeline_result r = CPEX_PIPELINE_RESULT_INIT;
        e2e_invoke_cmf(m, E2E_PRE, msg, NULL, NULL, &r);
        if (i < 3)
            assert_allowed(&r);
        else
            assert_denied(&r, "rate_limited", "limiter");
        cpex_pipeline_result_cleanup(&r);
    }
    cpex_cmf_free(msg);
    cpex_manager_free(m); /* destroys the instance */
    dlclose(dl);
}

static void a_plugin_that_needs_the_slots_is_refused(void **state)
{
    (void)state;
    make_old_host();
    void *dl = dlopen(E2E_LIB("state_probe"), RTLD_NOW | RTLD_LOCAL);
    assert_non_null(dl);
    cpex_plugin_config pc;
    memset(&pc, 0, sizeof pc);
    pc.struct_size = (uint32_t)sizeof pc;
    cpex_plugin_registration reg;
    memset(&reg, 0, sizeof reg);
    reg.struct_size = (uint32_t)sizeof reg;
    char err[256] = "";
    /* a 1.1 plugin on a host that says 1.1 but hands a 1.0-sized table */
    old_host.abi_version = CPEX_ABI_VERSION;
    assert_int_equal(entry(dl)(CPEX_ABI_VERSION, &old_host, &pc, &reg, err, sizeof err),
                     CPEX_PLUGIN_INIT_FAILED);
    assert_contains(err, "has no state slots");
    /* and an actual 1.0 host is refused by the handshake already */
    assert_int_equal(entry(dl)(CPEX_ABI_MAKE_VERSION(1, 0), &old_host, &pc, &reg, err, sizeof err),
                     CPEX_PLUGIN_ABI_MISMATCH);
    assert_contains(err, "plugin built for ABI 1.1, host has 1.0");
    dlclose(dl);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sdk_helper_says_why),
        cmocka_unit_test(rate_limit_falls_back_on_a_1_0_host),
        cmocka_unit_test(a_plugin_that_needs_the_slots_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
