/*
 * test_abi_names.c — the old spellings kept as aliases stay what they
 * were: code written against 1.0 still builds and means the same. The
 * create statuses and lifecycle states got distinct prefixes; the fields
 * named after Rust and Go keywords (cpex_handler_reg.fn, cpex_cmf_media.type)
 * got a second name in an anonymous union, same offset, same size.
 */
#include "test_support.h"

#include <string.h>

#include "cpex/cpex.h"

/* The create statuses: new prefix CPEX_CREATE_, the 1.0 names alias them. */
_Static_assert(CPEX_CREATE_OK == 0 && CPEX_PLUGIN_OK == CPEX_CREATE_OK, "create ok");
_Static_assert(CPEX_CREATE_ABI_MISMATCH == 1 &&
                   CPEX_PLUGIN_ABI_MISMATCH == CPEX_CREATE_ABI_MISMATCH,
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

/* The aliases are the same field. */
_Static_assert(offsetof(cpex_handler_reg, handler) == offsetof(cpex_handler_reg, fn),
               "handler aliases fn");
_Static_assert(sizeof(((cpex_handler_reg *)0)->handler) == sizeof(cpex_handler_fn), "fn size");
_Static_assert(offsetof(cpex_cmf_media, encoding) == offsetof(cpex_cmf_media, type),
               "encoding aliases type");
_Static_assert(sizeof(cpex_handler_reg) == CPEX_HANDLER_REG_SIZE_1_0, "no growth in 1.1");

static int32_t handler_a(void *instance, const cpex_call *call)
{
    (void)instance, (void)call;
    return CPEX_ALLOW;
}

static void test_field_aliases(void **state)
{
    (void)state;
    /* A 1.0 positional initializer still compiles and means the same; only
       -Wmissing-braces (in -Wall) now asks for the braces CPEX_HANDLER writes. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-braces"
    const cpex_handler_reg old = {"cmf.tool_pre_invoke", handler_a, "cmf"};
#pragma GCC diagnostic pop
    const cpex_handler_reg now = CPEX_HANDLER("cmf.tool_pre_invoke", handler_a, "cmf");
    const cpex_handler_reg named = {.hook = "h", .handler = handler_a, .payload_type = NULL};
    assert_true(old.fn == handler_a && old.handler == handler_a);
    assert_true(now.fn == handler_a && now.handler == handler_a);
    assert_true(named.fn == handler_a);
    assert_string_equal(now.hook, old.hook);
    assert_string_equal(now.payload_type, old.payload_type);

    cpex_cmf_media media;
    memset(&media, 0, sizeof media);
    media.type.ptr = "base64";
    media.type.len = 6;
    assert_ptr_equal(media.encoding.ptr, media.type.ptr);
    assert_int_equal(media.encoding.len, 6);
}

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
        cmocka_unit_test(test_field_aliases),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
