/*
 * workers.h — a fixed pool of pthreads running queued jobs, for the
 * concurrent and fire-and-forget phases.
 */
#ifndef CPEX_CORE_WORKERS_H
#define CPEX_CORE_WORKERS_H

#include <stddef.h>

typedef struct cpex_workers cpex_workers;

/** A job: `run(arg)` on a worker thread. The job struct is owned by the submitter. */
typedef struct cpex_job {
    void (*run)(void *arg);
    void *arg;
    struct cpex_job *next; /* the queue's; do not touch */
} cpex_job;

/** Start `threads` workers (at least 1). NULL on failure. */
cpex_workers *cpex_workers_new(unsigned threads);
/** Queue a job. Returns 0, or -1 if the pool is stopping (the job is not run). */
int cpex_workers_submit(cpex_workers *pool, cpex_job *job);
/** Run every queued job, stop the threads and free the pool. NULL is allowed. */
void cpex_workers_free(cpex_workers *pool);

#endif
