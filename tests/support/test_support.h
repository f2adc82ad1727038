/* test_support.h — small helpers shared by the cmocka tests. */
#ifndef CPEX_TEST_SUPPORT_H
#define CPEX_TEST_SUPPORT_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cpex/cmf.h"
#include "util/count.h" /* CPEX__COUNT(array) */

/** Assert that `haystack` contains `needle`, printing both when it does not. */
#define assert_contains(haystack, needle) \
    test_assert_contains((haystack), (needle), __FILE__, __LINE__)
void test_assert_contains(const char *haystack, const char *needle, const char *file, int line);

/** Read a whole file into a malloc'd, NUL-terminated buffer (NULL on failure). */
char *test_read_file(const char *path, size_t *len);

/** Write `text` to a new temporary file; returns its malloc'd path. */
char *test_write_temp(const char *name_hint, const char *text);

/** A user message with one text part `text`; aborts if it cannot be made (so
 *  any thread may call it). */
cpex_cmf_message *test_text_message(const char *text);

#endif
