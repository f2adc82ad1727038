/*
 * workers.h — a fixed pool of pthreads running queued jobs, for the
 * concurrent and fire-and-forget phases.
 */
#ifndef CPEX_CORE_WORKERS_H
#define CPEX_CORE_WORKERS_H

#include <stddef.h>

typedef struct cpex__workers cpex__workers;

/** A job: `run(arg)` on a worker thread. The job struct is owned by the submitter. */
typedef struct cpex__job {
    void (*run)(void *arg);
    void *arg;
    struct cpex__job *next; /* the queue's; do not touch */
} cpex__job;

/** Start `threads` workers (at least 1). NULL on failure. */
cpex__workers *cpex__workers_new(unsigned threads);
/** Queue a job. Returns 0, or -1 if the pool is stopping (the job is not run). */
int cpex__workers_submit(cpex__workers *pool, cpex__job *job);
/** Run every queued job, stop the threads and free the pool. NULL is allowed. */
void cpex__workers_free(cpex__workers *pool);

#endif
