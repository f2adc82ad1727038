/*
 * test_handler_size.c — the handler array is walked with the stride the
 * plugin declares (cpex_plugin_registration.handler_size, ABI 1.1): wider
 * entries with a zero tail load (also through a '#' fragment, which copies
 * them into the host's layout), a non-zero unknown tail, an implausible
 * size and a set reserved field are refused (and the instance destroyed),
 * and a 1.0-sized registration is read as 1.0 whatever lies past it.
 * The same rules hold for a plugin registered from code.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "e2e.h"

#define LIB(name) E2E_LIB(name)
#define PRE E2E_PRE
#define POST E2E_POST
#define SIZES LIB("hostile_handler_size")
#define KIND(entry) "lib:" SIZES "?entry=" entry

static void quiet_log(void *user, uint32_t level, const char *plugin, const char *message)
{
    (void)user, (void)level, (void)plugin, (void)message;
}

static cpex_manager *new_manager(void)
{
    cpex_manager_options o;
    cpex_manager_options_init(&o);
    o.log = quiet_log;
    return e2e_manager_new(&o);
}

/* Our own reference to the library, to read its live-instance counter. */
static void *lib;
static int *live;

static int setup(void **state)
{
    (void)state;
    lib = dlopen(SIZES, RTLD_NOW | RTLD_LOCAL);
    live = lib ? dlsym(lib, "hostile_live_instances") : NULL;
    return live ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    if (lib)
        dlclose(lib);
    lib = NULL;
    return 0;
}

/* Load `kind`: it must be refused with CPEX_E_LOAD, name the plugin and the
   library and contain `needle`, and leave no instance alive. */
static void expect_refused(const char *kind, const char *needle)
{
    cpex_manager *m = new_manager();
    char *yaml = e2e_yaml1("sized", kind, PRE, "");
    char *msg = e2e_load_refused(m, yaml, "test.yaml", CPEX_E_LOAD, NULL);
    assert_contains(msg, "plugin 'sized'");
    assert_contains(msg, SIZES);
    assert_contains(msg, needle);
    assert_int_equal(*live, 0);
    assert_int_equal(cpex_manager_plugin_count(m), 0);
    free(msg);
    free(yaml);
    cpex_manager_free(m);
}

/* Load `kind` on `hooks`, invoke each of `hook_count` hooks and expect the
   metadata "wide.<hook>" from the plugin's handler. */
static void expect_runs(const char *kind, const char *hooks, const char *const *expect,
                        size_t count)
{
    cpex_manager *m = new_manager();
    char *yaml = e2e_yaml1("sized", kind, hooks, "");
    e2e_load_ok(m, yaml, "test.yaml");
    e2e_initialize_ok(m);
    for (size_t i = 0; i < count; i++) {
        e2e_outcome o = E2E_OUTCOME_INIT;
        e2e_invoke_hello(m, expect[i], &o);
        assert_allowed(&o.r);
        char key[128];
        snprintf(key, sizeof key, "wide.%s", expect[i]);
        assert_non_null(o.r.metadata);
        assert_true(json_is_true(json_object_get(o.r.metadata, key)));
        e2e_outcome_cleanup(&o);
    }
    assert_int_equal(*live, 1);
    free(yaml);
    cpex_manager_free(m);
    assert_int_equal(*live, 0);
}

static void test_wide_entries_with_zero_tail_load(void **state)
{
    (void)state;
    const char *both[] = {PRE, POST};
    expect_runs(KIND("wide_zero"), PRE ", " POST, both, 2);
    /* the fragment picks the second entry: found at the plugin's stride */
    const char *post[] = {POST};
    expect_runs(KIND("wide_zero") "#" POST, POST, post, 1);
}

static void test_unknown_nonzero_tail_refused(void **state)
{
    (void)state;
    expect_refused(KIND("wide_tail"), "handler #0");
    expect_refused(KIND("wide_tail"), "uses fields this host does not know (its entries are 32 "
                                      "bytes, this host knows 24)");
}

static void test_implausible_sizes_refused(void **state)
{
    (void)state;
    expect_refused(KIND("too_small"), "declares handler entries of 8 bytes");
    expect_refused(KIND("too_large"), "declares handler entries of 1048576 bytes");
    expect_refused(KIND("unaligned"), "declares handler entries of 28 bytes");
    expect_refused(KIND("reserved_set"), "sets its reserved field (7)");
}

static void test_fields_past_a_1_0_registration_ignored(void **state)
{
    (void)state;
    cpex_manager *m = new_manager();
    char *yaml = e2e_yaml1("sized", KIND("v10_garbage"), PRE, "");
    e2e_load_ok(m, yaml, "test.yaml");
    e2e_initialize_ok(m);
    e2e_outcome o = E2E_OUTCOME_INIT;
    e2e_invoke_hello(m, PRE, &o);
    assert_allowed(&o.r);
    e2e_outcome_cleanup(&o);
    free(yaml);
    cpex_manager_free(m);
    assert_int_equal(*live, 0);
}

/* ---- the same rules for a plugin registered from code ---- */

static int code_calls;

static int32_t code_handler(void *instance, const cpex_call *call)
{
    (void)instance, (void)call;
    code_calls++;
    return CPEX_ALLOW;
}

typedef struct wide {
    cpex_handler_reg base;
    uint64_t extra;
} wide;

static cpex_status register_wide(cpex_manager *m, wide *entries, size_t n, cpex_error *err)
{
    cpex_plugin_spec spec;
    cpex_plugin_spec_init(&spec);
    spec.name = "code";
    cpex_plugin_registration reg;
    memset(&reg, 0, sizeof reg);
    reg.struct_size = (uint32_t)sizeof reg;
    reg.abi_version = CPEX_ABI_VERSION;
    reg.handler_count = n;
    reg.handlers = &entries[0].base;
    reg.handler_size = (uint32_t)sizeof(wide);
    return cpex_manager_register(m, &spec, &reg, err);
}

static void test_code_registration_stride(void **state)
{
    (void)state;
    cpex_manager *m = new_manager();
    wide entries[2] = {{CPEX_HANDLER(PRE, code_handler, NULL), 0},
                       {CPEX_HANDLER(POST, code_handler, NULL), 0}};
    cpex_error err = CPEX_ERROR_INIT;
    entries[1].extra = 1;
    assert_int_equal(register_wide(m, entries, 2, &err), CPEX_E_LOAD);
    assert_contains(cpex_error_message(&err), "handler #1");
    assert_contains(cpex_error_message(&err), "does not know");
    cpex_error_cleanup(&err);
    entries[1].extra = 0;
    assert_int_equal(register_wide(m, entries, 2, &err), CPEX_OK);
    cpex_error_cleanup(&err);
    e2e_initialize_ok(m);
    assert_true(cpex_manager_has_hooks_for(m, POST));
    e2e_outcome o = E2E_OUTCOME_INIT;
    e2e_invoke_hello(m, POST, &o);
    assert_allowed(&o.r);
    e2e_outcome_cleanup(&o);
    assert_int_equal(code_calls, 1);
    cpex_manager_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_wide_entries_with_zero_tail_load, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_nonzero_tail_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_implausible_sizes_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fields_past_a_1_0_registration_ignored, setup,
                                        teardown),
        cmocka_unit_test(test_code_registration_stride),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
