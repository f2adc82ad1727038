/*
 * test_state_redis.c — what the state slots do when Redis fails: down when
 * the host starts, killed mid-run and restarted on the same port, paused
 * (SIGSTOP: it accepts connections and answers nothing), refusing the
 * password; the outage logged once, counted, and service back when Redis
 * is. Every server is a real redis-server on a free loopback port, started
 * and stopped here. Time bounds are generous: the machine may be loaded.
 */
#include <stdlib.h>
#include <string.h>

#include "cpex/cpex.h"
#include "e2e.h"
#include "redis_server.h"
#include "state_ops.h"
#include "test_support.h"

static sop_log g_log = {PTHREAD_MUTEX_INITIALIZER, {{0}}, 0};

/* A manager with the redis backend at `url`, logging into g_log, with probe 0
   ("alpha", the default 30 s timeout) and probe 5 ("slow", 0.5 s). */
static cpex_manager *redis_mgr(const char *url, uint32_t command_ms, const char *password)
{
    cpex_manager_options o;
    cpex_manager_options_init(&o);
    o.log = sop_log_fn;
    o.log_user = &g_log;
    cpex_state_options so;
    cpex_state_options_init(&so);
    so.backend = CPEX_STATE_REDIS;
    so.url = url;
    so.command_timeout_ms = command_ms;
    so.connect_timeout_ms = 2000;
    so.password = password;
    o.state = &so;
    cpex_manager *m = NULL;
    cpex_error err = CPEX_ERROR_INIT;
    assert_int_equal(cpex_manager_new(&o, &m, &err), CPEX_OK);
    sop_add_probe(m, 0, "alpha", NULL, 0);
    sop_add_probe(m, 5, "slow", NULL, 0.5);
    assert_int_equal(cpex_manager_initialize(m, &err), CPEX_OK);
    return m;
}

static void reset_log(void)
{
    pthread_mutex_lock(&g_log.lock);
    g_log.count = 0;
    pthread_mutex_unlock(&g_log.lock);
}

static cpex_state_status status_of(cpex_manager *m)
{
    cpex_state_status st;
    memset(&st, 0, sizeof st);
    st.struct_size = (uint32_t)sizeof st;
    assert_int_equal(cpex_manager_state_status(m, 0, &st), CPEX_OK);
    return st;
}

/* Poll an incr in probe 0 until it succeeds, at most max_ms. */
static bool recovers(cpex_manager *m, const char *key, int64_t max_ms)
{
    int64_t start = sop_now_ms();
    for (int i = 0; i < 2000 && sop_now_ms() - start < max_ms; i++) {
        if (sop_do(m, 0, S_INCR(key, 1, 0)).st == CPEX_HOST_OK)
            return true;
        sop_sleep_ms(25);
    }
    return false;
}

/* Start srv (its `extra` arguments already set) on `port` (0: a free one), or fail the test. */
static void start_redis(test_redis *srv, int port)
{
    if (!test_redis_start(srv, port))
        fail_msg("%s", srv->error);
}

static bool is_failure(int32_t st)
{
    return st == CPEX_HOST_EUNAVAILABLE || st == CPEX_HOST_ETIMEOUT;
}

/* ------------------------------------------------------------------ */

/* Nothing listens at start: the manager is made and serves; the slots fail
   fast with EUNAVAILABLE, logged once; they work once Redis is up. */
static void down_at_start(void **state)
{
    (void)state;
    reset_log();
    int port = test_redis_free_port();
    char url[64];
    snprintf(url, sizeof url, "redis://127.0.0.1:%d", port);
    cpex_manager *m = redis_mgr(url, 1000, NULL);
    int64_t start = sop_now_ms();
    sop ops[20];
    for (int i = 0; i < 20; i++)
        ops[i] = (sop)S_INCR("n", 1, 0);
    SOP_RUN(m, 0, ops);
    for (int i = 0; i < 20; i++)
        assert_int_equal(ops[i].st, CPEX_HOST_EUNAVAILABLE);
    assert_true(sop_now_ms() - start < 5000); /* refused at once, then backoff: no waiting */
    if (sop_log_count(&g_log, "is unavailable") != 1)
        sop_log_dump(&g_log);
    assert_int_equal(sop_log_count(&g_log, "is unavailable"), 1);
    assert_int_equal(sop_log_count(&g_log, "first seen by plugin 'alpha'"), 1);
    cpex_state_status st = status_of(m);
    assert_int_equal(st.failures, 20);
    assert_int_equal(st.unavailable, 20);
    assert_int_equal(st.outages, 1);
    assert_true(st.failing);
    cpex_state_status_cleanup(&st);

    test_redis srv;
    memset(&srv, 0, sizeof srv);
    start_redis(&srv, port);
    assert_true(recovers(m, "n", 15000));
    assert_int_equal(sop_log_count(&g_log, "answers again, after"), 1);
    st = status_of(m);
    assert_false(st.failing);
    assert_int_equal(st.outages, 1);
    cpex_state_status_cleanup(&st);
    cpex_manager_free(m);
    test_redis_stop(&srv);
}

/* Killed mid-run: the documented statuses, no crash; back after a restart on the same port. */
static void killed_mid_run(void **state)
{
    (void)state;
    reset_log();
    test_redis srv;
    memset(&srv, 0, sizeof srv);
    start_redis(&srv, 0);
    cpex_manager *m = redis_mgr(srv.url, 2000, NULL);
    int ok_before = 0, failed_while_down = 0, other = 0;
    for (int i = 0; i < 150; i++) {
        if (i == 50)
            test_redis_kill(&srv);
        int32_t st = sop_do(m, 0, S_INCR("count", 1, 0)).st;
        if (i < 50)
            ok_before += st == CPEX_HOST_OK;
        else if (is_failure(st))
            failed_while_down++;
        else
            other++;
    }
    assert_int_equal(ok_before, 50);
    assert_int_equal(failed_while_down, 100);
    assert_int_equal(other, 0);
    if (sop_log_count(&g_log, "state backend") != 1)
        sop_log_dump(&g_log);
    assert_int_equal(sop_log_count(&g_log, "state backend"), 1);
    if (!test_redis_restart(&srv))
        fail_msg("%s", srv.error);
    assert_true(recovers(m, "count", 15000));
    /* no persistence: the restarted server counts from scratch */
    sop again = sop_do(m, 0, S_INCR("count", 1, 0));
    assert_int_equal(again.st, CPEX_HOST_OK);
    assert_true(again.value >= 1 && again.value < 50);
    assert_int_equal(sop_log_count(&g_log, "answers again, after"), 1);
    cpex_manager_free(m);
    test_redis_stop(&srv);
}

/* Paused (SIGSTOP): each slot returns ETIMEOUT within its bound — the
   call's deadline when that comes first, else the command timeout. */
static void paused_server_times_out(void **state)
{
    (void)state;
    reset_log();
    test_redis srv;
    memset(&srv, 0, sizeof srv);
    start_redis(&srv, 0);
    cpex_manager *by_deadline = redis_mgr(srv.url, 20000, NULL); /* slow probe: 0.5 s */
    cpex_manager *by_command = redis_mgr(srv.url, 300, NULL);    /* alpha: 30 s */
    assert_int_equal(sop_do(by_deadline, 5, S_INCR("p", 1, 0)).st, CPEX_HOST_OK);
    assert_int_equal(sop_do(by_command, 0, S_INCR("p", 1, 0)).st, CPEX_HOST_OK);
    test_redis_pause(&srv);

    sop a = sop_do(by_deadline, 5, S_INCR("p", 1, 0));
    assert_int_equal(a.st, CPEX_HOST_ETIMEOUT);
    assert_true(a.elapsed_ms >= 300); /* it waited for an answer... */
    assert_true(a.elapsed_ms < 3000); /* ...until the 0.5 s deadline, not the 20 s timeout */
    sop b = sop_do(by_command, 0, S_INCR("p", 1, 0));
    assert_int_equal(b.st, CPEX_HOST_ETIMEOUT);
    assert_true(b.elapsed_ms >= 200);
    assert_true(b.elapsed_ms < 3000); /* the 300 ms command timeout, not the 30 s deadline */
    /* a new connection to a paused server is accepted by the kernel, then times out too */
    sop c = sop_do(by_command, 0, S_GET("p"));
    assert_int_equal(c.st, CPEX_HOST_ETIMEOUT);
    assert_true(c.elapsed_ms < 3000);
    assert_int_equal(sop_log_count(&g_log, "did not answer in time"), 2); /* once per manager */

    test_redis_resume(&srv);
    assert_true(recovers(by_deadline, "p", 15000));
    assert_true(recovers(by_command, "p", 15000));
    cpex_state_status st = status_of(by_command);
    assert_int_equal(st.timeouts, 2);
    assert_false(st.failing);
    cpex_state_status_cleanup(&st);
    cpex_manager_free(by_deadline);
    cpex_manager_free(by_command);
    test_redis_stop(&srv);
}

/* A password (in the URL or as an option) and a database number. */
static void password_and_db(void **state)
{
    (void)state;
    reset_log();
    test_redis srv;
    memset(&srv, 0, sizeof srv);
    srv.extra[0] = "--requirepass";
    srv.extra[1] = "s3cret";
    start_redis(&srv, 0);
    char url[128];
    snprintf(url, sizeof url, "redis://:s3cret@127.0.0.1:%d/3", srv.port);
    cpex_manager *m = redis_mgr(url, 2000, NULL);
    assert_int_equal(sop_do(m, 0, S_SET("k", "v", 0)).st, CPEX_HOST_OK);
    assert_string_equal(sop_do(m, 0, S_GET("k")).text, "v");
    cpex_manager_free(m);
    /* the option wins over the URL's password */
    snprintf(url, sizeof url, "redis://:wrong@127.0.0.1:%d/3", srv.port);
    m = redis_mgr(url, 2000, "s3cret");
    assert_string_equal(sop_do(m, 0, S_GET("k")).text, "v"); /* same db 3 */
    cpex_manager_free(m);
    /* db 0 does not hold it */
    snprintf(url, sizeof url, "redis://:s3cret@127.0.0.1:%d", srv.port);
    m = redis_mgr(url, 2000, NULL);
    assert_int_equal(sop_do(m, 0, S_GET("k")).st, CPEX_HOST_ENOTFOUND);
    cpex_manager_free(m);
    /* a wrong password: unavailable, and the log says why */
    m = redis_mgr(url, 2000, "nope");
    assert_int_equal(sop_do(m, 0, S_GET("k")).st, CPEX_HOST_EUNAVAILABLE);
    assert_int_equal(sop_log_count(&g_log, "AUTH refused"), 1);
    cpex_manager_free(m);
    test_redis_stop(&srv);
}

/* The rate limiter with Redis down at start: the gateway loads and serves;
   on_state_error decides (deny by default, or allow). */
static void rate_limit_on_state_error(void **state)
{
    (void)state;
    int port = test_redis_free_port();
    char yaml[1024];
    const char *modes[] = {"", "      on_state_error: allow\n"};
    for (int i = 0; i < 2; i++) {
        snprintf(yaml, sizeof yaml,
                 "plugin_settings:\n"
                 "  state: { backend: redis, url: \"redis://127.0.0.1:%d\" }\n"
                 "plugins:\n"
                 "  - name: limiter\n"
                 "    kind: \"lib:%s\"\n"
                 "    hooks: [" E2E_PRE "]\n"
                 "    config:\n"
                 "      limit: 5\n"
                 "      window_seconds: 60\n%s",
                 port, E2E_LIB("rate_limit"), modes[i]);
        cpex_manager_options o;
        cpex_manager_options_init(&o);
        o.log = sop_log_fn;
        o.log_user = &g_log;
        cpex_manager *m = e2e_manager_new(&o);
        e2e_load_ok(m, yaml, "limits.yaml");
        e2e_initialize_ok(m);
        cpex_cmf_message *msg = e2e_tool_call_msg("c1", "search", "{}");
        cpex_pipeline_result r = CPEX_PIPELINE_RESULT_INIT;
        e2e_invoke_cmf(m, E2E_PRE, msg, NULL, NULL, &r);
        if (i == 0) {
            assert_denied(&r, "rate_limit_unavailable", "limiter");
            assert_contains(r.violation->reason, "on_state_error is deny");
        } else {
            assert_allowed(&r);
        }
        cpex_pipeline_result_cleanup(&r);
        cpex_cmf_free(msg);
        cpex_manager_free(m);
    }
}

int main(void)
{
    if (!test_redis_binary()) {
        print_error("redis-server not found: install the Debian package redis-server "
                    "(scripts/deps.sh test)\n");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(down_at_start),
        cmocka_unit_test(killed_mid_run),
        cmocka_unit_test(paused_server_times_out),
        cmocka_unit_test(password_and_db),
        cmocka_unit_test(rate_limit_on_state_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
