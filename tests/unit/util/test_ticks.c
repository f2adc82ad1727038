/*
 * test_ticks.c — the interval clock of execution records, latency metrics
 * and observed deadlines (util/ticks.h): its rate is measured once per
 * process against CLOCK_MONOTONIC, and a wrong rate stretches or shrinks
 * every duration and every observed timeout by the same factor. The rate
 * must come out right also when the measuring thread is preempted between
 * its clock reads (a loaded machine): that once made a 30 ms call read as
 * 16 ms.
 */
#include "test_support.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#include "util/clock.h"
#include "util/ticks.h"

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double rate_of(uint64_t mult) { return (double)mult / 4294967296.0; }

/* The median of `n` measurements of the rate, in ns per tick. */
static double median_rate(int n)
{
    double r[16];
    for (int i = 0; i < n; i++) {
        uint64_t mult = cpex__ticks_measure_rate();
        if (!mult)
            return 0;
        r[i] = rate_of(mult);
    }
    qsort(r, (size_t)n, sizeof r[0], cmp_double);
    return r[n / 2];
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

static void test_intervals_agree_with_the_monotonic_clock(void **state)
{
    (void)state;
    cpex__ticks_init();
    if (!cpex__ticks_cpu)
        skip(); /* a tick is a CLOCK_MONOTONIC nanosecond: nothing to measure */
    /* 20 ms by both clocks, five times; the median must agree within 1 %. */
    double err[5];
    for (int i = 0; i < 5; i++) {
        int64_t n0 = cpex__now_ns();
        uint64_t t0 = cpex__ticks();
        sleep_ms(20);
        uint64_t t1 = cpex__ticks();
        int64_t n1 = cpex__now_ns();
        double by_ticks = (double)cpex__ticks_ns(t0, t1);
        err[i] = by_ticks / (double)(n1 - n0) - 1.0;
        if (err[i] < 0)
            err[i] = -err[i];
    }
    qsort(err, 5, sizeof err[0], cmp_double);
    assert_true(err[2] < 0.01);
    /* And the conversion back: ns -> ticks -> ns is the identity within a tick. */
    uint64_t t = cpex__ticks_from_ns(30000000);
    int64_t back = cpex__ticks_ns(0, t);
    assert_true(back > 30000000 - 10 && back <= 30000000);
    assert_int_equal(cpex__ticks_from_ns(0), 0);
    assert_int_equal(cpex__ticks_from_ns(-5), 0);
}

static atomic_bool stop_spinning;

static void *spin(void *arg)
{
    (void)arg;
    volatile unsigned long x = 0;
    while (!atomic_load_explicit(&stop_spinning, memory_order_relaxed))
        x++;
    return NULL;
}

static void test_rate_holds_on_a_loaded_machine(void **state)
{
    (void)state;
    double quiet = median_rate(5);
    if (quiet == 0)
        skip(); /* no invariant TSC here */
    /* Three busy threads per CPU of a small machine: the measuring thread
       loses its CPU often, also between the reads of one pair. Every
       measurement (not only their median) must stay within 0.5 %. */
    enum { SPINNERS = 6 };
    pthread_t th[SPINNERS];
    atomic_store(&stop_spinning, false);
    for (int i = 0; i < SPINNERS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, spin, NULL), 0);
    double worst = 0;
    for (int i = 0; i < 10; i++) {
        double r = rate_of(cpex__ticks_measure_rate());
        double e = r / quiet - 1.0;
        if (e < 0)
            e = -e;
        if (e > worst)
            worst = e;
    }
    atomic_store(&stop_spinning, true);
    for (int i = 0; i < SPINNERS; i++)
        pthread_join(th[i], NULL);
    print_message("ticks: %.4f ns per tick quiet, worst deviation under load %.3f %%\n", quiet,
                  worst * 100);
    assert_true(worst < 0.005);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_intervals_agree_with_the_monotonic_clock),
        cmocka_unit_test(test_rate_holds_on_a_loaded_machine),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
