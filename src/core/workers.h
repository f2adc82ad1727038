/*
 * workers.h — the pool of threads that runs the concurrent and
 * fire-and-forget phases.
 *
 * Built for short jobs handed over in bursts (one invoke's concurrent
 * handlers): a batch is queued under one lock and the sleeping workers it
 * needs are woken after the lock is released; a worker that finished a job
 * polls the queue for a short while before it sleeps, so back-to-back
 * invokes find it awake.
 *
 * Plugin code can hang. A job carries the deadline of the handler it runs;
 * when a batch arrives and every thread is busy with a job past its
 * deadline, the pool starts another thread (up to its maximum), so one
 * hung plugin cannot starve the others. Extra threads leave after a while
 * without work. cpex__workers_free waits a bounded time and abandons
 * threads that are still inside a handler (they keep the pool alive until
 * they return; nothing they touch is freed under them).
 */
#ifndef CPEX_CORE_WORKERS_H
#define CPEX_CORE_WORKERS_H

#include <stddef.h>
#include <stdint.h>

typedef struct cpex__workers cpex__workers;

/**
 * A job: `run(arg)` on a worker thread. The job struct is owned by the
 * submitter and must stay valid until `run` starts (run may free it).
 */
typedef struct cpex__job {
    void (*run)(void *arg);
    void *arg;
    int64_t deadline_ns;    /* CLOCK_MONOTONIC; 0: none. Tells a hung job from a long queue */
    struct cpex__job *next; /* the queue's; do not touch */
} cpex__job;

/**
 * Start `threads` workers (at least 1) that may grow to `max_threads` (at
 * least `threads`) while some are stuck past their job's deadline. NULL on
 * failure.
 */
cpex__workers *cpex__workers_new(unsigned threads, unsigned max_threads);

/**
 * Queue `count` jobs (an array of pointers) in one step and wake the
 * workers they need. Returns 0, or -1 if the pool is stopping (no job is
 * queued; the caller runs them or drops them).
 */
int cpex__workers_submit(cpex__workers *pool, cpex__job *const *jobs, size_t count);

/** Threads alive now (base + extra, including abandoned ones). For tests. */
unsigned cpex__workers_threads(cpex__workers *pool);

/**
 * Run every queued job, stop the threads and release the pool. Waits at
 * most `grace_ns` for threads still inside a job; those are abandoned (they
 * release the pool when their job returns). Returns the number abandoned.
 * NULL is allowed.
 */
unsigned cpex__workers_free(cpex__workers *pool, int64_t grace_ns);

#endif
