/*
 * bench_threads.c — throughput from 1 and from 2 threads on one manager,
 * and the control: the baseline call loop from 1 and 2 threads, which
 * shares nothing, so its 2-vs-1 ratio is what the machine gives right now.
 *
 * Each thread builds its own request (1 KB), then all start at a barrier
 * and run the same fixed number of invokes; throughput is all invokes over
 * the wall time from the first start to the last end.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"
#include "plugins/bench_handlers.h"

typedef struct thread_arg {
    cpex_manager *m; /* NULL: the control loop (baseline calls, nothing shared) */
    long iters;
    pthread_barrier_t *barrier;
    int64_t start, end;
    int64_t cpu; /* thread CPU time of the loop */
    long bad;
    int ok;
} thread_arg;

static int64_t thread_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void *thread_main(void *p)
{
    thread_arg *a = p;
    bench_request req;
    bench_checks c = {0, 0, 0, 0};
    a->ok = bench_request_init(&req, 0) == 0; /* each thread its own request */
    pthread_barrier_wait(a->barrier);
    if (a->ok) {
        int64_t c0 = thread_cpu_ns();
        a->start = bench_now_ns();
        if (a->m)
            bench_invoke_loop(a->m, BENCH_HOOK, NULL, &req, a->iters, &c);
        else
            bench_baseline_loop(&req, a->iters, &c.denied);
        a->end = bench_now_ns();
        a->cpu = thread_cpu_ns() - c0;
    }
    a->bad = c.denied + c.soft_errors + c.modified;
    bench_request_cleanup(&req);
    return NULL;
}

static cpex_manager *threads_manager;
static int threads_manager_plugins;

void bench_threads_done(void)
{
    cpex_manager_free(threads_manager);
    threads_manager = NULL;
}

static cpex_manager *seq_manager(int n)
{
    cpex_manager *m = bench_manager_new();
    char name[32];
    for (int i = 0; m && i < n; i++) {
        snprintf(name, sizeof name, "allow%03d", i);
        if (bench_add_builtin(m, name, BENCH_HOOK, CPEX_MODE_SEQUENTIAL, i, BENCH_ROLE_ALLOW) !=
            0) {
            cpex_manager_free(m);
            return NULL;
        }
    }
    if (m && (bench_initialize(m) != 0 || bench_probe(m, BENCH_HOOK, "allow000") != 0)) {
        cpex_manager_free(m);
        return NULL;
    }
    return m;
}

double bench_threads_throughput(int threads, long iters, int plugins, double *cpu_ns)
{
    cpex_manager *m = threads_manager;
    if (plugins > 0 && (!m || threads_manager_plugins != plugins)) {
        cpex_manager_free(m);
        m = threads_manager = seq_manager(plugins);
        threads_manager_plugins = plugins;
        if (!m)
            return -1;
    }
    if (threads < 1 || threads > 64)
        return -1;
    pthread_t tids[64];
    thread_arg args[64];
    pthread_barrier_t barrier;
    pthread_barrier_init(&barrier, NULL, (unsigned)threads);
    int started = 0;
    for (int i = 0; i < threads; i++) {
        memset(&args[i], 0, sizeof args[i]);
        args[i].m = plugins > 0 ? m : NULL;
        args[i].iters = iters;
        args[i].barrier = &barrier;
        if (pthread_create(&tids[i], NULL, thread_main, &args[i]) != 0) {
            /* The barrier waits for `threads`: without them, nothing can run. */
            fprintf(stderr, "cpex_bench: cannot start thread %d\n", i);
            abort();
        }
        started++;
    }
    int64_t start = INT64_MAX, end = 0, cpu = 0;
    int ok = 1;
    for (int i = 0; i < started; i++) {
        pthread_join(tids[i], NULL);
        cpu += args[i].cpu;
        if (!args[i].ok || args[i].bad)
            ok = 0;
        if (args[i].start < start)
            start = args[i].start;
        if (args[i].end > end)
            end = args[i].end;
    }
    pthread_barrier_destroy(&barrier);
    if (!ok || end <= start)
        return -1;
    if (cpu_ns)
        *cpu_ns = (double)cpu / ((double)threads * (double)iters);
    return (double)threads * (double)iters * 1e9 / (double)(end - start);
}
