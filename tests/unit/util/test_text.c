/* test_text.c — util: bounded text buffers, name tables, the count macro. */
#include "test_support.h"

#include <string.h>

#include "util/count.h"
#include "util/names.h"
#include "util/text.h"

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_textbuf_fits),
        cmocka_unit_test(test_textbuf_cuts),
        cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
