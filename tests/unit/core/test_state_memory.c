/* test_state_memory.c — the memory state backend on its own: its bounds
   (max_keys, max_bytes, and the sweep that makes room), growth, and every
   allocation failure on the write paths ending cleanly (no leak under ASan). */
#include "test_support.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/state.h"
#include "util/alloc.h"

#define FAR INT64_MAX

static cpex__state_backend *memory(uint64_t max_keys, uint64_t max_bytes)
{
    cpex_state_options o;
    cpex_state_options_init(&o);
    if (max_keys)
        o.max_keys = max_keys;
    if (max_bytes)
        o.max_bytes = max_bytes;
    cpex__state_backend *b = NULL;
    char why[200];
    assert_int_equal(cpex__state_new(&o, NULL, &b, why, sizeof why), CPEX_OK);
    return b;
}

static void nap_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void bounded_by_keys_then_swept(void **state)
{
    (void)state;
    cpex__state_backend *b = memory(100, 0);
    cpex__state_err e = {""};
    char key[32];
    for (int i = 0; i < 100; i++) {
        snprintf(key, sizeof key, "k%d", i);
        assert_int_equal(b->ops->incr(b, key, strlen(key), 1, 200, FAR, NULL, NULL, &e),
                         CPEX_HOST_OK);
    }
    assert_int_equal(b->ops->keys(b), 100);
    /* full: a new key is refused, nothing is evicted, an existing one still counts */
    assert_int_equal(b->ops->set(b, "new", 3, "v", 1, 0, FAR, &e), CPEX_HOST_ENOMEM);
    assert_contains(e.text, "the memory state store is full (max_keys 100");
    int64_t v = 0;
    assert_int_equal(b->ops->incr(b, "k7", 2, 1, 0, FAR, &v, NULL, &e), CPEX_HOST_OK);
    assert_int_equal(v, 2);
    /* once they expired, the full store sweeps every shard and makes room */
    nap_ms(400);
    assert_int_equal(b->ops->set(b, "new", 3, "v", 1, 0, FAR, &e), CPEX_HOST_OK);
    assert_true(b->ops->keys(b) <= 100);
    char *v0 = NULL;
    size_t len = 0;
    assert_int_equal(b->ops->get(b, "k3", 2, FAR, &v0, &len, &e), CPEX_HOST_ENOTFOUND);
    cpex__state_free(b);
}

static void bounded_by_bytes(void **state)
{
    (void)state;
    cpex__state_backend *b = memory(0, 65536);
    cpex__state_err e = {""};
    static char value[20000];
    memset(value, 'x', sizeof value);
    int stored = 0;
    char key[32];
    for (int i = 0; i < 10; i++) {
        snprintf(key, sizeof key, "v%d", i);
        stored += b->ops->set(b, key, strlen(key), value, sizeof value, 0, FAR, &e) == CPEX_HOST_OK;
    }
    assert_int_equal(stored, 3); /* 3 x 20000 bytes fit in 64 KiB with their entries, 4 do not */
    /* replacing a value with a smaller one frees room; a set member counts too */
    assert_int_equal(b->ops->set(b, "v0", 2, "small", 5, 0, FAR, &e), CPEX_HOST_OK);
    assert_int_equal(b->ops->set(b, "v9", 2, value, sizeof value, 0, FAR, &e), CPEX_HOST_OK);
    int added = 0;
    for (int i = 0; i < 20; i++) {
        value[0] = (char)('a' + i); /* a new member each time */
        if (b->ops->set_add(b, "s", 1, value, 4096, 0, FAR, &e) != CPEX_HOST_OK)
            break;
        added++;
    }
    assert_true(added >= 1 && added < 20); /* members count against max_bytes */
    assert_int_equal(b->ops->del(b, "v1", 2, FAR, &e), CPEX_HOST_OK);
    assert_int_equal(b->ops->set_add(b, "s", 1, value, 4096, 0, FAR, &e), CPEX_HOST_OK);
    cpex__state_free(b);
}

static void grows_and_finds_everything(void **state)
{
    (void)state;
    cpex__state_backend *b = memory(0, 0);
    cpex__state_err e = {""};
    char key[32];
    for (int i = 0; i < 20000; i++) {
        snprintf(key, sizeof key, "key-%d", i);
        assert_int_equal(b->ops->incr(b, key, strlen(key), i, 0, FAR, NULL, NULL, &e),
                         CPEX_HOST_OK);
    }
    for (int i = 0; i < 20000; i += 97) {
        snprintf(key, sizeof key, "key-%d", i);
        char *v = NULL;
        size_t len = 0;
        assert_int_equal(b->ops->get(b, key, strlen(key), FAR, &v, &len, &e), CPEX_HOST_OK);
        char want[32];
        snprintf(want, sizeof want, "%d", i);
        assert_string_equal(v, want);
        cpex__free(v);
    }
    assert_int_equal(b->ops->keys(b), 20000);
    cpex__state_free(b);
}

/* Every write path with the n-th allocation failing: a clean status, nothing leaked. */
static void allocation_failures(void **state)
{
    (void)state;
    cpex__state_err e = {""};
    for (uint64_t n = 1; n <= 40; n++) {
        cpex__state_backend *b = memory(0, 0);
        b->ops->set(b, "pre", 3, "x", 1, 0, FAR, &e);
        b->ops->set_add(b, "full", 4, "a", 1, 0, FAR, &e);
        b->ops->set_add(b, "full", 4, "b", 1, 0, FAR, &e);
        b->ops->set_add(b, "full", 4, "c", 1, 0, FAR, &e);
        b->ops->set_add(b, "full", 4, "d", 1, 0, FAR, &e); /* the next add grows the array */
        cpex__alloc_fail_at(n);
        int32_t st[8];
        char *v = NULL;
        size_t len = 0;
        cpex_str *m = NULL;
        size_t count = 0;
        st[0] = b->ops->set(b, "k", 1, "value", 5, 0, FAR, &e);
        st[1] = b->ops->incr(b, "n", 1, 1, 0, FAR, NULL, NULL, &e);
        st[2] = b->ops->set_add(b, "s", 1, "m", 1, 0, FAR, &e);
        st[3] = b->ops->set_add(b, "full", 4, "e", 1, 0, FAR, &e);
        st[4] = b->ops->set(b, "pre", 3, "replaced", 8, 0, FAR, &e);
        st[5] = b->ops->get(b, "pre", 3, FAR, &v, &len, &e);
        st[6] = b->ops->set_members(b, "full", 4, FAR, &m, &count, &e);
        st[7] = b->ops->incr(b, "pre", 3, 1, 0, FAR, NULL, NULL, &e);
        cpex__alloc_fail_at(0);
        for (int i = 0; i < 8; i++)
            assert_true(st[i] == CPEX_HOST_OK || st[i] == CPEX_HOST_ENOMEM ||
                        st[i] == CPEX_HOST_ETYPE);
        cpex__free(v);
        cpex__free(m);
        /* what failed left the store as it was: "pre" is one of its two values */
        v = NULL;
        assert_int_equal(b->ops->get(b, "pre", 3, FAR, &v, &len, &e), CPEX_HOST_OK);
        assert_true(strcmp(v, "x") == 0 || strcmp(v, "replaced") == 0);
        cpex__free(v);
        cpex__state_free(b);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(bounded_by_keys_then_swept),
        cmocka_unit_test(bounded_by_bytes),
        cmocka_unit_test(grows_and_finds_everything),
        cmocka_unit_test(allocation_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
