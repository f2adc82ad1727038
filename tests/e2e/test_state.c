/*
 * test_state.c — the state slots' behaviour, written once and run against
 * both backends: the memory backend, and a real redis-server started on a
 * free loopback port (stopped after; never a system Redis). Every test
 * runs its operations inside real handler calls, through the host table,
 * as a plugin would. Failure behaviour (Redis down, killed, paused) is in
 * test_state_redis.c; replicas as processes in tests/scripts.
 */
#include <stdlib.h>
#include <string.h>

#include "cpex/cpex.h"
#include "redis_server.h"
#include "state_ops.h"
#include "test_support.h"

typedef struct backend {
    bool redis;
    test_redis srv;
} backend;

static backend *B;

/* A manager on the group's backend with the probes every test uses:
   0 alpha, 1 beta (own namespaces), 2 gamma and 3 delta (namespace
   "shared"), 4 a name that is no valid namespace, 5 slow (timeout 0.2 s). */
static cpex_manager *mgr(void)
{
    cpex_manager_options o;
    cpex_manager_options_init(&o);
    cpex_state_options so;
    cpex_state_options_init(&so);
    if (B->redis) {
        so.backend = CPEX_STATE_REDIS;
        so.url = B->srv.url;
        so.command_timeout_ms = 5000; /* a loaded machine is no failure here */
        so.connect_timeout_ms = 5000;
    }
    o.state = &so;
    cpex_manager *m = NULL;
    cpex_error err = CPEX_ERROR_INIT;
    assert_int_equal(cpex_manager_new(&o, &m, &err), CPEX_OK);
    sop_add_probe(m, 0, "alpha", NULL, 0);
    sop_add_probe(m, 1, "beta", NULL, 0);
    sop_add_probe(m, 2, "gamma", "shared", 0);
    sop_add_probe(m, 3, "delta", "shared", 0);
    sop_add_probe(m, 4, "we ird/n%me", NULL, 0);
    sop_add_probe(m, 5, "slow", NULL, 0.2);
    assert_int_equal(cpex_manager_initialize(m, &err), CPEX_OK);
    return m;
}

static int setup_memory(void **state)
{
    static backend mem = {false, {0}};
    B = &mem;
    *state = B;
    return 0;
}

static int setup_redis(void **state)
{
    static backend r = {true, {0}};
    B = &r;
    *state = B;
    if (!test_redis_start(&r.srv, 0)) {
        print_error("cannot start redis-server: %s\n", r.srv.error);
        return -1;
    }
    return 0;
}

static int teardown_redis(void **state)
{
    (void)state;
    test_redis_stop(&B->srv);
    return 0;
}

/* Every test starts from an empty store. */
static int each(void **state)
{
    (void)state;
    if (B->redis) {
        char out[64];
        const char *argv[] = {"FLUSHALL"};
        if (!test_redis_query(&B->srv, out, sizeof out, 1, argv))
            return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ */

static void set_get_delete(void **state)
{
    (void)state;
    cpex_manager *m = mgr();
    static const char bin[] = {'a', '\0', 'b'};
    sop ops[] = {
        S_SET("k", "hello", 0),
        S_GET("k"),
        S_SET("k", "world!", 0),
        S_GET("k"),
        {.kind = SOP_SET, .key = "bin", .val = bin, .len = 3},
        S_GET("bin"),
        S_GET("missing"),
        S_DEL("k"),
        S_DEL("k"),
        S_GET("k"),
        S_SET("empty", "", 0),
        S_GET("empty"),
    };
    SOP_RUN(m, 0, ops);
    assert_int_equal(ops[0].st, CPEX_HOST_OK);
    assert_int_equal(ops[1].st, CPEX_HOST_OK);
    assert_string_equal(ops[1].text, "hello");
    assert_string_equal(ops[3].text, "world!");
    assert_int_equal(ops[5].st, CPEX_HOST_OK);
    assert_int_equal(ops[5].text_len, 3);
    assert_memory_equal(ops[5].text, bin, 3);
    assert_int_equal(ops[6].st, CPEX_HOST_ENOTFOUND);
    assert_int_equal(ops[7].st, CPEX_HOST_OK);
    assert_int_equal(ops[8].st, CPEX_HOST_ENOTFOUND);
    assert_int_equal(ops[9].st, CPEX_HOST_ENOTFOUND);
    assert_int_equal(ops[11].st, CPEX_HOST_OK);
    assert_int_equal(ops[11].text_len, 0);
    cpex_manager_free(m);
}

static void counters(void **state)
{
    (void)state;
    cpex_manager *m = mgr();
    sop ops[] = {
        S_INCR("n", 1, 0),
        S_INCR("n", 5, 0),
        S_INCR("n", -10, 0),
        S_GET("n"),
        S_SET("t", "41", 0),
        S_INCR("t", 1, 0),
        S_GET("t"),
        S_SET("x", "abc", 0),
        S_INCR("x", 1, 0),
        S_SET("lz", "007", 0),
        S_INCR("lz", 1, 0),
        S_SET("big", "9223372036854775807", 0),
        S_INCR("big", 1, 0),
        S_GET("big"),
        S_SET("neg", "-9223372036854775808", 0),
        S_INCR("neg", -1, 0),
        S_INCR("neg", 1, 0),
    };
    SOP_RUN(m, 0, ops);
    assert_int_equal(ops[0].st, CPEX_HOST_OK);
    assert_int_equal(ops[0].value, 1);
    assert_int_equal(ops[0].left, -1); /* no ttl: never expires */
    assert_int_equal(ops[1].value, 6);
    assert_int_equal(ops[2].value, -4);
    assert_string_equal(ops[3].text, "-4"); /* a counter reads as its decimal text */
    assert_int_equal(ops[5].st, CPEX_HOST_OK);
    assert_int_equal(ops[5].value, 42);
    assert_string_equal(ops[6].text, "42");
    assert_int_equal(ops[8].st, CPEX_HOST_ETYPE);
    assert_int_equal(ops[10].st, CPEX_HOST_ETYPE);            /* "007" is not an integer's text */
    assert_int_equal(ops[12].st, CPEX_HOST_EINVAL);           /* overflow */
    assert_string_equal(ops[13].text, "9223372036854775807"); /* unchanged */
    assert_int_equal(ops[15].st, CPEX_HOST_EINVAL);
    assert_int_equal(ops[16].st, CPEX_HOST_OK);
    assert_int_equal(ops[16].value, INT64_MIN + 1);
    cpex_manager_free(m);
}

static void sets(void **state)
{
    (void)state;
    cpex_manager *m = mgr();
    sop ops[] = {
        S_ADD("s", "b", 0),   S_ADD("s", "a", 0), S_ADD("s", "b", 0),        S_MEMBERS("s"),
        S_MEMBERS("none"),    S_GET("s"),         S_INCR("s", 1, 0),         S_SET("txt", "x", 0),
        S_ADD("txt", "m", 0), S_MEMBERS("txt"),   S_SET("s", "now text", 0), S_GET("s"),
        S_ADD("e", "", 0),    S_MEMBERS("e"),
    };
    SOP_RUN(m, 0, ops);
    assert_int_equal(ops[0].st, CPEX_HOST_OK);
    assert_int_equal(ops[2].st, CPEX_HOST_OK); /* a second add keeps one */
    assert_int_equal(ops[3].st, CPEX_HOST_OK);
    assert_int_equal(ops[3].count, 2);
    assert_string_equal(ops[3].text, "a,b");
    assert_int_equal(ops[4].st, CPEX_HOST_OK); /* a missing set is an empty one */
    assert_int_equal(ops[4].count, 0);
    assert_int_equal(ops[5].st, CPEX_HOST_ETYPE);
    assert_int_equal(ops[6].st, CPEX_HOST_ETYPE);
    assert_int_equal(ops[8].st, CPEX_HOST_ETYPE);
    assert_int_equal(ops[9].st, CPEX_HOST_ETYPE);
    assert_int_equal(ops[10].st, CPEX_HOST_OK); /* set replaces a value of any kind */
    assert_string_equal(ops[11].text, "now text");
    assert_int_equal(ops[13].count, 1);
    cpex_manager_free(m);

    /* Many members stay ordered and unique (the memory backend keeps them sorted). */
    m = mgr();
    sop many[300];
    char names[300][8];
    for (int i = 0; i < 300; i++) {
        snprintf(names[i], sizeof names[i], "m%03d", (i * 7) % 150); /* each name twice */
        many[i] = (sop)S_ADD("big", names[i], 0);
    }
    SOP_RUN(m, 0, many);
    sop all = sop_do(m, 0, S_MEMBERS("big"));
    assert_int_equal(all.count, 150);
    assert_true(strncmp(all.text, "m000,m001,m002,", 15) == 0);
    cpex_manager_free(m);
}

/* Poll `o` in calls of probe 0 until its status is `want`, at most `max_ms`;
   the time it took, or -1. */
static int64_t wait_status(cpex_manager *m, sop o, int32_t want, int64_t max_ms)
{
    int64_t start = sop_now_ms();
    for (int i = 0; i < 1000; i++) {
        if (sop_do(m, 0, o).st == want)
            return sop_now_ms() - start;
        if (sop_now_ms() - start > max_ms)
            break;
        sop_sleep_ms(20);
    }
    return -1;
}

static void ttls(void **state)
{
    (void)state;
    cpex_manager *m = mgr();
    /* set with a ttl: there, then gone */
    int64_t t0 = sop_now_ms();
    assert_int_equal(sop_do(m, 0, S_SET("v", "x", 300)).st, CPEX_HOST_OK);
    sop early = sop_do(m, 0, S_GET("v"));
    if (sop_now_ms() - t0 < 250)
        assert_int_equal(early.st, CPEX_HOST_OK);
    assert_true(wait_status(m, S_GET("v"), CPEX_HOST_ENOTFOUND, 10000) >= 0);
    assert_true(sop_now_ms() - t0 >= 250);
    /* set without a ttl removes an earlier one */
    sop_do(m, 0, S_SET("w", "x", 200));
    sop_do(m, 0, S_SET("w", "y", 0));
    sop_sleep_ms(400);
    assert_string_equal(sop_do(m, 0, S_GET("w")).text, "y");

    /* incr: the ttl is set when the key is created, never after */
    sop a = sop_do(m, 0, S_INCR("c", 1, 1500));
    assert_int_equal(a.value, 1);
    assert_true(a.left > 0 && a.left <= 1500);
    sop b = sop_do(m, 0, S_INCR("c", 1, 600000));
    assert_int_equal(b.value, 2);
    assert_true(b.left > 0 && b.left <= 1500); /* not the 600 s of the second call */
    assert_true(wait_status(m, S_GET("c"), CPEX_HOST_ENOTFOUND, 10000) >= 0);
    sop c = sop_do(m, 0, S_INCR("c", 1, 1500));
    assert_int_equal(c.value, 1); /* a new window */

    /* set_add: a ttl > 0 sets the set's time to live on every add; 0 leaves it */
    sop_do(m, 0, S_ADD("s", "a", 300));
    sop_do(m, 0, S_ADD("s", "b", 0));
    assert_true(wait_status(m, S_MEMBERS("s"), CPEX_HOST_OK, 10) >= 0);
    int64_t start = sop_now_ms();
    for (int i = 0; i < 200 && sop_do(m, 0, S_MEMBERS("s")).count != 0; i++)
        sop_sleep_ms(20);
    assert_int_equal(sop_do(m, 0, S_MEMBERS("s")).count, 0);
    assert_true(sop_now_ms() - start < 10000);
    sop_do(m, 0, S_ADD("r", "a", 600000));
    sop_do(m, 0, S_ADD("r", "b", 200)); /* shortens it: the last add's ttl wins */
    for (int i = 0; i < 200 && sop_do(m, 0, S_MEMBERS("r")).count != 0; i++)
        sop_sleep_ms(20);
    assert_int_equal(sop_do(m, 0, S_MEMBERS("r")).count, 0);
    cpex_manager_free(m);
}

static void namespaces(void **state)
{
    (void)state;
    cpex_manager *m = mgr();
    assert_int_equal(sop_do(m, 0, S_SET("k", "from alpha", 0)).st, CPEX_HOST_OK);
    assert_int_equal(sop_do(m, 1, S_SET("k", "from beta", 0)).st, CPEX_HOST_OK);
    assert_string_equal(sop_do(m, 0, S_GET("k")).text, "from alpha");
    assert_string_equal(sop_do(m, 1, S_GET("k")).text, "from beta");
    /* gamma and delta name the same namespace: they share */
    assert_int_equal(sop_do(m, 2, S_INCR("budget", 1, 0)).value, 1);
    assert_int_equal(sop_do(m, 3, S_INCR("budget", 1, 0)).value, 2);
    assert_int_equal(sop_do(m, 0, S_GET("budget")).st, CPEX_HOST_ENOTFOUND);
    /* a key that looks like another namespace stays in its own */
    assert_int_equal(sop_do(m, 0, S_SET("shared:budget", "x", 0)).st, CPEX_HOST_OK);
    assert_int_equal(sop_do(m, 2, S_INCR("budget", 1, 0)).value, 3);
    /* a name that is no valid namespace still gets its own */
    assert_int_equal(sop_do(m, 4, S_SET("k", "odd", 0)).st, CPEX_HOST_OK);
    assert_string_equal(sop_do(m, 4, S_GET("k")).text, "odd");
    assert_string_equal(sop_do(m, 0, S_GET("k")).text, "from alpha");
    if (B->redis) {
        /* what an operator sees in Redis: <prefix><namespace>:<key> */
        char out[128];
        const char *get[] = {"GET", "cpex:alpha:k"};
        assert_true(test_redis_query(&B->srv, out, sizeof out, 2, get));
        assert_string_equal(out, "from alpha");
        const char *get2[] = {"GET", "cpex:shared:budget"};
        assert_true(test_redis_query(&B->srv, out, sizeof out, 2, get2));
        assert_string_equal(out, "3");
        const char *get3[] = {"GET", "cpex:we%20ird%2Fn%25me:k"};
        assert_true(test_redis_query(&B->srv, out, sizeof out, 2, get3));
        assert_string_equal(out, "odd");
    }
    cpex_manager_free(m);
}

static void bad_arguments(void **state)
{
    (void)state;
    cpex_manager *m = mgr();
    char long_key[CPEX_STATE_KEY_MAX + 2];
    memset(long_key, 'k', sizeof long_key - 1);
    long_key[sizeof long_key - 1] = '\0';
    char max_key[CPEX_STATE_KEY_MAX + 1];
    memset(max_key, 'k', sizeof max_key - 1);
    max_key[sizeof max_key - 1] = '\0';
    char *big = calloc(1, CPEX_STATE_VALUE_MAX + 1);
    assert_non_null(big);
    sop ops[] = {
        S_GET(""),
        S_GET("a b"),
        S_GET("a\nb"),
        S_GET("tab\t"),
        S_GET("del\x7f"),
        S_GET(long_key),
        S_SET(max_key, "ok", 0),
        S_GET(max_key),
        {.kind = SOP_SET, .key = "v", .val = big, .len = CPEX_STATE_VALUE_MAX + 1},
        {.kind = SOP_SET, .key = "v", .val = big, .len = CPEX_STATE_VALUE_MAX},
        S_SET("v", "x", -1),
        S_SET("v", "x", CPEX_STATE_TTL_MAX_MS + 1),
        S_INCR("n", 1, -5),
        {.kind = SOP_ADD, .key = "s", .val = big, .len = CPEX_STATE_MEMBER_MAX + 1},
        {.kind = SOP_SET, .key = "v", .val = NULL, .len = 3},
        S_GET("\xc3\xa9t\xc3\xa9:utf-8"),
    };
    SOP_RUN(m, 0, ops);
    for (int i = 0; i <= 5; i++)
        assert_int_equal(ops[i].st, CPEX_HOST_EINVAL);
    assert_int_equal(ops[6].st, CPEX_HOST_OK);
    assert_string_equal(ops[7].text, "ok");
    assert_int_equal(ops[8].st, CPEX_HOST_EINVAL);
    assert_int_equal(ops[9].st, CPEX_HOST_OK);
    for (int i = 10; i <= 14; i++)
        assert_int_equal(ops[i].st, CPEX_HOST_EINVAL);
    assert_int_equal(ops[15].st, CPEX_HOST_ENOTFOUND); /* bytes >= 0x80 are fine */
    free(big);

    /* Outside a call, or with a call that is not the host's: refused. */
    const cpex_host_api *h = cpex_host_api_get();
    cpex_str v = {"x", 1};
    assert_int_equal(h->state_get(NULL, "k", &v), CPEX_HOST_EINVAL);
    assert_null(v.ptr);
    cpex_call fake;
    memset(&fake, 0, sizeof fake);
    int64_t n = 0;
    assert_int_equal(h->state_incr(&fake, "k", 1, 0, &n, NULL), CPEX_HOST_EINVAL);
    assert_int_equal(h->state_set(&fake, "k", "v", 1, 0), CPEX_HOST_EINVAL);
    assert_int_equal(h->state_delete(&fake, "k"), CPEX_HOST_EINVAL);
    assert_int_equal(h->state_set_add(&fake, "k", "v", 1, 0), CPEX_HOST_EINVAL);
    cpex_str *members = (cpex_str *)&v;
    size_t count = 7;
    assert_int_equal(h->state_set_members(&fake, "k", &members, &count), CPEX_HOST_EINVAL);
    assert_null(members);
    assert_int_equal(count, 0);
    cpex_manager_free(m);
}

/* 8 threads of one call increment one key: no update is lost. */
static void threads_lose_nothing(void **state)
{
    (void)state;
    cpex_manager *m = mgr();
    sop fan = {.kind = SOP_FANOUT, .key = "hits", .num = 250, .threads = 8};
    sop_run(m, 0, &fan, 1);
    assert_int_equal(fan.fanout_failures, 0);
    sop got = sop_do(m, 0, S_GET("hits"));
    assert_string_equal(got.text, "2000");
    cpex_manager_free(m);
}

/* A slot called after the call's deadline returns ETIMEOUT at once. */
static void past_deadline(void **state)
{
    (void)state;
    cpex_manager *m = mgr();
    sop ops[] = {S_SLEEP(400), S_INCR("late", 1, 0), S_GET("late")};
    SOP_RUN(m, 5, ops); /* probe 5 has a 0.2 s timeout */
    assert_int_equal(ops[1].st, CPEX_HOST_ETIMEOUT);
    assert_true(ops[1].elapsed_ms < 100);
    assert_int_equal(ops[2].st, CPEX_HOST_ETIMEOUT);
    assert_int_equal(sop_do(m, 0, S_GET("late")).st, CPEX_HOST_ENOTFOUND); /* nothing done */
    cpex_manager_free(m);
}

static void status_query(void **state)
{
    (void)state;
    cpex_manager *m = mgr();
    sop_do(m, 0, S_INCR("a", 1, 0));
    sop_do(m, 0, S_GET("a"));
    cpex_state_status st;
    memset(&st, 0, sizeof st);
    st.struct_size = (uint32_t)sizeof st;
    assert_int_equal(cpex_manager_state_status(m, 5.0, &st), CPEX_OK);
    assert_int_equal(st.backend, B->redis ? CPEX_STATE_REDIS : CPEX_STATE_MEMORY);
    assert_string_equal(st.origin, "host options");
    assert_true(st.probed && st.answers);
    assert_contains(st.message, B->redis ? "answered a PING" : "in this process");
    assert_contains(st.description, B->redis ? "redis 127.0.0.1:" : "memory");
    assert_true(st.calls >= 3);
    assert_int_equal(st.failures, 0);
    assert_false(st.failing);
    if (!B->redis)
        assert_int_equal(st.keys, 1);
    cpex_state_status_cleanup(&st);
    cpex_manager_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(set_get_delete, each),
        cmocka_unit_test_setup(counters, each),
        cmocka_unit_test_setup(sets, each),
        cmocka_unit_test_setup(ttls, each),
        cmocka_unit_test_setup(namespaces, each),
        cmocka_unit_test_setup(bad_arguments, each),
        cmocka_unit_test_setup(threads_lose_nothing, each),
        cmocka_unit_test_setup(past_deadline, each),
        cmocka_unit_test_setup(status_query, each),
    };
    int failed = cmocka_run_group_tests_name("state on memory", tests, setup_memory, NULL);
    failed += cmocka_run_group_tests_name("state on redis", tests, setup_redis, teardown_redis);
    return failed;
}
