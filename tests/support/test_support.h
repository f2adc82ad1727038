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

/** 1 in a build under AddressSanitizer or ThreadSanitizer (gcc or clang), else 0:
 *  tests that take time do less there. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define TEST_UNDER_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define TEST_UNDER_SANITIZER 1
#endif
#endif
#ifndef TEST_UNDER_SANITIZER
#define TEST_UNDER_SANITIZER 0
#endif

/** Assert that `haystack` contains `needle`, printing both when it does not. */
#define assert_contains(haystack, needle)                                                          \
    test_assert_contains((haystack), (needle), __FILE__, __LINE__)
void test_assert_contains(const char *haystack, const char *needle, const char *file, int line);

/** Read a whole file into a malloc'd, NUL-terminated buffer (NULL on failure). */
char *test_read_file(const char *path, size_t *len);

/** Make a fresh directory "<build dir>/<tag>-XXXXXX" into `dir` (at most
 *  `cap` bytes), mode 0755 so the loader's trust check accepts what is put
 *  in it. 0 on success, -1 on failure. */
int test_temp_dir(char *dir, size_t cap, const char *tag);

/** Remove `dir` and everything below it. 0 on success, -1 on failure. */
int test_remove_tree(const char *dir);

/** Write `text` to a new temporary file; returns its malloc'd path. */
char *test_write_temp(const char *name_hint, const char *text);

/** A user message with one text part `text`; aborts if it cannot be made (so
 *  any thread may call it). */
cpex_cmf_message *test_text_message(const char *text);

#endif
