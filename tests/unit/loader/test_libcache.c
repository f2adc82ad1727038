/*
 * test_libcache.c — the reuse of a library's checks (loader/libcache.h):
 * a recent check of an unchanged file is reused; a file rewritten, renamed
 * over, re-permissioned or removed is checked again; and, through a real
 * manager, what the checks guard still holds within the reuse window — a
 * file made others-writable warns again, a pinned file swapped for another
 * is refused, and many plugins of one library are loaded with one check.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cpex/cpex.h"
#include "loader/libcache.h"
#include "test_support.h"

static char dir[1024];

static int setup(void **state)
{
    (void)state;
    return test_temp_dir(dir, sizeof dir, "libcache");
}

static int teardown(void **state)
{
    (void)state;
    return test_remove_tree(dir);
}

static void copy_file(const char *from, const char *to)
{
    char cmd[6000];
    snprintf(cmd, sizeof cmd, "cp '%s' '%s.tmp' && chmod 0755 '%s.tmp' && mv '%s.tmp' '%s'", from,
             to, to, to, to);
    assert_int_equal(system(cmd), 0);
}

/* A check of `path` as the loader would remember it. */
static cpex__libcheck check_of(const char *path)
{
    cpex__libcheck c;
    memset(&c, 0, sizeof c);
    c.resolved = strdup(path);
    assert_int_equal(stat(path, &c.st), 0);
    c.trust = strdup("someone could replace it");
    memcpy(c.sha256, "ab", 3);
    return c;
}

static void test_reuse_while_unchanged(void **state)
{
    (void)state;
    char p[1100];
    snprintf(p, sizeof p, "%s/a.so", dir);
    copy_file(CPEX_PLUGIN_DIR "/libcounter.so", p);
    cpex__libcache *c = cpex__libcache_new();
    assert_non_null(c);
    cpex__libcheck put = check_of(p), got;
    assert_false(cpex__libcache_get(c, p, &got)); /* nothing yet */
    cpex__libcache_put(c, p, &put);
    /* the cache keeps copies: the caller's check can go */
    free(put.resolved);
    free(put.trust);
    assert_true(cpex__libcache_get(c, p, &got));
    assert_string_equal(got.resolved, p);
    assert_string_equal(got.trust, "someone could replace it");
    assert_string_equal(got.sha256, "ab");
    cpex__libcheck_clear(&got);
    assert_null(got.resolved);
    /* another path is another entry */
    char q[1100];
    snprintf(q, sizeof q, "%s/b.so", dir);
    assert_false(cpex__libcache_get(c, q, &got));
    assert_false(cpex__libcache_get(NULL, p, &got));
    cpex__libcache_free(c);
    cpex__libcache_free(NULL);
}

static void test_any_change_is_a_miss(void **state)
{
    (void)state;
    char p[1100];
    snprintf(p, sizeof p, "%s/c.so", dir);
    cpex__libcache *c = cpex__libcache_new();
    cpex__libcheck got;
    for (int how = 0; how < 4; how++) {
        copy_file(CPEX_PLUGIN_DIR "/libcounter.so", p);
        cpex__libcheck put = check_of(p);
        cpex__libcache_put(c, p, &put);
        cpex__libcheck_clear(&put);
        assert_true(cpex__libcache_get(c, p, &got));
        cpex__libcheck_clear(&got);
        switch (how) {
        case 0: /* replaced by a rename (another inode) */
            copy_file(CPEX_PLUGIN_DIR "/libcounter.so", p);
            break;
        case 1: /* its mode changed: the change time moves */
            assert_int_equal(chmod(p, 0775), 0);
            break;
        case 2: { /* rewritten in place */
            int fd = open(p, O_WRONLY | O_APPEND);
            assert_true(fd >= 0);
            assert_int_equal(write(fd, "x", 1), 1);
            close(fd);
            break;
        }
        default: /* removed */ assert_int_equal(unlink(p), 0); break;
        }
        assert_false(cpex__libcache_get(c, p, &got));
    }
    cpex__libcache_free(c);
}

/* ---- through a manager -------------------------------------------------------- */

static int warnings;
static void count_warnings(void *user, uint32_t level, const char *plugin, const char *message)
{
    (void)user;
    (void)plugin;
    if (level == CPEX_LOG_WARN && strstr(message, "could be replaced"))
        warnings++;
}

static cpex_manager *manager(void)
{
    cpex_manager_options o;
    cpex_manager_options_init(&o);
    o.log = count_warnings;
    cpex_manager *m = NULL;
    cpex_error err = CPEX_ERROR_INIT;
    assert_int_equal(cpex_manager_new(&o, &m, &err), CPEX_OK);
    assert_int_equal(cpex_loader_register(m, &err), CPEX_OK);
    return m;
}

static cpex_status load(cpex_manager *m, const char *lib, int plugins, const char *pin, char *msg,
                        size_t cap)
{
    size_t len = 0, size = 256 + (size_t)plugins * 400;
    char *y = malloc(size);
    assert_non_null(y);
    len += (size_t)snprintf(y + len, size - len, "plugins:\n");
    static int serial;
    serial++;
    for (int i = 0; i < plugins; i++)
        len += (size_t)snprintf(
            y + len, size - len,
            "  - name: p%d-%d\n    kind: \"lib:%s\"\n    hooks: [cmf.tool_pre_invoke]\n%s%s%s",
            serial, i, lib, pin ? "    sha256: " : "", pin ? pin : "", pin ? "\n" : "");
    cpex_error err = CPEX_ERROR_INIT;
    cpex_status st = cpex_manager_load_string(m, y, len, "cache.yaml", NULL, &err);
    snprintf(msg, cap, "%s", st == CPEX_OK ? "" : cpex_error_message(&err));
    cpex_error_cleanup(&err);
    free(y);
    return st;
}

static void test_guards_hold_within_the_window(void **state)
{
    (void)state;
    char p[1100], msg[2048];
    snprintf(p, sizeof p, "%s/d.so", dir);
    copy_file(CPEX_PLUGIN_DIR "/libcounter.so", p);
    cpex_manager *m = manager();
    warnings = 0;
    assert_int_equal(load(m, p, 50, NULL, msg, sizeof msg), CPEX_OK);
    int before = warnings; /* 0, or 50 when the build tree itself is others-writable */
    assert_true(before == 0 || before == 50);
    /* made others-writable: the next load, within the window, warns for each */
    assert_int_equal(chmod(p, 0757), 0);
    warnings = 0;
    assert_int_equal(load(m, p, 3, NULL, msg, sizeof msg), CPEX_OK);
    assert_int_equal(warnings, 3);
    assert_int_equal(chmod(p, 0755), 0);

    /* a pin of the file, then the file swapped for another library */
    char pin[80];
    cpex_library_info *info = NULL;
    cpex_error err = CPEX_ERROR_INIT;
    assert_int_equal(cpex_library_describe(p, NULL, &info, &err), CPEX_OK);
    assert_non_null(info->sha256);
    snprintf(pin, sizeof pin, "%s", info->sha256);
    cpex_library_info_free(info);
    assert_int_equal(load(m, p, 2, pin, msg, sizeof msg), CPEX_OK);
    copy_file(CPEX_PLUGIN_DIR "/libslow.so", p);
    assert_int_not_equal(load(m, p, 2, pin, msg, sizeof msg), CPEX_OK);
    assert_non_null(strstr(msg, "does not match its pinned sha256"));
    cpex_manager_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reuse_while_unchanged),
        cmocka_unit_test(test_any_change_is_a_miss),
        cmocka_unit_test(test_guards_hold_within_the_window),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
