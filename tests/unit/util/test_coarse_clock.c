/*
 * test_coarse_clock.c — the clock long handler timeouts are checked on
 * (util/coarse_clock.h): a word a ticker thread keeps current. It must
 * never read ahead of CLOCK_MONOTONIC, must keep moving while it is read,
 * must stop costing wakeups when nobody reads it, must come back on the
 * next read, and must work in the child of a fork (which has no ticker).
 */
#include "test_support.h"

#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "util/clock.h"
#include "util/coarse_clock.h"

#define MS 1000000LL

static void sleep_us(long us)
{
    struct timespec ts = {us / 1000000, (us % 1000000) * 1000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

/* Read the clock every 100 µs until the ticker runs (at most 5 s). */
static bool wait_running(void)
{
    for (int i = 0; i < 50000; i++) {
        (void)cpex__coarse_now_ns();
        if (cpex__coarse_ticker_running() &&
            atomic_load_explicit(&cpex__coarse_word, memory_order_relaxed) != 0)
            return true;
        sleep_us(100);
    }
    return false;
}

/* 300 ms of readings: each one between the start of the run and the
 * CLOCK_MONOTONIC read after it, at most `max_lag` behind that read, and
 * the word moving (one step is 2 ms: far more than 20 distinct values). */
static void check_readings(int64_t max_lag)
{
    int64_t start = cpex__now_ns(), last = 0;
    int distinct = 0;
    for (int i = 0; i < 3000; i++) {
        int64_t v = cpex__coarse_now_ns();
        int64_t after = cpex__now_ns();
        assert_true(v <= after);
        assert_true(v >= start - 2 * CPEX__COARSE_STEP_NS);
        assert_true(after - v <= max_lag);
        if (v != last)
            distinct++;
        last = v;
        sleep_us(100);
    }
    print_message("%d distinct readings in 3000\n", distinct);
    assert_true(distinct >= 20);
}

static void test_readings_follow_the_monotonic_clock(void **state)
{
    (void)state;
    assert_true(wait_running());
    /* A loaded machine may hold the ticker back; a stopped one lags without
     * bound. */
    check_readings(500 * MS);
}

static void test_parks_when_idle_and_wakes_on_a_read(void **state)
{
    (void)state;
    assert_true(wait_running());
    /* Nobody reads: after its probe (250 steps, 500 ms) the ticker parks and
     * the word is cleared. */
    bool parked = false;
    for (int i = 0; i < 1000 && !parked; i++) {
        sleep_us(10000);
        parked = !cpex__coarse_ticker_running();
    }
    assert_true(parked);
    assert_int_equal(atomic_load(&cpex__coarse_word), 0);
    /* A reading while parked is CLOCK_MONOTONIC itself. */
    int64_t before = cpex__now_ns();
    int64_t v = cpex__coarse_now_ns();
    assert_true(v >= before && v <= cpex__now_ns());
    /* ... and wakes the ticker. */
    assert_true(wait_running());
    check_readings(500 * MS);
}

static void test_works_in_a_forked_child(void **state)
{
    (void)state;
#ifdef __SANITIZE_THREAD__
    skip(); /* TSan cannot start threads in the child of a threaded fork */
#endif
    assert_true(wait_running());
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* No ticker here: the first reading starts one. */
        int64_t before = cpex__now_ns();
        int64_t v = cpex__coarse_now_ns();
        if (v < before || v > cpex__now_ns())
            _exit(2);
        for (int i = 0; i < 50000; i++) {
            int64_t w = cpex__coarse_now_ns();
            int64_t after = cpex__now_ns();
            if (w > after)
                _exit(3);
            if (cpex__coarse_ticker_running() && w != 0 && after - w < 500 * MS &&
                atomic_load(&cpex__coarse_word) != 0)
                _exit(0);
            sleep_us(100);
        }
        _exit(4);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    /* The parent's ticker is untouched. */
    check_readings(500 * MS);
}

/* A child made without the atfork handlers (_Fork: no ticker, no reset)
 * still exits: the unload hook must not wait for a thread the child does
 * not have. */
static void test_exit_in_a_child_without_atfork_handlers(void **state)
{
    (void)state;
#ifdef __SANITIZE_THREAD__
    skip(); /* as above */
#endif
    assert_true(wait_running());
    pid_t pid = _Fork();
    assert_true(pid >= 0);
    if (pid == 0)
        exit(0); /* runs the library's destructor */
    int status = 0;
    pid_t got = 0;
    for (int i = 0; i < 5000 && got == 0; i++) { /* 5 s */
        got = waitpid(pid, &status, WNOHANG);
        if (got == 0)
            sleep_us(1000);
    }
    if (got == 0) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        fail_msg("the child of _Fork hung in exit()");
    }
    assert_int_equal(got, pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_readings_follow_the_monotonic_clock),
        cmocka_unit_test(test_parks_when_idle_and_wakes_on_a_read),
        cmocka_unit_test(test_works_in_a_forked_child),
        cmocka_unit_test(test_exit_in_a_child_without_atfork_handlers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
