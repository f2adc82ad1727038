/*
 * test_hooks_compare.c — comparing a manifest entry's hooks with a
 * registration's handlers (no dlopen): agreement in any order, each missing
 * hook on either side reported as its own item, the default entry named as
 * such, and handler arrays of another stride read correctly.
 */
#include <string.h>

#include "loader/hooks_agree.h"
#include "test_support.h"

static int32_t allow(void *instance, const cpex_call *call)
{
    (void)instance, (void)call;
    return CPEX_ALLOW;
}

static cpex_manifest_entry entry_of(const char *name, const char *const *hooks, size_t n)
{
    cpex_manifest_entry e;
    memset(&e, 0, sizeof e);
    e.struct_size = (uint32_t)sizeof e;
    e.entry = name;
    e.hook_count = n;
    e.hooks = hooks;
    return e;
}

static cpex_plugin_registration reg_of(const cpex_handler_reg *handlers, size_t n)
{
    cpex_plugin_registration r;
    memset(&r, 0, sizeof r);
    r.struct_size = (uint32_t)sizeof r;
    r.abi_version = CPEX_ABI_VERSION;
    r.handlers = handlers;
    r.handler_count = n;
    return r;
}

static void test_same_hooks_in_any_order_agree(void **state)
{
    (void)state;
    const char *const hooks[] = {"b", "a"};
    const cpex_handler_reg handlers[] = {CPEX_HANDLER("a", allow, NULL),
                                         CPEX_HANDLER("b", allow, NULL)};
    cpex_manifest_entry e = entry_of("x", hooks, 2);
    cpex_plugin_registration r = reg_of(handlers, 2);
    cpex_error err = CPEX_ERROR_INIT;
    assert_int_equal(cpex__hooks_agree(&e, &r, "/lib/x.so", &err), CPEX_OK);
    assert_int_equal(err.count, 0);
}

static void test_each_difference_is_one_item(void **state)
{
    (void)state;
    const char *const hooks[] = {"a", "m1", "m2"};
    const cpex_handler_reg handlers[] = {CPEX_HANDLER("a", allow, NULL),
                                         CPEX_HANDLER("r1", allow, NULL)};
    cpex_manifest_entry e = entry_of("audit", hooks, 3);
    cpex_plugin_registration r = reg_of(handlers, 2);
    cpex_error err = CPEX_ERROR_INIT;
    assert_int_equal(cpex__hooks_agree(&e, &r, "/lib/x.so", &err), CPEX_E_LOAD);
    assert_int_equal(err.count, 3);
    assert_contains(err.items[0].message, "library '/lib/x.so': the manifest of entry 'audit' "
                                          "lists 'm1' but the plugin registered no handler for it");
    assert_contains(err.items[1].message, "lists 'm2'");
    assert_contains(err.items[2].message, "the plugin registered a handler for 'r1' that its "
                                          "manifest entry does not list (entry 'audit')");
    cpex_error_cleanup(&err);
}

static void test_default_entry_named(void **state)
{
    (void)state;
    const char *const hooks[] = {"a"};
    const cpex_handler_reg handlers[] = {CPEX_HANDLER("b", allow, NULL)};
    cpex_manifest_entry e = entry_of("", hooks, 1);
    cpex_plugin_registration r = reg_of(handlers, 1);
    cpex_error err = CPEX_ERROR_INIT;
    assert_int_equal(cpex__hooks_agree(&e, &r, "/lib/x.so", &err), CPEX_E_LOAD);
    assert_contains(cpex_error_message(&err), "the manifest of the default entry lists 'a'");
    assert_contains(cpex_error_message(&err), "(the default entry)");
    cpex_error_cleanup(&err);
}

static void test_wider_handler_entries(void **state)
{
    (void)state;
    typedef struct wide {
        cpex_handler_reg base;
        uint64_t extra;
    } wide;
    const wide handlers[] = {{CPEX_HANDLER("a", allow, NULL), 0},
                             {CPEX_HANDLER("b", allow, NULL), 0}};
    const char *const hooks[] = {"a", "b"};
    cpex_manifest_entry e = entry_of("x", hooks, 2);
    cpex_plugin_registration r = reg_of(&handlers[0].base, 2);
    r.handler_size = (uint32_t)sizeof(wide);
    cpex_error err = CPEX_ERROR_INIT;
    assert_int_equal(cpex__hooks_agree(&e, &r, "/lib/x.so", &err), CPEX_OK);
    cpex_error_cleanup(&err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_hooks_in_any_order_agree),
        cmocka_unit_test(test_each_difference_is_one_item),
        cmocka_unit_test(test_default_entry_named),
        cmocka_unit_test(test_wider_handler_entries),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
