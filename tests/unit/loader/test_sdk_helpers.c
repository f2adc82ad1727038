/*
 * test_sdk_helpers.c — the inline helpers of the plugin SDK (cpex/plugin.h)
 * that plugin authors rely on: glob matching, string comparison, and the
 * host-table size check.
 */
#include "test_support.h"

#include <string.h>

#include <cpex/manager.h>
#include <cpex/plugin.h>

static int glob(const char *pattern, const char *s)
{
    return cpex_glob_match(pattern, s, strlen(s));
}

static void test_glob_match(void **state)
{
    (void)state;
    assert_true(glob("search_*", "search_docs"));
    assert_true(glob("search_*", "search_"));
    assert_false(glob("search_*", "searc"));
    assert_true(glob("*", ""));
    assert_true(glob("*_weather", "get_weather"));
    assert_false(glob("get_weather", "get_weather2"));
    assert_true(glob("a*b*c", "aXXbYYc"));
    assert_false(glob("a*b*c", "aXXbYY"));
    assert_true(glob("**x", "x"));
    assert_false(glob("", "x"));
    /* a pattern that would take exponential time with naive backtracking */
    char s[4001];
    memset(s, 'a', 4000);
    s[4000] = '\0';
    assert_false(glob("*a*a*a*a*a*a*a*a*b", s));
    /* only `len` bytes count: the rest of the buffer is not part of the name */
    assert_true(cpex_glob_match("get_*", "get_weather_and_more", 11));
    assert_false(cpex_glob_match("get_weather", "get_weather_and_more", 8));
}

static void test_str_eq(void **state)
{
    (void)state;
    cpex_str s = {"hook", 4};
    assert_true(cpex_str_eq(s, "hook"));
    assert_false(cpex_str_eq(s, "hoo"));
    assert_false(cpex_str_eq(s, "hooks"));
    cpex_str absent = {NULL, 0};
    assert_false(cpex_str_eq(absent, ""));
}

static void test_host_has_checks_the_table_size(void **state)
{
    (void)state;
    const cpex_host_api *host = cpex_host_api_get();
    assert_true(CPEX_HOST_HAS(host, ctx_set));
    /* A table from an older host: shorter, so later slots do not exist. */
    cpex_host_api older = *host;
    older.struct_size = (uint32_t)offsetof(cpex_host_api, ctx_get);
    assert_true(CPEX_HOST_HAS(&older, ext_set_custom));
    assert_false(CPEX_HOST_HAS(&older, ctx_get));
    assert_false(CPEX_HOST_HAS(&older, ctx_set));
    const cpex_host_api *none = NULL;
    assert_false(CPEX_HOST_HAS(none, log));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_glob_match),
        cmocka_unit_test(test_str_eq),
        cmocka_unit_test(test_host_has_checks_the_table_size),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
