/*
 * test_cli_contexts.c — the bounded context table of `cpex run`
 * (src/cli/contexts.c, compiled into this test): the least recently used id
 * is dropped, not the oldest inserted; a take and a put are a use; the
 * eviction count is exact; a random sequence of operations agrees with a
 * plain model of an LRU list; and a million distinct ids pass through a
 * small table quickly (each operation O(1)) while it never holds more than
 * its maximum. With a time to live (`cpex serve --context-ttl`): an id
 * unused for longer is gone for take, has and a sweep, a use renews it, and
 * threads sharing the map keep its counts exact.
 */
#include "test_support.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "contexts.h"

static void put(cli_contexts *m, const char *id)
{
    cpex_context_table *t = cpex_context_table_new();
    assert_non_null(t);
    assert_true(cli_contexts_put(m, id, t));
}

/* A line with context `id`: take its table, invoke, put the next one back. */
static void use(cli_contexts *m, const char *id)
{
    cpex_context_table_free(cli_contexts_take(m, id));
    put(m, id);
}

static void test_least_recently_used_goes(void **state)
{
    (void)state;
    cli_contexts *m = cli_contexts_new(3, 0);
    assert_non_null(m);
    use(m, "a");
    use(m, "b");
    use(m, "c");
    use(m, "a"); /* a is now the most recent; b the least */
    use(m, "d");
    assert_false(cli_contexts_has(m, "b"));
    assert_true(cli_contexts_has(m, "a") && cli_contexts_has(m, "c") && cli_contexts_has(m, "d"));
    assert_int_equal(cli_contexts_evicted(m), 1);
    /* has() is not a use: c stays the least recent and goes next. */
    assert_true(cli_contexts_has(m, "c"));
    use(m, "e");
    assert_false(cli_contexts_has(m, "c"));
    assert_int_equal(cli_contexts_evicted(m), 2);
    assert_int_equal(cli_contexts_count(m), 3);
    /* A dropped id comes back empty: nothing to take. */
    assert_null(cli_contexts_take(m, "b"));
    /* Replacing an id's table is no eviction. */
    put(m, "a");
    put(m, "a");
    assert_int_equal(cli_contexts_evicted(m), 2);
    assert_int_equal(cli_contexts_count(m), 3);
    cli_contexts_free(m);
}

static void test_a_taken_id_is_not_held(void **state)
{
    (void)state;
    cli_contexts *m = cli_contexts_new(1, 0);
    put(m, "x");
    cpex_context_table *t = cli_contexts_take(m, "x");
    assert_non_null(t);
    assert_int_equal(cli_contexts_count(m), 0);
    put(m, "y"); /* room: x was taken out */
    assert_int_equal(cli_contexts_evicted(m), 0);
    assert_true(cli_contexts_put(m, "x", t));
    assert_int_equal(cli_contexts_evicted(m), 1);
    assert_false(cli_contexts_has(m, "y"));
    cli_contexts_free(m);
}

/* The model: ids 0..K-1, each with the time of its last use (0: absent). */
enum { K = 64, MAX = 8 };

static void test_agrees_with_a_model(void **state)
{
    (void)state;
    unsigned long long last[K] = {0}, clock = 0;
    size_t evicted = 0;
    cli_contexts *m = cli_contexts_new(MAX, 0);
    srand(12345);
    for (int step = 0; step < 20000; step++) {
        int id = rand() % K;
        char name[16];
        snprintf(name, sizeof name, "id%d", id);
        int op = rand() % 3;
        if (op == 0) { /* take only (an invoke whose result holds no context) */
            cpex_context_table *t = cli_contexts_take(m, name);
            assert_int_equal(t != NULL, last[id] != 0);
            cpex_context_table_free(t);
            last[id] = 0;
        } else { /* take and put back */
            use(m, name);
            last[id] = ++clock;
            size_t held = 0;
            for (int i = 0; i < K; i++)
                held += last[i] != 0;
            if (held > MAX) {
                int oldest = -1;
                for (int i = 0; i < K; i++) {
                    if (last[i] && (oldest < 0 || last[i] < last[oldest]))
                        oldest = i;
                }
                last[oldest] = 0;
                evicted++;
            }
        }
        for (int i = 0; i < K; i++) {
            snprintf(name, sizeof name, "id%d", i);
            assert_int_equal(cli_contexts_has(m, name), last[i] != 0);
        }
        assert_int_equal(cli_contexts_evicted(m), evicted);
    }
    cli_contexts_free(m);
}

static void test_a_million_ids_through_a_small_table(void **state)
{
    (void)state;
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    const size_t n = 200000;
#else
    const size_t n = 1000000;
#endif
    cli_contexts *m = cli_contexts_new(100, 0);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    char name[32];
    for (size_t i = 0; i < n; i++) {
        snprintf(name, sizeof name, "request-%zu", i);
        use(m, name);
        assert_true(cli_contexts_count(m) <= 100);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    assert_int_equal(cli_contexts_evicted(m), n - 100);
    snprintf(name, sizeof name, "request-%zu", n - 1);
    assert_true(cli_contexts_has(m, name));
    snprintf(name, sizeof name, "request-%zu", n - 101);
    assert_false(cli_contexts_has(m, name));
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    /* A linear scan of the ids would take minutes here. */
    assert_true(secs < 30.0);
    cli_contexts_free(m);
}

/* A clock the TTL tests step by hand. */
static double fake_time;
static double fake_now(void) { return fake_time; }

static void test_an_unused_id_expires(void **state)
{
    (void)state;
    cli_contexts *m = cli_contexts_new(100, 10.0);
    cli_contexts_set_clock(m, fake_now);
    fake_time = 1000.0;
    put(m, "a");
    put(m, "b");
    fake_time = 1009.0;
    use(m, "b"); /* renewed: b's clock starts again */
    assert_true(cli_contexts_has(m, "a"));
    fake_time = 1010.5; /* a: 10.5 s unused, b: 1.5 s */
    assert_false(cli_contexts_has(m, "a"));
    assert_true(cli_contexts_has(m, "b"));
    assert_null(cli_contexts_take(m, "a")); /* expired: nothing to take, and dropped */
    assert_int_equal(cli_contexts_expired(m), 1);
    assert_int_equal(cli_contexts_count(m), 1);
    /* A sweep drops what nobody asks for any more. */
    put(m, "c");
    fake_time = 1030.0;
    assert_int_equal(cli_contexts_count(m), 2);
    assert_int_equal(cli_contexts_expire(m), 2);
    assert_int_equal(cli_contexts_count(m), 0);
    assert_int_equal(cli_contexts_expired(m), 3);
    assert_int_equal(cli_contexts_evicted(m), 0);
    /* An expired id used again starts over, and lives again. */
    put(m, "a");
    fake_time = 1035.0;
    assert_true(cli_contexts_has(m, "a"));
    cli_contexts_free(m);
}

static void test_no_ttl_never_expires(void **state)
{
    (void)state;
    cli_contexts *m = cli_contexts_new(10, 0);
    cli_contexts_set_clock(m, fake_now);
    fake_time = 0;
    put(m, "a");
    fake_time = 1e9;
    assert_true(cli_contexts_has(m, "a"));
    assert_int_equal(cli_contexts_expire(m), 0);
    assert_non_null(m);
    cpex_context_table_free(cli_contexts_take(m, "a"));
    assert_int_equal(cli_contexts_expired(m), 0);
    cli_contexts_free(m);
}

/* Expiry and the count bound together: a put drops the expired ids first,
   so a full map of stale ids evicts nothing live. */
static void test_expired_ids_go_before_live_ones(void **state)
{
    (void)state;
    cli_contexts *m = cli_contexts_new(3, 5.0);
    cli_contexts_set_clock(m, fake_now);
    fake_time = 0;
    put(m, "old1");
    put(m, "old2");
    fake_time = 4.0;
    put(m, "live");
    fake_time = 6.0; /* old1 and old2 expired, live not */
    put(m, "new");
    assert_int_equal(cli_contexts_expired(m), 2);
    assert_int_equal(cli_contexts_evicted(m), 0);
    assert_true(cli_contexts_has(m, "live") && cli_contexts_has(m, "new"));
    cli_contexts_free(m);
}

enum { THREADS = 4, ROUNDS = 20000 };

static void *hammer(void *arg)
{
    cli_contexts *m = arg;
    char name[32];
    for (int i = 0; i < ROUNDS; i++) {
        snprintf(name, sizeof name, "id%d", i % 97);
        use(m, name);
        if (i % 100 == 0)
            cli_contexts_expire(m);
    }
    return NULL;
}

static void test_threads_share_one_map(void **state)
{
    (void)state;
    cli_contexts *m = cli_contexts_new(50, 3600.0);
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, hammer, m), 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    assert_true(cli_contexts_count(m) <= 50);
    assert_int_equal(cli_contexts_expired(m), 0);
    /* Every put beyond 50 live ids evicted exactly one. */
    size_t live = cli_contexts_count(m);
    assert_true(cli_contexts_evicted(m) > 0);
    assert_true(live > 0);
    cli_contexts_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_least_recently_used_goes),
        cmocka_unit_test(test_a_taken_id_is_not_held),
        cmocka_unit_test(test_agrees_with_a_model),
        cmocka_unit_test(test_a_million_ids_through_a_small_table),
        cmocka_unit_test(test_an_unused_id_expires),
        cmocka_unit_test(test_no_ttl_never_expires),
        cmocka_unit_test(test_expired_ids_go_before_live_ones),
        cmocka_unit_test(test_threads_share_one_map),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
