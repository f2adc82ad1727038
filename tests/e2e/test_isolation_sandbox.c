/*
 * test_isolation_sandbox.c — what an isolated plugin cannot do (seccomp,
 * Landlock, rlimits), each attempt made by the probe plugin
 * (tests/plugins/iso_probe.c) and answered with an error inside the
 * worker, while the host serves on. Where this process could do the same
 * thing (reading /etc/shadow as root, connecting to the test's port), the
 * case shows that first, so the refusal is the sandbox's doing.
 *
 * A kernel without Landlock turns the file cases into a skip with a
 * message (the worker starts anyway, with a warning; test_isolation_life.c
 * covers `require: true`).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "iso.h"

static cpex_manager *live;
static char dir[256];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/cpex-iso-sandbox-XXXXXX");
    assert_non_null(mkdtemp(dir));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    cpex_manager_free(live);
    live = NULL;
    assert_int_equal(test_remove_tree(dir), 0);
    return 0;
}

/* The probe tries `text`; its report (probe.result) must start with `want`. */
static void attempt(cpex_manager *m, const char *text, const char *want)
{
    e2e_outcome o;
    iso_call(m, text, NULL, NULL, &o);
    assert_allowed(&o.r);
    const char *got = iso_meta_str(&o.r, "probe.result");
    if (!got || strncmp(got, want, strlen(want)) != 0) {
        tp_print_result(&o.r);
        fail_msg("'%s': expected a result starting '%s', got '%s'", text, want,
                 got ? got : "(none)");
    }
    e2e_outcome_cleanup(&o);
}

/* What protections the worker reports (cpex check shows the same). */
static char *protections(cpex_manager *m)
{
    cpex_plugin_info info = CPEX_PLUGIN_INFO_INIT;
    assert_int_equal(cpex_manager_plugin_info(m, "probe", &info), CPEX_OK);
    char *p = strdup(info.isolation);
    cpex_plugin_info_cleanup(&info);
    assert_non_null(p);
    return p;
}

static int has_landlock(cpex_manager *m)
{
    char *p = protections(m);
    int yes = strstr(p, "landlock ABI") != NULL;
    free(p);
    return yes;
}

/* A manager with the probe in process, to show what it could do there. */
static cpex_manager *in_process(void)
{
    cpex_manager *m = iso_manager_new();
    char *yaml = e2e_yaml1("probe", "lib:" ISO_PROBE, "cmf.tool_pre_invoke", "");
    e2e_load_ok(m, yaml, "inproc.yaml");
    free(yaml);
    e2e_initialize_ok(m);
    return m;
}

static void test_protections_reported(void **state)
{
    (void)state;
    live = iso_probe_manager(NULL);
    char *p = protections(live);
    assert_contains(p, "no_new_privs");
    assert_contains(p, "seccomp allow-list (no sockets, exec, fork, ptrace, mount)");
    assert_contains(p, "no core dumps");
    free(p);
}

static void test_read_etc_shadow(void **state)
{
    (void)state;
    if (access("/etc/shadow", R_OK) == 0) { /* as root: this process can */
        cpex_manager *m = in_process();
        attempt(m, "read:/etc/shadow", "ok");
        cpex_manager_free(m);
    }
    live = iso_probe_manager(NULL);
    if (!has_landlock(live))
        skip();
    attempt(live, "read:/etc/shadow", "failed: Permission denied");
    attempt(live, "read:/etc/passwd", "failed: Permission denied");
    iso_expect_serving(live);
}

static void test_write_outside_write_paths(void **state)
{
    (void)state;
    char inside[300], outside[300], yaml[1000], call[400];
    snprintf(inside, sizeof inside, "%s/in", dir);
    snprintf(outside, sizeof outside, "%s/out", dir);
    assert_int_equal(mkdir(inside, 0700), 0);
    assert_int_equal(mkdir(outside, 0700), 0); /* exists: only the sandbox stands in the way */
    snprintf(yaml, sizeof yaml, "    sandbox: {write_paths: [\"%s\"], read_paths: [\"%s\"]}\n",
             inside, dir);
    live = iso_probe_manager(yaml);
    if (!has_landlock(live))
        skip();
    snprintf(call, sizeof call, "write:%s/file", outside);
    attempt(live, call, "failed: Permission denied");
    snprintf(call, sizeof call, "write:%s/file", dir);
    attempt(live, call, "failed: Permission denied"); /* read_paths do not grant writes */
    snprintf(call, sizeof call, "write:%s/file", inside);
    attempt(live, call, "ok");
    snprintf(call, sizeof call, "%s/file", inside);
    assert_int_equal(access(call, F_OK), 0);
    snprintf(call, sizeof call, "write:/tmp/cpex-iso-escape-%d", (int)getpid());
    attempt(live, call, "failed: Permission denied");
    iso_expect_serving(live);
}

/* A listening socket on a free loopback port; its port in *port. */
static int listener(int *port)
{
    int s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    assert_true(s >= 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(s, 4), 0);
    socklen_t len = sizeof a;
    assert_int_equal(getsockname(s, (struct sockaddr *)&a, &len), 0);
    *port = ntohs(a.sin_port);
    return s;
}

static int accepted(int s)
{
    int c = accept(s, NULL, NULL);
    if (c >= 0)
        close(c);
    return c >= 0;
}

static void test_connect_to_loopback(void **state)
{
    (void)state;
    int port = 0;
    int s = listener(&port);
    char call[64];
    snprintf(call, sizeof call, "connect:%d", port);
    live = iso_probe_manager(NULL);
    attempt(live, call, "failed: Operation not permitted");
    assert_false(accepted(s));
    iso_expect_serving(live);
    cpex_manager_free(live);
    /* network: true lets it through: the refusal was the sandbox. */
    live = iso_probe_manager("    sandbox: {network: true}\n");
    attempt(live, call, "ok");
    for (int i = 0; i < 200 && !accepted(s); i++)
        usleep(10000);
    close(s);
}

static void test_exec_bin_sh(void **state)
{
    (void)state;
    live = iso_probe_manager(NULL);
    attempt(live, "exec", "failed: Operation not permitted");
    iso_expect_serving(live);
}

static void test_fork(void **state)
{
    (void)state;
    live = iso_probe_manager(NULL);
    attempt(live, "fork", "failed: Operation not permitted");
    attempt(live, "thread", "ok"); /* threads are allowed */
    iso_expect_serving(live);
}

static void test_signal_the_host(void **state)
{
    (void)state;
    live = iso_probe_manager(NULL);
    attempt(live, "kill_parent", "failed: Operation not permitted");
    iso_expect_serving(live); /* and this process is still here to check */
}

static void test_allocate_10_gb(void **state)
{
    (void)state;
    live = iso_probe_manager("    sandbox: {memory_mb: 256}\n");
    char *p = protections(live);
    int limited = strstr(p, "data 256 MiB") != NULL;
    free(p);
    if (!limited) /* a sanitizer build keeps memory limits off: touching 10 GB would hurt */
        skip();
    attempt(live, "alloc:10240", "failed: Cannot allocate memory");
    attempt(live, "alloc:64", "ok"); /* within the limit */
    iso_expect_serving(live);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_protections_reported, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_etc_shadow, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_outside_write_paths, setup, teardown),
        cmocka_unit_test_setup_teardown(test_connect_to_loopback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exec_bin_sh, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fork, setup, teardown),
        cmocka_unit_test_setup_teardown(test_signal_the_host, setup, teardown),
        cmocka_unit_test_setup_teardown(test_allocate_10_gb, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
