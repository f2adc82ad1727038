/*
 * test_lib_open.c — loader/lib_open.h: a library whose file this process
 * already mapped, and checked after mapping it, is referenced again and
 * says so (`reused`), which lets the loader skip the check after dlopen
 * for it (nothing new was mapped); a fresh mapping, or one whose own check
 * has not passed yet, says so, and the loader checks it.
 */
#include <dlfcn.h>
#include <sys/stat.h>

#include "e2e.h"
#include "loader/lib_open.h"
#include "test_support.h"

static void test_reused_only_for_a_mapping_already_made(void **state)
{
    (void)state;
    const char *path = E2E_LIB("counter");
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    char why[512];
    bool reused = true;
    void *a = cpex__lib_open_checked(path, &st, &reused, why, sizeof why);
    if (!a)
        fail_msg("dlopen %s: %s", path, why);
    assert_false(reused); /* the first mapping: the caller checks it */
    /* Not confirmed yet (its load may still be checking it, or refuse it):
       another open of it is not "reused" either. */
    void *b = cpex__lib_open_checked(path, NULL, &reused, why, sizeof why);
    assert_ptr_equal(a, b);
    assert_false(reused);
    cpex__lib_open_confirm(a);
    void *c = cpex__lib_open_checked(path, &st, &reused, why, sizeof why);
    assert_ptr_equal(a, c);
    assert_true(reused); /* another reference to a checked mapping */
    /* A stat that does not match the mapping (another size, another change
       time): not reused. */
    struct stat other = st;
    other.st_size += 1;
    void *d = cpex__lib_open_checked(path, &other, &reused, why, sizeof why);
    assert_false(reused);
    if (d)
        cpex__lib_close(d);
    other = st;
    other.st_ctim.tv_nsec = (other.st_ctim.tv_nsec + 1) % 1000000000;
    d = cpex__lib_open_checked(path, &other, &reused, why, sizeof why);
    assert_false(reused);
    if (d)
        cpex__lib_close(d);
    cpex__lib_close(c);
    cpex__lib_close(b);
    cpex__lib_close(a);
    /* Every reference gone: the next open maps it again and says so. */
    void *e = cpex__lib_open_checked(path, &st, &reused, why, sizeof why);
    assert_non_null(e);
    assert_false(reused);
    cpex__lib_close(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reused_only_for_a_mapping_already_made),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
