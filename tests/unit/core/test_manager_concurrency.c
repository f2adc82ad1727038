/*
 * test_manager_concurrency.c — the manager's queries and waits beside
 * writers on other threads, and the clock its waits run on.
 *
 *   - cpex_manager_schemes while schemes are registered (a race TSan sees,
 *     and a crash when the sort reads a count that grew after unlocking);
 *   - cpex_manager_is_initialized while a load holds the writer lock in a
 *     plugin's initialize: a query must not wait for it;
 *   - cpex_manager_wait_background on CLOCK_MONOTONIC: this file replaces
 *     clock_gettime for the statically linked library and moves the wall
 *     clock an hour back; a wait timed on the wall clock would return at
 *     once while the work still runs. And a huge timeout waits instead of
 *     overflowing into an expired deadline.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "cpex/cpex.h"
#include "test_support.h"
/* after test_support.h */
#include "plugins.h"

/* ------------------------------------------------------------------ */
/* A wall clock one hour behind (for every caller in this process)     */
/* ------------------------------------------------------------------ */

static atomic_int wall_clock_shift;

int clock_gettime(clockid_t id, struct timespec *ts)
{
    long rc = syscall(SYS_clock_gettime, id, ts);
    if (rc == 0 && id == CLOCK_REALTIME && atomic_load(&wall_clock_shift))
        ts->tv_sec -= 3600;
    return (int)rc;
}

/* ------------------------------------------------------------------ */
/* Schemes                                                             */
/* ------------------------------------------------------------------ */

static cpex_status no_create(void *data, const cpex_factory_request *req, cpex_factory_product *out,
                             cpex_error *err)
{
    (void)data, (void)req, (void)out, (void)err;
    return CPEX_E_INVALID;
}

typedef struct scheme_writer {
    cpex_manager *m;
    int count;
} scheme_writer;

static void *register_schemes(void *arg)
{
    scheme_writer *w = arg;
    cpex_factory f;
    memset(&f, 0, sizeof f);
    f.struct_size = (uint32_t)sizeof f;
    f.create = no_create;
    for (int i = 0; i < w->count; i++) {
        char name[32];
        snprintf(name, sizeof name, "s%04d", i);
        cpex_status st = cpex_manager_register_scheme(w->m, name, &f, NULL);
        if (st != CPEX_OK)
            abort();
    }
    return NULL;
}

static void schemes_beside_registration(void **state)
{
    (void)state;
    cpex_manager *m = tp_manager();
    scheme_writer w = {m, 400};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, register_schemes, &w), 0);
    size_t last = 0;
    for (int i = 0; i < 2000; i++) {
        char **v = cpex_manager_schemes(m);
        assert_non_null(v);
        size_t n = 0;
        for (; v[n]; n++)
            if (n > 0)
                assert_true(strcmp(v[n - 1], v[n]) < 0); /* sorted, no duplicates */
        assert_true(n >= last);                          /* never shrinks */
        last = n;
        cpex_strv_free(v);
    }
    pthread_join(t, NULL);
    char **v = cpex_manager_schemes(m);
    size_t n = 0;
    while (v[n])
        n++;
    assert_int_equal(n, 400);
    cpex_strv_free(v);
    tp_manager_free(m);
}

/* ------------------------------------------------------------------ */
/* is_initialized beside a load                                        */
/* ------------------------------------------------------------------ */

typedef struct gate {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int entered; /* initialize is running */
    int open;    /* initialize may return */
} gate;

static gate the_gate = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0};

static int32_t gated_init(void *instance, char *err, size_t cap)
{
    (void)instance, (void)err, (void)cap;
    pthread_mutex_lock(&the_gate.lock);
    the_gate.entered = 1;
    pthread_cond_broadcast(&the_gate.cond);
    while (!the_gate.open)
        pthread_cond_wait(&the_gate.cond, &the_gate.lock);
    pthread_mutex_unlock(&the_gate.lock);
    return 0;
}

static int32_t allow_handler(void *instance, const cpex_call *call)
{
    (void)instance, (void)call;
    return CPEX_ALLOW;
}

static void *register_gated(void *arg)
{
    cpex_manager *m = arg;
    static const cpex_handler_reg handlers[] = {
        CPEX_HANDLER("cmf.tool_pre_invoke", allow_handler, NULL)};
    cpex_plugin_spec spec;
    cpex_plugin_spec_init(&spec);
    spec.name = "gated";
    spec.kind = "test";
    cpex_plugin_registration reg;
    memset(&reg, 0, sizeof reg);
    reg.struct_size = (uint32_t)sizeof reg;
    reg.abi_version = CPEX_ABI_VERSION;
    reg.name = "gated";
    reg.version = "1";
    reg.initialize = gated_init;
    reg.handler_count = 1;
    reg.handlers = handlers;
    /* The manager is initialized: the load initializes the plugin while it
     * holds the writer lock. */
    cpex_status st = cpex_manager_register(m, &spec, &reg, NULL);
    return (void *)(intptr_t)st;
}

typedef struct query {
    cpex_manager *m;
    atomic_int done;
    bool result;
} query;

static void *ask_initialized(void *arg)
{
    query *q = arg;
    q->result = cpex_manager_is_initialized(q->m);
    atomic_store(&q->done, 1);
    return NULL;
}

static void is_initialized_beside_a_load(void **state)
{
    (void)state;
    cpex_manager *m = tp_manager();
    assert_int_equal(cpex_manager_initialize(m, NULL), CPEX_OK);
    pthread_t loader;
    assert_int_equal(pthread_create(&loader, NULL, register_gated, m), 0);
    pthread_mutex_lock(&the_gate.lock);
    while (!the_gate.entered)
        pthread_cond_wait(&the_gate.cond, &the_gate.lock);
    pthread_mutex_unlock(&the_gate.lock);

    /* The writer lock is held inside initialize now; the query answers. */
    query q = {m, 0, false};
    pthread_t asker;
    assert_int_equal(pthread_create(&asker, NULL, ask_initialized, &q), 0);
    for (int i = 0; i < 500 && !atomic_load(&q.done); i++)
        tp_sleep_ms(10);
    int answered = atomic_load(&q.done);

    pthread_mutex_lock(&the_gate.lock);
    the_gate.open = 1;
    pthread_cond_broadcast(&the_gate.cond);
    pthread_mutex_unlock(&the_gate.lock);
    pthread_join(asker, NULL);
    void *rc = NULL;
    pthread_join(loader, &rc);
    assert_int_equal((intptr_t)rc, CPEX_OK);
    assert_true(answered); /* within 5 s, while the load was blocked */
    assert_true(q.result); /* the published registry: all initialized */
    assert_true(cpex_manager_is_initialized(m));
    tp_manager_free(m);
}

/* ------------------------------------------------------------------ */
/* wait_background                                                     */
/* ------------------------------------------------------------------ */

static cpex_manager *with_background_sleeper(tp_trace *trace, long ms)
{
    cpex_manager *m = tp_manager();
    tp_plugin *p = tp_new_in("sleeper", trace, CPEX_MODE_FIRE_AND_FORGET, 10);
    p->sleep_ms = ms;
    tp_reg(m, p);
    assert_int_equal(cpex_manager_initialize(m, NULL), CPEX_OK);
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    tp_run(m, "cmf.tool_pre_invoke", &res);
    assert_true(res.continue_processing);
    cpex_pipeline_result_cleanup(&res);
    return m;
}

static void wait_background_ignores_the_wall_clock(void **state)
{
    tp_trace trace;
    tp_trace_init(&trace);
    (void)state;
    cpex_manager *m = with_background_sleeper(&trace, 300);
    atomic_store(&wall_clock_shift, 1);
    int64_t t0 = tp_now_ns();
    cpex_status st = cpex_manager_wait_background(m, 10.0);
    int64_t waited = tp_now_ns() - t0;
    atomic_store(&wall_clock_shift, 0);
    assert_int_equal(st, CPEX_OK);          /* the work finished within the wait */
    assert_true(waited >= 200 * 1000000LL); /* and it really waited for it */
    tp_manager_free(m);
    tp_free_all();
}

static void wait_background_huge_timeout_waits(void **state)
{
    (void)state;
    tp_trace trace;
    tp_trace_init(&trace);
    cpex_manager *m = with_background_sleeper(&trace, 200);
    assert_int_equal(cpex_manager_wait_background(m, 1e12), CPEX_OK);
    tp_manager_free(m);
    m = with_background_sleeper(&trace, 200);
    assert_int_equal(cpex_manager_wait_background(m, 1e300), CPEX_OK);
    tp_manager_free(m);
    tp_free_all();
}

static void wait_background_short_timeout_expires(void **state)
{
    (void)state;
    tp_trace trace;
    tp_trace_init(&trace);
    cpex_manager *m = with_background_sleeper(&trace, 400);
    int64_t t0 = tp_now_ns();
    assert_int_equal(cpex_manager_wait_background(m, 0.05), CPEX_E_STATE);
    int64_t waited = tp_now_ns() - t0;
    assert_true(waited >= 40 * 1000000LL);
    assert_true(waited < 350 * 1000000LL);
    assert_int_equal(cpex_manager_wait_background(m, -1), CPEX_OK);
    tp_manager_free(m);
    tp_free_all();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(schemes_beside_registration),
        cmocka_unit_test(is_initialized_beside_a_load),
        cmocka_unit_test(wait_background_ignores_the_wall_clock),
        cmocka_unit_test(wait_background_huge_timeout_waits),
        cmocka_unit_test(wait_background_short_timeout_expires),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
