/*
 * test_libfile.c — the loader's file checks without dlopen: a checked file
 * that changes before the dynamic loader is done (rewritten in place,
 * replaced by a rename, removed) is caught by cpex__libfile_same; the hash
 * is read through the checked descriptor, so a rename over the path after
 * the check does not change what was hashed; the trust rule on its own.
 */
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "loader/libfile.h"
#include "loader/trust.h"
#include "test_support.h"

static char dir[1024];

static int setup(void **state)
{
    (void)state;
    return test_temp_dir(dir, sizeof dir, "libfile");
}

static int teardown(void **state)
{
    (void)state;
    return test_remove_tree(dir);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_changed_while_loading(void **state)
{
    (void)state;
    char p[1100], q[1100], why[400];
    snprintf(p, sizeof p, "%s/lib.so", dir);
    snprintf(q, sizeof q, "%s/new.so", dir);
    write_file(p, "first");
    cpex__libfile f;
    assert_int_equal(cpex__libfile_open(&f, p, why, sizeof why), CPEX_LIBFILE_OK);
    assert_true(f.fd >= 0);
    assert_int_equal(cpex__libfile_same(&f, p, why, sizeof why), 0);

    /* rewritten in place: same inode, new size and times */
    struct timespec pause = {0, 20 * 1000 * 1000};
    nanosleep(&pause, NULL);
    write_file(p, "second, longer");
    assert_int_equal(cpex__libfile_same(&f, p, why, sizeof why), -1);
    assert_contains(why, "was changed while it was being loaded");
    cpex__libfile_close(&f);

    /* replaced by a rename: another inode */
    assert_int_equal(cpex__libfile_open(&f, p, why, sizeof why), CPEX_LIBFILE_OK);
    char before[CPEX__SHA256_HEX + 1], after[CPEX__SHA256_HEX + 1];
    assert_int_equal(cpex__libfile_sha256(&f, before, why, sizeof why), 0);
    write_file(q, "someone else's");
    assert_int_equal(rename(q, p), 0);
    assert_int_equal(cpex__libfile_same(&f, p, why, sizeof why), -1);
    assert_contains(why, "was replaced by another file while it was being loaded");
    /* the descriptor still reads the file that was checked */
    assert_int_equal(cpex__libfile_sha256(&f, after, why, sizeof why), 0);
    assert_string_equal(before, after);

    /* removed */
    assert_int_equal(unlink(p), 0);
    assert_int_equal(cpex__libfile_same(&f, p, why, sizeof why), -1);
    assert_contains(why, "disappeared while it was being loaded");
    cpex__libfile_close(&f);
    assert_int_equal(f.fd, -1);
    cpex__libfile_close(&f); /* twice is harmless */
}

static void test_missing(void **state)
{
    (void)state;
    char p[1100], why[400];
    snprintf(p, sizeof p, "%s/none.so", dir);
    cpex__libfile f;
    assert_int_equal(cpex__libfile_open(&f, p, why, sizeof why), CPEX_LIBFILE_MISSING);
    assert_int_equal(f.fd, -1);
}

/* The rule alone, on made-up stat results: owner and modes of the file. */
static void test_trust_rule(void **state)
{
    (void)state;
    char out[2048];
    struct stat st;
    memset(&st, 0, sizeof st);
    st.st_mode = S_IFREG | 0755;
    st.st_uid = geteuid();
    /* "/" alone above it: judged as the machine has it (root-owned, 0755 here) */
    struct stat root;
    assert_int_equal(stat("/", &root), 0);
    bool root_clean = root.st_uid == 0 && !(root.st_mode & 022);
    assert_int_equal(cpex__trust_check(&st, "/x.so", NULL, out, sizeof out), root_clean ? 0 : 1);
    st.st_mode = S_IFREG | 0646;
    assert_int_equal(cpex__trust_check(&st, "/x.so", NULL, out, sizeof out), root_clean ? 1 : 2);
    assert_contains(out, "file '/x.so' is writable by others (mode 0646): run chmod go-w '/x.so'");
    st.st_mode = S_IFREG | 0664;
    st.st_uid = geteuid() == 4321 ? 4322 : 4321;
    cpex__trust_check(&st, "/x.so", NULL, out, sizeof out);
    assert_contains(out, "file '/x.so' is owned by uid 432");
    assert_contains(out, "; file '/x.so' is writable by its group (mode 0664)");
    /* a tiny buffer is cut, never overrun */
    char tiny[16];
    assert_true(cpex__trust_check(&st, "/x.so", NULL, tiny, sizeof tiny) >= 2);
    assert_true(strlen(tiny) < sizeof tiny);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_changed_while_loading),
        cmocka_unit_test(test_missing),
        cmocka_unit_test(test_trust_rule),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
