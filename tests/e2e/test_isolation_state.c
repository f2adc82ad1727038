/*
 * test_isolation_state.c — the state slots of a plugin in a worker process
 * (isolation: process). The state is the host's: an isolated probe and
 * one in process, in the same namespace, count on the same keys, on the
 * memory backend and on a real redis-server (started on a free loopback
 * port, stopped after). Each slot crosses as an upcall (proto.h); these
 * tests run every slot that way, from the handler's thread and from
 * threads of its own, with values at the slots' limits, and with the
 * backend gone.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "iso.h"
#include "redis_server.h"

#define PROBE E2E_LIB("state_probe")

typedef struct group {
    bool redis;
    test_redis srv;
} group;

static group *G;
static cpex_manager *M;

/* "iso" (isolated) and "near" (in process) on hook state.op, both in
   namespace "shared". */
static cpex_manager *manager(void)
{
    cpex_manager_options o;
    cpex_manager_options_init(&o);
    o.worker_path = ISO_WORKER;
    o.log = iso_quiet;
    cpex_state_options so;
    cpex_state_options_init(&so);
    if (G->redis) {
        so.backend = CPEX_STATE_REDIS;
        so.url = G->srv.url;
        so.command_timeout_ms = 3000;
        so.connect_timeout_ms = 3000;
    }
    o.state = &so;
    cpex_manager *m = e2e_manager_new(&o);
    char *y = NULL;
    assert_true(asprintf(&y,
                         "plugins:\n"
                         "  - name: iso\n"
                         "    kind: \"lib:%s\"\n"
                         "    hooks: [state.op]\n"
                         "    priority: 10\n"
                         "    timeout: 20\n"
                         "    state_namespace: shared\n"
                         "    isolation: process\n"
                         "  - name: near\n"
                         "    kind: \"lib:%s\"\n"
                         "    hooks: [state.op]\n"
                         "    priority: 20\n"
                         "    state_namespace: shared\n",
                         PROBE, PROBE) > 0);
    e2e_load_ok(m, y, "state.yaml");
    free(y);
    e2e_initialize_ok(m);
    return m;
}

/* Invoke state.op with {"ops": ops}; the metadata "state" array (a new reference). */
static json_t *run(const char *ops)
{
    char *doc = NULL;
    assert_true(asprintf(&doc, "{\"ops\": %s}", ops) > 0);
    json_error_t je;
    json_t *payload = json_loads(doc, 0, &je);
    free(doc);
    assert_non_null(payload);
    cpex_payload p = cpex_payload_json(payload);
    cpex_pipeline_result r = CPEX_PIPELINE_RESULT_INIT;
    cpex_manager_invoke(M, "state.op", &p, NULL, NULL, &r);
    if (r.error_count)
        print_error("errors: %s\n", r.errors[0].message);
    assert_int_equal(r.error_count, 0);
    assert_true(r.continue_processing);
    json_t *st = r.metadata ? json_object_get(r.metadata, "state") : NULL;
    assert_non_null(st);
    json_incref(st);
    cpex_pipeline_result_cleanup(&r);
    json_decref(payload);
    return st;
}

static json_int_t field_int(json_t *results, size_t i, const char *key)
{
    json_t *v = json_object_get(json_array_get(results, i), key);
    if (!json_is_integer(v)) {
        char *t = json_dumps(results, 0);
        print_error("no integer '%s' in result %zu of %s\n", key, i, t);
        free(t);
    }
    assert_true(json_is_integer(v));
    return json_integer_value(v);
}

static int setup_memory(void **state)
{
    (void)state;
    static group g;
    G = &g;
    return 0;
}

static int setup_redis(void **state)
{
    (void)state;
    static group g;
    g.redis = true;
    if (!test_redis_binary()) {
        print_error("redis-server is not installed (the README's test command installs it)\n");
        return -1;
    }
    if (!test_redis_start(&g.srv, 0)) {
        print_error("redis-server did not start: %s\n", g.srv.error);
        return -1;
    }
    G = &g;
    return 0;
}

static int teardown_redis(void **state)
{
    (void)state;
    test_redis_stop(&G->srv);
    return 0;
}

static int each_setup(void **state)
{
    (void)state;
    M = manager();
    return 0;
}

static int each_teardown(void **state)
{
    (void)state;
    cpex_manager_free(M);
    M = NULL;
    if (G->redis) { /* a clean slate for the next test */
        char buf[64];
        const char *argv[] = {"FLUSHALL"};
        test_redis_query(&G->srv, buf, sizeof buf, 1, argv);
    }
    return 0;
}

/* Both count on one key: the worker's slots reach the host's backend. */
static void shared_with_in_process(void **state)
{
    (void)state;
    json_t *a = run("[{\"op\":\"incr\",\"key\":\"hits\",\"delta\":5,\"ttl_ms\":60000,"
                    "\"only\":\"iso\"}]");
    assert_int_equal(field_int(a, 0, "status"), CPEX_HOST_OK);
    assert_int_equal(field_int(a, 0, "value"), 5);
    json_int_t left = field_int(a, 0, "left_ms");
    assert_true(left > 0 && left <= 60000);
    json_decref(a);
    json_t *b = run("[{\"op\":\"incr\",\"key\":\"hits\",\"only\":\"near\"}]");
    assert_int_equal(field_int(b, 0, "value"), 6);
    json_decref(b);
    json_t *c = run("[{\"op\":\"get\",\"key\":\"hits\",\"only\":\"iso\"}]");
    assert_int_equal(field_int(c, 0, "status"), CPEX_HOST_OK);
    assert_string_equal(json_string_value(json_object_get(json_array_get(c, 0), "text")), "6");
    json_decref(c);
}

/* Slots called from the plugin's own threads during the call: every
   increment lands, none is lost or doubled. */
static void threads_of_the_plugin(void **state)
{
    (void)state;
    json_t *a = run("[{\"op\":\"fanout\",\"key\":\"n\",\"threads\":4,\"count\":250,"
                    "\"only\":\"iso\"},"
                    "{\"op\":\"get\",\"key\":\"n\",\"only\":\"iso\"}]");
    assert_int_equal(field_int(a, 0, "failures"), 0);
    assert_string_equal(json_string_value(json_object_get(json_array_get(a, 1), "text")), "1000");
    json_decref(a);
}

/* Every slot, and the sizes at and past the limits, answer as in process. */
static void every_slot_and_the_limits(void **state)
{
    (void)state;
    size_t big = CPEX_STATE_VALUE_MAX;
    char *value = malloc(big + 2);
    assert_non_null(value);
    memset(value, 'v', big + 1);
    value[big + 1] = '\0';
    char *ops = NULL;
    /* at the limit, then one byte past it */
    assert_true(asprintf(&ops,
                         "[{\"op\":\"set\",\"key\":\"blob\",\"value\":\"%.*s\",\"only\":\"iso\"},"
                         "{\"op\":\"set\",\"key\":\"blob2\",\"value\":\"%s\",\"only\":\"iso\"},"
                         "{\"op\":\"get\",\"key\":\"blob\",\"only\":\"iso\"}]",
                         (int)big, value, value) > 0);
    free(value);
    json_t *a = run(ops);
    free(ops);
    assert_int_equal(field_int(a, 0, "status"), CPEX_HOST_OK);
    assert_int_equal(field_int(a, 1, "status"), CPEX_HOST_EINVAL);
    assert_int_equal(field_int(a, 2, "status"), CPEX_HOST_OK);
    assert_int_equal(json_string_length(json_object_get(json_array_get(a, 2), "text")), big);
    json_decref(a);

    json_t *b = run("[{\"op\":\"add\",\"key\":\"who\",\"member\":\"alice\",\"only\":\"iso\"},"
                    "{\"op\":\"add\",\"key\":\"who\",\"member\":\"bob\",\"only\":\"iso\"},"
                    "{\"op\":\"add\",\"key\":\"who\",\"member\":\"alice\",\"only\":\"iso\"},"
                    "{\"op\":\"members\",\"key\":\"who\",\"only\":\"iso\"},"
                    "{\"op\":\"members\",\"key\":\"nobody\",\"only\":\"iso\"},"
                    "{\"op\":\"delete\",\"key\":\"who\",\"only\":\"iso\"},"
                    "{\"op\":\"delete\",\"key\":\"who\",\"only\":\"iso\"},"
                    "{\"op\":\"get\",\"key\":\"who\",\"only\":\"iso\"},"
                    "{\"op\":\"incr\",\"key\":\"blob\",\"only\":\"iso\"}]");
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(field_int(b, i, "status"), CPEX_HOST_OK);
    json_t *members = json_object_get(json_array_get(b, 3), "members");
    assert_int_equal(json_array_size(members), 2);
    const char *m0 = json_string_value(json_array_get(members, 0));
    const char *m1 = json_string_value(json_array_get(members, 1));
    assert_true((strcmp(m0, "alice") == 0 && strcmp(m1, "bob") == 0) ||
                (strcmp(m0, "bob") == 0 && strcmp(m1, "alice") == 0));
    assert_int_equal(field_int(b, 4, "status"), CPEX_HOST_OK);
    assert_int_equal(json_array_size(json_object_get(json_array_get(b, 4), "members")), 0);
    assert_int_equal(field_int(b, 5, "status"), CPEX_HOST_OK);
    assert_int_equal(field_int(b, 6, "status"), CPEX_HOST_ENOTFOUND);
    assert_int_equal(field_int(b, 7, "status"), CPEX_HOST_ENOTFOUND);
    assert_int_equal(field_int(b, 8, "status"), CPEX_HOST_ETYPE); /* text, not a counter */
    json_decref(b);
}

/* A key the host refuses is refused the same way on both sides. */
static void bad_keys_as_in_process(void **state)
{
    (void)state;
    const char *keys[] = {"has space", "tab\\there", "del\\u007f"};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
        char *ops = NULL;
        assert_true(asprintf(&ops,
                             "[{\"op\":\"incr\",\"key\":\"%s\",\"only\":\"iso\"},"
                             "{\"op\":\"incr\",\"key\":\"%s\",\"only\":\"near\"}]",
                             keys[i], keys[i]) > 0);
        /* two probes, two metadata writes: the later one (near) is what the
           result holds, so ask each in its own invoke */
        json_t *a = run(ops);
        assert_int_equal(field_int(a, 0, "status"), CPEX_HOST_EINVAL);
        json_decref(a);
        free(ops);
        assert_true(asprintf(&ops, "[{\"op\":\"incr\",\"key\":\"%s\",\"only\":\"iso\"}]", keys[i]) >
                    0);
        a = run(ops);
        assert_int_equal(field_int(a, 0, "status"), CPEX_HOST_EINVAL);
        json_decref(a);
        free(ops);
    }
}

/* Redis gone: the isolated plugin gets the backend's status within its
   timeout and decides; back again, the counts go on. */
static void backend_down_and_back(void **state)
{
    (void)state;
    json_t *a = run("[{\"op\":\"incr\",\"key\":\"k\",\"only\":\"iso\"}]");
    assert_int_equal(field_int(a, 0, "value"), 1);
    json_decref(a);
    test_redis_kill(&G->srv);
    a = run("[{\"op\":\"incr\",\"key\":\"k\",\"only\":\"iso\"}]");
    json_int_t st = field_int(a, 0, "status");
    assert_true(st == CPEX_HOST_EUNAVAILABLE || st == CPEX_HOST_ETIMEOUT);
    json_decref(a);
    assert_true(test_redis_restart(&G->srv));
    /* reconnects with backoff: bounded wait for the first success */
    bool ok = false;
    for (int i = 0; i < 100 && !ok; i++) {
        a = run("[{\"op\":\"incr\",\"key\":\"k2\",\"only\":\"iso\"}]");
        ok = field_int(a, 0, "status") == CPEX_HOST_OK;
        json_decref(a);
        if (!ok)
            usleep(50000);
    }
    assert_true(ok);
}

int main(void)
{
    const struct CMUnitTest common[] = {
        cmocka_unit_test_setup_teardown(shared_with_in_process, each_setup, each_teardown),
        cmocka_unit_test_setup_teardown(threads_of_the_plugin, each_setup, each_teardown),
        cmocka_unit_test_setup_teardown(every_slot_and_the_limits, each_setup, each_teardown),
        cmocka_unit_test_setup_teardown(bad_keys_as_in_process, each_setup, each_teardown),
    };
    const struct CMUnitTest redis_only[] = {
        cmocka_unit_test_setup_teardown(backend_down_and_back, each_setup, each_teardown),
    };
    int failed = cmocka_run_group_tests_name("memory", common, setup_memory, NULL);
    failed += cmocka_run_group_tests_name("redis", common, setup_redis, teardown_redis);
    failed += cmocka_run_group_tests_name("redis, down", redis_only, setup_redis, teardown_redis);
    return failed;
}
