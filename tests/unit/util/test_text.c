/*
 * test_text.c — util's text helpers: cpex__text_escape, the escaping of the
 * library's default log sink (control bytes, bytes that are not UTF-8 and
 * code points that steer a terminal come out as escapes; other UTF-8 stays;
 * a buffer that is too small cuts between escapes, never inside one, and
 * says so with "..."); bounded text buffers, name tables, the count macro.
 */
#include "test_support.h"

#include <stdio.h>

#include <string.h>

#include "util/count.h"
#include "util/names.h"
#include "util/text.h"

static void check(const char *in, const char *want)
{
    char out[256];
    assert_true(cpex__text_escape(out, sizeof out, in));
    assert_string_equal(out, want);
}

static void test_control_bytes_are_escaped(void **state)
{
    (void)state;
    check("a\nb\rc\td", "a\\nb\\rc\\td");
    check("clear\x1b[2J bell\x07 del\x7f", "clear\\x1b[2J bell\\x07 del\\x7f");
    check("\x01\x1f", "\\x01\\x1f");
    check(NULL, "");
    check("", "");
}

static void test_utf8_is_kept_and_invalid_bytes_escaped(void **state)
{
    (void)state;
    check("caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x94\x92",
          "caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x94\x92");
    check("bad \xff\xfe end", "bad \\xff\\xfe end");
    check("overlong \xc0\xaf", "overlong \\xc0\\xaf");
    check("surrogate \xed\xa0\x80", "surrogate \\xed\\xa0\\x80");
    check("cut \xe6\x97", "cut \\xe6\\x97");
    check("raw C1 \x9b", "raw C1 \\x9b");
}

static void test_steering_code_points_are_escaped(void **state)
{
    (void)state;
    check("csi \xc2\x9b"
          "31m",
          "csi \\u009b31m");
    check("rlo \xe2\x80\xae"
          "exe",
          "rlo \\u202eexe");
    check("ls \xe2\x80\xa8 ps \xe2\x80\xa9", "ls \\u2028 ps \\u2029");
    check("iso \xe2\x81\xa6 lrm \xe2\x80\x8e alm \xd8\x9c", "iso \\u2066 lrm \\u200e alm \\u061c");
}

static void test_a_small_buffer_never_cuts_an_escape(void **state)
{
    (void)state;
    char out[16];
    /* Every prefix length: the result is a clean prefix of the full escape,
       plus "..." when cut. */
    const char *in = "ab\x1b\xe6\x97\xa5\ncd\xff";
    const char *full = "ab\\x1b\xe6\x97\xa5\\ncd\\xff";
    for (size_t cap = 4; cap <= sizeof out; cap++) {
        bool whole = cpex__text_escape(out, cap, in);
        size_t n = strlen(out);
        assert_true(n < cap);
        if (whole) {
            assert_string_equal(out, full);
        } else {
            assert_true(n >= 3 && strcmp(out + n - 3, "...") == 0);
            assert_int_equal(memcmp(out, full, n - 3), 0);
            /* The prefix ends at a piece boundary of the full escape. */
            const char *bounds[] = {"",
                                    "a",
                                    "ab",
                                    "ab\\x1b",
                                    "ab\\x1b\xe6\x97\xa5",
                                    "ab\\x1b\xe6\x97\xa5\\n",
                                    "ab\\x1b\xe6\x97\xa5\\nc",
                                    "ab\\x1b\xe6\x97\xa5\\ncd"};
            bool at_bound = false;
            for (size_t b = 0; b < sizeof bounds / sizeof bounds[0]; b++)
                at_bound = at_bound || strlen(bounds[b]) == n - 3;
            assert_true(at_bound);
        }
    }
    assert_false(cpex__text_escape(out, 4, "abcdef"));
    assert_string_equal(out, "...");
    assert_true(cpex__text_escape(out, 4, "abc"));
    assert_string_equal(out, "abc");
}

static void test_textbuf_fits(void **state)
{
    (void)state;
    char buf[64];
    cpex__textbuf t;
    cpex__textbuf_init(&t, buf, sizeof buf);
    assert_string_equal(buf, "");
    static const char *const items[] = {"a", "bb", "ccc"};
    cpex__textbuf_add(&t, "[");
    cpex__textbuf_join(&t, items, CPEX__COUNT(items));
    cpex__textbuf_add(&t, "]%d", 7);
    assert_string_equal(buf, "[a, bb, ccc]7");
    assert_int_equal(t.len, strlen(buf));
    cpex__textbuf_join(&t, items, 0); /* nothing */
    assert_string_equal(buf, "[a, bb, ccc]7");
}

static void test_textbuf_cuts(void **state)
{
    (void)state;
    char buf[8];
    memset(buf, 'x', sizeof buf);
    cpex__textbuf t;
    cpex__textbuf_init(&t, buf, sizeof buf);
    cpex__textbuf_add(&t, "%s", "abcde");
    cpex__textbuf_add(&t, "%s", "fghij"); /* only "fg" fits */
    assert_string_equal(buf, "abcdefg");
    assert_int_equal(t.len, 7);
    cpex__textbuf_add(&t, "more"); /* full: nothing changes */
    assert_string_equal(buf, "abcdefg");

    char one[1];
    cpex__textbuf_init(&t, one, sizeof one);
    cpex__textbuf_add(&t, "x");
    assert_string_equal(one, "");
}

static void test_names(void **state)
{
    (void)state;
    static const char *const names[] = {"fail", "ignore", "disable"};
    assert_int_equal(cpex__names_index(names, CPEX__COUNT(names), "fail"), 0);
    assert_int_equal(cpex__names_index(names, CPEX__COUNT(names), "disable"), 2);
    assert_int_equal(cpex__names_index(names, CPEX__COUNT(names), "disabled"), -1);
    assert_int_equal(cpex__names_index(names, CPEX__COUNT(names), ""), -1);
    assert_int_equal(cpex__names_index(names, CPEX__COUNT(names), NULL), -1);
    /* By length: a prefix of a longer text, no NUL needed. */
    assert_int_equal(cpex__names_find(names, CPEX__COUNT(names), "ignored", 6), 1);
    assert_int_equal(cpex__names_find(names, CPEX__COUNT(names), "ignored", 7), -1);
    assert_int_equal(cpex__names_find(names, CPEX__COUNT(names), "fai", 3), -1);
    assert_int_equal(cpex__names_find(names, 0, "fail", 4), -1);
}

/* cpex__text_dec / cpex__text_signed write what printf does, for the
 * whole range (the library identity and the entry fingerprints use them). */
static void test_decimal_as_printf(void **state)
{
    (void)state;
    const unsigned long long us[] = {0, 7, 10, 999, 1000000007ull, 18446744073709551615ull};
    char got[CPEX__TEXT_DEC_MAX + 1], want[64];
    for (size_t k = 0; k < sizeof us / sizeof us[0]; k++) {
        got[cpex__text_dec(got, us[k], false, 0)] = '\0';
        snprintf(want, sizeof want, "%llu", us[k]);
        assert_string_equal(got, want);
        got[cpex__text_dec(got, us[k] % 1000000000ull, false, 9)] = '\0';
        snprintf(want, sizeof want, "%09llu", us[k] % 1000000000ull);
        assert_string_equal(got, want);
    }
    const long long ss[] = {0, -1, 42, -9223372036854775807LL - 1, 9223372036854775807LL};
    for (size_t k = 0; k < sizeof ss / sizeof ss[0]; k++) {
        got[cpex__text_signed(got, ss[k])] = '\0';
        snprintf(want, sizeof want, "%lld", ss[k]);
        assert_string_equal(got, want);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_control_bytes_are_escaped),
        cmocka_unit_test(test_utf8_is_kept_and_invalid_bytes_escaped),
        cmocka_unit_test(test_steering_code_points_are_escaped),
        cmocka_unit_test(test_a_small_buffer_never_cuts_an_escape),
        cmocka_unit_test(test_textbuf_fits),
        cmocka_unit_test(test_textbuf_cuts),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_decimal_as_printf),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
