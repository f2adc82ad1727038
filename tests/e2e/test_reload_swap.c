/*
 * test_reload_swap.c — a library replaced on disk while a manager has it
 * loaded: a reload runs the new build (glibc would hand back the old
 * handle for the same path; lib_open.c loads a private copy), an
 * unchanged library keeps its instance, and the private copy leaves no
 * file behind.
 */
#include "e2e.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static void copy_file(const char *from, const char *to)
{
    FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
    assert_non_null(in);
    assert_non_null(out);
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0)
        assert_int_equal(fwrite(buf, 1, n, out), n);
    fclose(in);
    assert_int_equal(fclose(out), 0);
}

/* Deploy `lib` at `dir`/libswap.so the way deployment tools do: write a
 * new file beside it, rename it over the old one. */
static void deploy(const char *dir, const char *lib)
{
    char tmp[600], dst[600];
    snprintf(tmp, sizeof tmp, "%s/.libswap.so.new", dir);
    snprintf(dst, sizeof dst, "%s/libswap.so", dir);
    copy_file(lib, tmp);
    assert_int_equal(rename(tmp, dst), 0);
}

static long long meta(cpex_manager *m, const char *key)
{
    e2e_outcome o = E2E_OUTCOME_INIT;
    e2e_invoke_hello(m, E2E_PRE, &o);
    assert_true(o.r.continue_processing);
    long long v = json_integer_value(json_object_get(o.r.metadata, key));
    e2e_outcome_cleanup(&o);
    return v;
}

static size_t entries(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    size_t n = 0;
    for (struct dirent *e; (e = readdir(d));)
        n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    closedir(d);
    return n;
}

static void test_renamed_library_runs_new_code(void **state)
{
    (void)state;
    char dir[] = "/tmp/cpex_swap_XXXXXX", tmp[] = "/tmp/cpex_swaptmp_XXXXXX";
    assert_non_null(mkdtemp(dir));
    assert_non_null(mkdtemp(tmp));
    setenv("TMPDIR", tmp, 1); /* where private copies go: must stay empty */
    char cfg[600];
    snprintf(cfg, sizeof cfg, "%s/cpex.yaml", dir);
    FILE *f = fopen(cfg, "w");
    assert_non_null(f);
    fputs("plugins:\n  - {name: swap, kind: 'lib:libswap.so', hooks: [cmf.tool_pre_invoke]}\n", f);
    assert_int_equal(fclose(f), 0);
    deploy(dir, E2E_LIB("swap_v1"));

    cpex_manager *m = e2e_manager_quiet();
    e2e_initialize_ok(m);
    cpex_error err = CPEX_ERROR_INIT;
    assert_int_equal(cpex_manager_reload_file(m, cfg, &err), CPEX_OK);
    assert_int_equal(meta(m, "swap.version"), 1);
    assert_int_equal(meta(m, "swap.calls"), 2);

    /* The same file: the plugin (and its library's state) is kept. */
    assert_int_equal(cpex_manager_reload_file(m, cfg, &err), CPEX_OK);
    assert_int_equal(meta(m, "swap.calls"), 3);

    /* A new build renamed over the path: the reload loads it. */
    deploy(dir, E2E_LIB("swap_v2"));
    assert_int_equal(cpex_manager_reload_file(m, cfg, &err), CPEX_OK);
    assert_int_equal(meta(m, "swap.version"), 2);
    assert_int_equal(meta(m, "swap.calls"), 2); /* a fresh copy of the library */

    /* And back: v1 is loaded again, not the v2 still mapped under a copy's name. */
    deploy(dir, E2E_LIB("swap_v1"));
    assert_int_equal(cpex_manager_reload_file(m, cfg, &err), CPEX_OK);
    assert_int_equal(meta(m, "swap.version"), 1);
    /* A plain second manager loading the current file shares its library. */
    cpex_manager *m2 = e2e_manager_quiet();
    e2e_initialize_ok(m2);
    assert_int_equal(cpex_manager_reload_file(m2, cfg, &err), CPEX_OK);
    assert_int_equal(meta(m2, "swap.version"), 1);
    cpex_manager_free(m2);
    cpex_manager_free(m);
    cpex_error_cleanup(&err);
    assert_int_equal(entries(tmp), 0); /* private copies are unlinked once loaded */
    unsetenv("TMPDIR");
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' '%s'", dir, tmp);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_renamed_library_runs_new_code),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
