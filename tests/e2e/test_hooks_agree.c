/*
 * test_hooks_agree.c — the loader compares the hooks a manifest entry lists
 * with the handlers the plugin registered, and refuses a library where they
 * differ, in either direction: the message names the operator's plugin, the
 * library, the entry and the hook; the instance is destroyed; a '#'
 * fragment does not hide the disagreement; nothing is published.
 */
#include <stdlib.h>
#include <string.h>

#include "e2e.h"

#define LIB E2E_LIB("hooks_disagree")
#define KIND(entry) "lib:" LIB "?entry=" entry

static void quiet_log(void *user, uint32_t level, const char *plugin, const char *message)
{
    (void)user, (void)level, (void)plugin, (void)message;
}

static void *lib;
static int *live;

static int setup(void **state)
{
    (void)state;
    lib = dlopen(LIB, RTLD_NOW | RTLD_LOCAL);
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

/* Load `kind` as plugin 'gate': refused (CPEX_E_LOAD) with every needle,
   nothing published, no instance alive. */
static void expect_refused(const char *kind, const char *hooks, const char *needle,
                           const char *absent)
{
    cpex_manager_options o;
    cpex_manager_options_init(&o);
    o.log = quiet_log;
    cpex_manager *m = e2e_manager_new(&o);
    char *yaml = e2e_yaml1("gate", kind, hooks, "");
    char *msg = e2e_load_refused(m, yaml, "test.yaml", CPEX_E_LOAD, NULL);
    assert_contains(msg, "test.yaml:");
    assert_contains(msg, "plugin 'gate'");
    assert_contains(msg, "library '" LIB "'");
    assert_contains(msg, needle);
    assert_contains(msg, "hint:");
    if (absent)
        assert_null(strstr(msg, absent));
    assert_int_equal(cpex_manager_plugin_count(m), 0);
    assert_int_equal(*live, 0);
    free(msg);
    free(yaml);
    cpex_manager_free(m);
}

static void test_manifest_lists_a_hook_without_handler(void **state)
{
    (void)state;
    expect_refused(KIND("lists_more"), E2E_PRE,
                   "the manifest of entry 'lists_more' lists 'cmf.tool_post_invoke' but the "
                   "plugin registered no handler for it",
                   "lists 'cmf.tool_pre_invoke'");
}

static void test_plugin_registers_a_hook_not_listed(void **state)
{
    (void)state;
    expect_refused(KIND("registers_more"), E2E_PRE,
                   "the plugin registered a handler for 'cmf.tool_post_invoke' that its manifest "
                   "entry does not list (entry 'registers_more')",
                   "a handler for 'cmf.tool_pre_invoke'");
}

static void test_fragment_does_not_hide_it(void **state)
{
    (void)state;
    /* only the agreeing hook is picked, but the library as a whole disagrees */
    expect_refused(KIND("registers_more") "#" E2E_PRE, E2E_PRE,
                   "a handler for 'cmf.tool_post_invoke'", NULL);
    expect_refused(KIND("lists_more") "#" E2E_PRE, E2E_PRE, "lists 'cmf.tool_post_invoke'", NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_manifest_lists_a_hook_without_handler, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_plugin_registers_a_hook_not_listed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fragment_does_not_hide_it, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
