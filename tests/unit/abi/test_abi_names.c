/*
 * test_abi_names.c — the old spellings kept as aliases stay what they
 * were: code written against 1.0 still builds and means the same.
 */
#include "test_support.h"

#include <string.h>

#include "cpex/cpex.h"

/* The create statuses: new prefix CPEX_CREATE_, the 1.0 names alias them. */
_Static_assert(CPEX_CREATE_OK == 0 && CPEX_PLUGIN_OK == CPEX_CREATE_OK, "create ok");
_Static_assert(CPEX_CREATE_ABI_MISMATCH == 1 && CPEX_PLUGIN_ABI_MISMATCH == CPEX_CREATE_ABI_MISMATCH,
               "abi mismatch");
_Static_assert(CPEX_CREATE_CONFIG_REJECTED == 2 &&
                   CPEX_PLUGIN_CONFIG_REJECTED == CPEX_CREATE_CONFIG_REJECTED,
               "config rejected");
_Static_assert(CPEX_CREATE_INIT_FAILED == 3 && CPEX_PLUGIN_INIT_FAILED == CPEX_CREATE_INIT_FAILED,
               "init failed");

/* The lifecycle states: new prefix CPEX_STATE_, the old names alias them. */
_Static_assert(CPEX_STATE_CREATED == 0 && CPEX_PLUGIN_CREATED == CPEX_STATE_CREATED, "created");
_Static_assert(CPEX_STATE_INITIALIZED == 1 && CPEX_PLUGIN_INITIALIZED == CPEX_STATE_INITIALIZED,
               "initialized");
_Static_assert(CPEX_STATE_FAILED == 2 && CPEX_PLUGIN_FAILED == CPEX_STATE_FAILED, "failed");
_Static_assert(CPEX_STATE_SHUT_DOWN == 3 && CPEX_PLUGIN_SHUT_DOWN == CPEX_STATE_SHUT_DOWN,
               "shut down");

static void test_old_enum_tag_still_names_the_type(void **state)
{
    (void)state;
    enum cpex_plugin_status old = CPEX_PLUGIN_CONFIG_REJECTED;
    enum cpex_create_status now = old;
    cpex_plugin_state st = CPEX_PLUGIN_SHUT_DOWN;
    assert_int_equal(now, CPEX_CREATE_CONFIG_REJECTED);
    assert_int_equal(st, CPEX_STATE_SHUT_DOWN);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_old_enum_tag_still_names_the_type),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
