/* test_kind.c — the kind URL parser and entry-name validation (no dlopen). */
#include <string.h>

#include "loader/kind.h"
#include "test_support.h"
#include "util/alloc.h"

/* Parse `text`, expect success and the given parts (NULL: absent). */
static void expect_ok(const char *text, const char *scheme, const char *path, const char *entry,
                      const char *handler)
{
    cpex__kind k;
    cpex_error err = CPEX_ERROR_INIT;
    cpex_status st = cpex__kind_parse(text, &k, &err);
    if (st != CPEX_OK)
        print_error("parse '%s' failed: %s\n", text, cpex_error_message(&err));
    assert_int_equal(st, CPEX_OK);
    assert_int_equal(err.count, 0);
    assert_string_equal(k.scheme, scheme);
    assert_string_equal(k.path, path);
    if (entry)
        assert_string_equal(k.entry, entry);
    else
        assert_null(k.entry);
    if (handler)
        assert_string_equal(k.handler, handler);
    else
        assert_null(k.handler);
    cpex__kind_cleanup(&k);
    cpex_error_cleanup(&err);
}

/* Parse `text`, expect CPEX_E_CONFIG and a message containing `needle`. */
static void expect_bad(const char *text, const char *needle)
{
    cpex__kind k;
    cpex_error err = CPEX_ERROR_INIT;
    cpex_status st = cpex__kind_parse(text, &k, &err);
    if (st == CPEX_OK)
        print_error("parse '%s' unexpectedly succeeded\n", text);
    assert_int_equal(st, CPEX_E_CONFIG);
    assert_int_equal(err.count, 1);
    assert_contains(cpex_error_message(&err), needle);
    /* every message quotes the kind, so the operator finds the line */
    if (text && *text)
        assert_contains(cpex_error_message(&err), text);
    assert_null(k.scheme);
    assert_null(k.path);
    assert_null(k.entry);
    assert_null(k.handler);
    cpex_error_cleanup(&err);
}

static void test_accepted_forms(void **state)
{
    (void)state;
    expect_ok("lib:/opt/plugins/foo.so", "lib", "/opt/plugins/foo.so", NULL, NULL);
    expect_ok("lib:/opt/plugins/foo.so#my_handler", "lib", "/opt/plugins/foo.so", NULL,
              "my_handler");
    expect_ok("lib:/opt/plugins/foo.so#cmf.tool_pre_invoke", "lib", "/opt/plugins/foo.so", NULL,
              "cmf.tool_pre_invoke");
    expect_ok("lib:./plugins/foo.so", "lib", "./plugins/foo.so", NULL, NULL);
    expect_ok("lib:plugins/foo.so", "lib", "plugins/foo.so", NULL, NULL);
    expect_ok("lib:libfoo.so", "lib", "libfoo.so", NULL, NULL);
    expect_ok("lib:/opt/multi.so?entry=foo", "lib", "/opt/multi.so", "foo", NULL);
    expect_ok("lib:/opt/multi.so?entry=foo#my_handler", "lib", "/opt/multi.so", "foo",
              "my_handler");
    expect_ok("lib:/opt/multi.so?entry=audit#cmf.tool_post_invoke", "lib", "/opt/multi.so", "audit",
              "cmf.tool_post_invoke");
    expect_ok("lib:/opt/multi.so?entry=rate_limiter_v2", "lib", "/opt/multi.so", "rate_limiter_v2",
              NULL);
    expect_ok("lib:/opt/multi.so?entry=_private", "lib", "/opt/multi.so", "_private", NULL);
    expect_ok("lib:/opt/multi.so?entry=a", "lib", "/opt/multi.so", "a", NULL);
    /* an empty query means "no entry" (documented) */
    expect_ok("lib:/opt/multi.so?", "lib", "/opt/multi.so", NULL, NULL);
    expect_ok("lib:/opt/multi.so?#h", "lib", "/opt/multi.so", NULL, "h");
    /* the fragment is split first: a '?' inside it is part of the handler */
    expect_ok("lib:/opt/x.so#weird?name", "lib", "/opt/x.so", NULL, "weird?name");
    expect_ok("lib:/opt/x.so#a#b", "lib", "/opt/x.so", NULL, "a#b");
    /* other schemes parse too; the factory checks the scheme it serves */
    expect_ok("wasm:/opt/foo.wasm", "wasm", "/opt/foo.wasm", NULL, NULL);
    /* the path is verbatim: spaces and percent signs are not decoded */
    expect_ok("lib:/opt/my plugins/a%20b.so", "lib", "/opt/my plugins/a%20b.so", NULL, NULL);
}

static void test_windows_paths(void **state)
{
    (void)state;
    /* the scheme ends at the FIRST colon; drive letters stay in the path */
    expect_ok("lib:C:\\plugins\\p.dll", "lib", "C:\\plugins\\p.dll", NULL, NULL);
    expect_ok("lib:/C:/plugins/foo.dll", "lib", "/C:/plugins/foo.dll", NULL, NULL);
    expect_ok("lib:C:/plugins/p.dll?entry=allow#cmf.tool_pre_invoke", "lib", "C:/plugins/p.dll",
              "allow", "cmf.tool_pre_invoke");
    expect_ok("lib:D:p.dll", "lib", "D:p.dll", NULL, NULL);
}

static void test_rejected_forms(void **state)
{
    (void)state;
    expect_bad("/opt/foo.so", "missing a scheme prefix");
    expect_bad(":/opt/foo.so", "missing a scheme prefix");
    expect_bad("lib", "missing a scheme prefix");
    expect_bad("lib:", "empty library path");
    expect_bad("lib:?entry=x", "empty library path");
    expect_bad("lib:#h", "empty library path");
    expect_bad("lib:/foo.so#", "empty '#' fragment");
    expect_bad("lib:/foo.so?entry=x#", "empty '#' fragment");
    expect_bad("lib:/opt/multi.so?entry=", "empty 'entry=' value");
    expect_bad("lib:/opt/multi.so?entry=#h", "empty 'entry=' value");
    expect_bad("lib:/opt/multi.so?entry=a&entry=b", "repeats the 'entry' parameter");
    expect_bad("lib:/opt/multi.so?other=value", "unknown query parameter 'other'");
    expect_bad("lib:/opt/multi.so?foo=1", "unknown query parameter 'foo'");
    expect_bad("lib:/opt/multi.so?=x", "unknown query parameter ''");
    expect_bad("lib:/opt/multi.so?Entry=x", "unknown query parameter 'Entry'");
    expect_bad("lib:/opt/multi.so?entry=foo&extra=bar", "multi-parameter query");
    expect_bad("lib:/opt/multi.so?extra=bar&entry=foo", "multi-parameter query");
    expect_bad("lib:/opt/multi.so?entry=foo&", "multi-parameter query");
    expect_bad("lib:/opt/multi.so?noequalssign", "malformed query 'noequalssign'");
    expect_bad("lib:/opt/multi.so?entry", "malformed query");
    /* bad entry names are refused at parse, before any symbol lookup */
    expect_bad("lib:/opt/multi.so?entry=1foo", "must start with a letter or underscore (got '1')");
    expect_bad("lib:/opt/multi.so?entry=1bad", "must start with a letter or underscore");
    expect_bad("lib:/opt/multi.so?entry=foo-bar",
               "contains invalid character '-'; only [A-Za-z0-9_] allowed");
    expect_bad("lib:/opt/multi.so?entry=a-b", "invalid character '-'");
    expect_bad("lib:/opt/multi.so?entry=foo.bar", "invalid character '.'");
    expect_bad("lib:/opt/multi.so?entry=a=b", "invalid character '='");
    expect_bad("lib:/opt/multi.so?entry=foo bar", "invalid character ' '");
    expect_bad("lib:/opt/multi.so?entry=a\x01", "invalid character '\\x01'");
    expect_bad("lib:/opt/multi.so?entry=\xc3\xa9t\xc3\xa9", "(got '\\xc3')");
}

static void test_empty_and_null(void **state)
{
    (void)state;
    cpex__kind k;
    cpex_error err = CPEX_ERROR_INIT;
    assert_int_equal(cpex__kind_parse("", &k, &err), CPEX_E_CONFIG);
    assert_contains(cpex_error_message(&err), "kind is empty");
    cpex_error_cleanup(&err);
    assert_int_equal(cpex__kind_parse(NULL, &k, &err), CPEX_E_CONFIG);
    cpex_error_cleanup(&err);
    assert_int_equal(cpex__kind_parse("lib:/x.so", NULL, &err), CPEX_E_INVALID);
    cpex_error_cleanup(&err);
    /* a NULL error object is allowed */
    assert_int_equal(cpex__kind_parse("lib:", &k, NULL), CPEX_E_CONFIG);
    cpex__kind_cleanup(NULL);
}

static void test_entry_names(void **state)
{
    (void)state;
    const char *good[] = {"foo", "foo_bar", "_private", "a", "rate_limiter_v2", "_", "A9", "Z_z"};
    for (size_t i = 0; i < CPEX__COUNT(good); i++)
        assert_true(cpex__entry_name_valid(good[i], NULL, 0));
    const char *badn[] = {"",        "1foo", "123",     "foo-bar", "foo.bar",
                          "foo bar", "foo!", "foo$bar", "-",       " a"};
    for (size_t i = 0; i < CPEX__COUNT(badn); i++)
        assert_false(cpex__entry_name_valid(badn[i], NULL, 0));
    assert_false(cpex__entry_name_valid(NULL, NULL, 0));

    char why[128];
    assert_false(cpex__entry_name_valid("1foo", why, sizeof why));
    assert_string_equal(why, "must start with a letter or underscore (got '1')");
    assert_false(cpex__entry_name_valid("a-b", why, sizeof why));
    assert_string_equal(why, "contains invalid character '-'; only [A-Za-z0-9_] allowed");
    assert_false(cpex__entry_name_valid("", why, sizeof why));
    assert_string_equal(why, "is empty");

    /* a tiny buffer truncates and stays terminated */
    char small[8];
    assert_false(cpex__entry_name_valid("1foo", small, sizeof small));
    assert_int_equal(strlen(small), sizeof small - 1);

    /* the length limit */
    char longname[CPEX_ENTRY_NAME_MAX + 2];
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    assert_false(cpex__entry_name_valid(longname, why, sizeof why));
    assert_contains(why, "at most");
    longname[CPEX_ENTRY_NAME_MAX] = '\0';
    assert_true(cpex__entry_name_valid(longname, NULL, 0));
}

static void test_out_of_memory(void **state)
{
    (void)state;
    /* every allocation of a successful parse may fail; each path ends clean */
    for (uint64_t n = 1; n < 20; n++) {
        cpex__kind k;
        cpex_error err = CPEX_ERROR_INIT;
        cpex__alloc_fail_at(n);
        cpex_status st = cpex__kind_parse("lib:/opt/multi.so?entry=foo#h", &k, &err);
        int failed = cpex__alloc_failed();
        cpex__alloc_fail_at(0);
        if (!failed) {
            assert_int_equal(st, CPEX_OK);
            cpex__kind_cleanup(&k);
            cpex_error_cleanup(&err);
            break;
        }
        assert_int_not_equal(st, CPEX_OK);
        assert_null(k.path);
        cpex_error_cleanup(&err);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accepted_forms), cmocka_unit_test(test_windows_paths),
        cmocka_unit_test(test_rejected_forms), cmocka_unit_test(test_empty_and_null),
        cmocka_unit_test(test_entry_names),    cmocka_unit_test(test_out_of_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
