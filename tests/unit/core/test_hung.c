/*
 * test_hung.c — handlers that hang, in process: they cannot starve the
 * worker pool, they are never blamed for what they did not do, and they
 * cannot hold cpex_manager_free.
 *
 *   - a concurrent handler that sleeps far past its deadline, invoke after
 *     invoke: the pool grows past the stuck threads, so a well-behaved
 *     concurrent plugin runs every time (before: two hung calls starved a
 *     2-thread pool and the good plugin "timed out" on every request);
 *   - with a pool that may not grow, a call still queued at its deadline
 *     is not started and recorded not_started, not timeout, and its plugin
 *     is not disabled even with on_error: disable;
 *   - a fire-and-forget handler that does not return: cpex_manager_free
 *     returns after its deadline and the grace period, and says so.
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "cpex/cpex.h"
#include "test_support.h"
/* after test_support.h */
#include "plugins.h"

#define HOOK "cmf.tool_pre_invoke"
#define MS 1000000LL

static tp_trace trace;

static int setup(void **state)
{
    (void)state;
    tp_trace_init(&trace);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    /* Instances of abandoned handlers are still in use: leave them. */
    return 0;
}

static tp_plugin *hung(const char *name, uint32_t mode, long sleep_ms)
{
    tp_plugin *p = tp_new_in(name, &trace, mode, 1);
    p->on_error = CPEX_ON_ERROR_IGNORE;
    p->timeout = 0.05;
    p->sleep_ms = sleep_ms;
    return p;
}

static atomic_int log_errors;
static void count_errors(void *user, uint32_t level, const char *plugin, const char *message)
{
    (void)user, (void)plugin, (void)message;
    if (level >= CPEX_LOG_ERROR)
        atomic_fetch_add(&log_errors, 1);
}

static void pool_grows_past_hung_handlers(void **state)
{
    (void)state;
    cpex_manager_options o;
    cpex_manager_options_init(&o);
    o.worker_threads = 2;
    cpex_manager *m = tp_manager_with(&o);
    tp_plugin *h = hung("hangs", CPEX_MODE_CONCURRENT, 1500);
    tp_plugin *good = tp_new_in("good", &trace, CPEX_MODE_CONCURRENT, 2);
    good->on_error = CPEX_ON_ERROR_FAIL;
    good->timeout = 0.5;
    tp_reg(m, h);
    tp_reg(m, good);
    tp_init(m);
    for (int i = 0; i < 6; i++) {
        cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
        tp_run(m, HOOK, &res);
        assert_allowed(&res);
        /* Only the hung plugin's own timeout is recorded. */
        for (size_t k = 0; k < res.error_count; k++) {
            assert_string_equal(res.errors[k].plugin_name, "hangs");
            assert_string_equal(res.errors[k].code, "timeout");
        }
        assert_int_equal(res.error_count, 1);
        cpex_pipeline_result_cleanup(&res);
        assert_int_equal(tp_calls(good), i + 1);
    }
    tp_manager_free(m);
}

static void queued_past_deadline_is_not_started(void **state)
{
    (void)state;
    cpex_manager_options o;
    cpex_manager_options_init(&o);
    o.worker_threads = 1;
    o.max_worker_threads = 1; /* no growth: the queue must wait */
    cpex_manager *m = tp_manager_with(&o);
    tp_plugin *h = hung("hangs", CPEX_MODE_CONCURRENT, 400);
    tp_plugin *waits = tp_new_in("waits", &trace, CPEX_MODE_CONCURRENT, 2);
    waits->on_error = CPEX_ON_ERROR_DISABLE;
    waits->timeout = 0.1;
    tp_reg(m, h);
    tp_reg(m, waits);
    tp_init(m);
    int64_t t0 = tp_now_ns();
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    tp_run(m, HOOK, &res);
    int64_t took = tp_now_ns() - t0;
    assert_allowed(&res); /* on_error disable: recorded, not halted */
    const cpex_error_record *r = tp_find_record(&res, "waits", "not_started");
    assert_non_null(r);
    assert_string_equal(r->code, "not_started");
    assert_non_null(strstr(r->message, "worker pool busy"));
    assert_int_equal(tp_calls(waits), 0);
    /* The invoke returned at the waiting plugin's deadline, not the sleep's. */
    assert_true(took >= 90 * MS);
    assert_true(took < 350 * MS);
    cpex_pipeline_result_cleanup(&res);
    /* Not blamed: not disabled, and it runs once the pool is free. */
    assert_false(tp_is_disabled(m, "waits", NULL, 0));
    assert_int_equal(cpex_manager_wait_background(m, 5.0), CPEX_OK);
    h->sleep_ms = 0;
    cpex_pipeline_result res2 = CPEX_PIPELINE_RESULT_INIT;
    tp_run(m, HOOK, &res2);
    assert_allowed(&res2);
    assert_int_equal(res2.error_count, 0);
    assert_int_equal(tp_calls(waits), 1);
    cpex_pipeline_result_cleanup(&res2);
    tp_manager_free(m);
}

static void free_returns_with_a_handler_that_never_does(void **state)
{
    (void)state;
    cpex_manager_options o;
    cpex_manager_options_init(&o);
    o.log = count_errors;
    o.log_level = CPEX_LOG_ERROR;
    cpex_manager *m = NULL;
    assert_int_equal(cpex_manager_new(&o, &m, NULL), CPEX_OK);
    tp_plugin *stuck = hung("stuck", CPEX_MODE_FIRE_AND_FORGET, 600000); /* ten minutes */
    tp_reg(m, stuck);
    tp_init(m);
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    tp_run(m, HOOK, &res);
    assert_allowed(&res);
    cpex_pipeline_result_cleanup(&res);
    for (int i = 0; i < 200 && tp_calls(stuck) == 0; i++)
        tp_sleep_ms(5);
    assert_int_equal(tp_calls(stuck), 1);
    int64_t t0 = tp_now_ns();
    cpex_manager_free(m);
    int64_t took = tp_now_ns() - t0;
    /* Deadline (50 ms) + grace (1 s) for shutdown, + grace for the threads. */
    assert_true(took < 4000 * MS);
    assert_true(atomic_load(&log_errors) >= 1);               /* the abandonment is reported */
    assert_int_equal(atomic_load(&stuck->shutdown_calls), 0); /* never under a handler */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(pool_grows_past_hung_handlers),
        cmocka_unit_test(queued_past_deadline_is_not_started),
        cmocka_unit_test(free_returns_with_a_handler_that_never_does),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
