/* workers.c — see workers.h. */
#include "core/workers.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "util/alloc.h"
#include "util/clock.h"

/* How long a worker polls for the next job before it sleeps. Long enough
 * to span the gap between back-to-back invokes of a busy host, short
 * enough that an idle host's workers are asleep at once. */
#define SPIN_NS 50000
/* How long an extra thread (beyond the base count) waits for work before
 * it leaves. */
#define EXTRA_IDLE_NS 2000000000LL

struct cpex__workers {
    pthread_mutex_t lock;
    pthread_cond_t wake; /* a job arrived, or stopping */
    pthread_cond_t gone; /* a thread left */
    cpex__job *head, *tail;
    _Atomic size_t queued; /* jobs in the queue; polled without the lock */
    _Atomic bool stopping;
    unsigned base, max;
    unsigned live;               /* threads running (or abandoned inside a job) */
    unsigned sleeping;           /* threads waiting on `wake` */
    _Atomic unsigned busy_count; /* threads inside a job */
    _Atomic long refs;           /* the owner's, plus one per live thread */
    /* Per thread slot: the deadline of the job it runs (INT64_MAX: a job
     * without one), 0 when it is not in a job. */
    _Atomic int64_t *busy;
    bool *used;
};

typedef struct worker_arg {
    cpex__workers *pool;
    unsigned slot;
} worker_arg;

static void pool_unref(cpex__workers *pool)
{
    if (atomic_fetch_sub_explicit(&pool->refs, 1, memory_order_acq_rel) != 1)
        return;
    pthread_cond_destroy(&pool->gone);
    pthread_cond_destroy(&pool->wake);
    pthread_mutex_destroy(&pool->lock);
    cpex__free((void *)pool->busy);
    cpex__free(pool->used);
    cpex__free(pool);
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* Poll for a queued job (or stopping) for SPIN_NS. On a machine with as
 * many runnable threads as cores, yielding now and then lets the thread
 * that will submit the next job run. */
static void spin_for_work(cpex__workers *pool)
{
    int64_t end = cpex__clock_ns(false) + SPIN_NS;
    for (unsigned i = 1;; i++) {
        if (atomic_load_explicit(&pool->queued, memory_order_relaxed) ||
            atomic_load_explicit(&pool->stopping, memory_order_relaxed))
            return;
        cpu_relax();
        if ((i & 63) == 0) {
            sched_yield();
            if (cpex__clock_ns(false) >= end)
                return;
        }
    }
}

static void abs_time(struct timespec *ts, int64_t ns)
{
    ts->tv_sec = (time_t)(ns / 1000000000);
    ts->tv_nsec = (long)(ns % 1000000000);
}

static void *worker_main(void *arg)
{
    worker_arg wa = *(worker_arg *)arg;
    cpex__free(arg);
    cpex__workers *pool = wa.pool;
    for (;;) {
        spin_for_work(pool);
        pthread_mutex_lock(&pool->lock);
        bool leave = false;
        while (!pool->head && !atomic_load(&pool->stopping)) {
            pool->sleeping++;
            if (pool->live > pool->base) {
                struct timespec ts;
                abs_time(&ts, cpex__clock_ns(false) + EXTRA_IDLE_NS);
                int rc = pthread_cond_timedwait(&pool->wake, &pool->lock, &ts);
                pool->sleeping--;
                if (rc == ETIMEDOUT && !pool->head && pool->live > pool->base) {
                    leave = true;
                    break;
                }
            } else {
                pthread_cond_wait(&pool->wake, &pool->lock);
                pool->sleeping--;
            }
        }
        cpex__job *job = leave ? NULL : pool->head;
        if (!job) { /* stopping with the queue drained, or an idle extra thread */
            pool->live--;
            pool->used[wa.slot] = false;
            pthread_cond_broadcast(&pool->gone);
            pthread_mutex_unlock(&pool->lock);
            break;
        }
        pool->head = job->next;
        if (!pool->head)
            pool->tail = NULL;
        atomic_fetch_sub_explicit(&pool->queued, 1, memory_order_relaxed);
        pthread_mutex_unlock(&pool->lock);
        /* `run` may free the job: read what we need first. */
        int64_t deadline = job->deadline_ns ? job->deadline_ns : INT64_MAX;
        atomic_fetch_add_explicit(&pool->busy_count, 1, memory_order_relaxed);
        atomic_store_explicit(&pool->busy[wa.slot], deadline, memory_order_relaxed);
        job->run(job->arg);
        atomic_store_explicit(&pool->busy[wa.slot], 0, memory_order_relaxed);
        atomic_fetch_sub_explicit(&pool->busy_count, 1, memory_order_relaxed);
    }
    pool_unref(pool);
    return NULL;
}

/* Start one thread (lock held). False when the system refused. */
static bool spawn(cpex__workers *pool)
{
    unsigned slot = 0;
    while (slot < pool->max && pool->used[slot])
        slot++;
    if (slot == pool->max)
        return false;
    worker_arg *wa = cpex__malloc(sizeof *wa);
    if (!wa)
        return false;
    wa->pool = pool;
    wa->slot = slot;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    /* Detached: a thread stuck in a plugin's handler can be abandoned at
     * free; it releases its reference to the pool when it returns. */
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    atomic_fetch_add_explicit(&pool->refs, 1, memory_order_relaxed);
    pool->used[slot] = true;
    atomic_store_explicit(&pool->busy[slot], 0, memory_order_relaxed);
    pool->live++;
    pthread_t t;
    int rc = pthread_create(&t, &attr, worker_main, wa);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        pool->live--;
        pool->used[slot] = false;
        atomic_fetch_sub_explicit(&pool->refs, 1, memory_order_relaxed);
        cpex__free(wa);
        return false;
    }
    return true;
}

cpex__workers *cpex__workers_new(unsigned threads, unsigned max_threads)
{
    if (threads == 0)
        threads = 1;
    if (max_threads < threads)
        max_threads = threads;
    cpex__workers *pool = cpex__calloc(1, sizeof *pool);
    if (!pool)
        return NULL;
    pool->busy = cpex__calloc(max_threads, sizeof *pool->busy);
    pool->used = cpex__calloc(max_threads, sizeof *pool->used);
    if (!pool->busy || !pool->used) {
        cpex__free((void *)pool->busy);
        cpex__free(pool->used);
        cpex__free(pool);
        return NULL;
    }
    pool->base = threads;
    pool->max = max_threads;
    atomic_init(&pool->refs, 1);
    atomic_init(&pool->queued, 0);
    atomic_init(&pool->stopping, false);
    atomic_init(&pool->busy_count, 0);
    pthread_mutex_init(&pool->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&pool->wake, &ca);
    pthread_cond_init(&pool->gone, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_lock(&pool->lock);
    for (unsigned i = 0; i < threads; i++)
        if (!spawn(pool))
            break;
    bool ok = pool->live > 0;
    pthread_mutex_unlock(&pool->lock);
    if (!ok) {
        cpex__workers_free(pool, 0);
        return NULL;
    }
    return pool;
}

/* Threads inside a job whose deadline has passed (lock held). */
static unsigned stuck_threads(cpex__workers *pool)
{
    int64_t now = cpex__clock_ns(false);
    unsigned n = 0;
    for (unsigned i = 0; i < pool->max; i++) {
        if (!pool->used[i])
            continue;
        int64_t d = atomic_load_explicit(&pool->busy[i], memory_order_relaxed);
        if (d != 0 && d < now)
            n++;
    }
    return n;
}

int cpex__workers_submit(cpex__workers *pool, cpex__job *const *jobs, size_t count)
{
    if (count == 0)
        return 0;
    pthread_mutex_lock(&pool->lock);
    if (atomic_load(&pool->stopping)) {
        pthread_mutex_unlock(&pool->lock);
        return -1;
    }
    for (size_t i = 0; i < count; i++) {
        jobs[i]->next = NULL;
        if (pool->tail)
            pool->tail->next = jobs[i];
        else
            pool->head = jobs[i];
        pool->tail = jobs[i];
    }
    atomic_fetch_add_explicit(&pool->queued, count, memory_order_relaxed);
    size_t wake = count < pool->sleeping ? count : pool->sleeping;
    /* More queued jobs than threads free to take them, and some threads
     * held by hung handlers: grow by as many (up to the maximum), so the
     * hung ones cannot starve the queue. */
    unsigned busy = atomic_load_explicit(&pool->busy_count, memory_order_relaxed);
    unsigned free_threads = pool->live > busy ? pool->live - busy : 0;
    size_t queued = atomic_load_explicit(&pool->queued, memory_order_relaxed);
    if (queued > free_threads && pool->live < pool->max) {
        size_t deficit = queued - free_threads;
        unsigned stuck = stuck_threads(pool);
        size_t grow = stuck < deficit ? stuck : deficit;
        while (grow-- > 0 && pool->live < pool->max && spawn(pool)) {
        }
    }
    pthread_mutex_unlock(&pool->lock);
    /* Woken after the unlock: a woken thread does not block on the lock. */
    for (size_t i = 0; i < wake; i++)
        pthread_cond_signal(&pool->wake);
    return 0;
}

unsigned cpex__workers_threads(cpex__workers *pool)
{
    pthread_mutex_lock(&pool->lock);
    unsigned n = pool->live;
    pthread_mutex_unlock(&pool->lock);
    return n;
}

unsigned cpex__workers_free(cpex__workers *pool, int64_t grace_ns)
{
    if (!pool)
        return 0;
    pthread_mutex_lock(&pool->lock);
    atomic_store(&pool->stopping, true);
    pthread_cond_broadcast(&pool->wake);
    struct timespec ts;
    abs_time(&ts, cpex__deadline_add(cpex__clock_ns(false), grace_ns > 0 ? grace_ns : 0));
    while (pool->live > 0)
        if (pthread_cond_timedwait(&pool->gone, &pool->lock, &ts) == ETIMEDOUT)
            break;
    unsigned abandoned = pool->live;
    pthread_mutex_unlock(&pool->lock);
    pool_unref(pool);
    return abandoned;
}
