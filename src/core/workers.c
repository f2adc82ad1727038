/* workers.c — see workers.h. */
#include "core/workers.h"

#include <pthread.h>
#include <stdbool.h>

#include "util/alloc.h"

struct cpex__workers {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    cpex__job *head, *tail;
    bool stopping;
    unsigned count;
    pthread_t *threads;
};

static void *worker_main(void *arg)
{
    cpex__workers *pool = arg;
    pthread_mutex_lock(&pool->lock);
    for (;;) {
        while (!pool->head && !pool->stopping)
            pthread_cond_wait(&pool->wake, &pool->lock);
        cpex__job *job = pool->head;
        if (!job)
            break; /* stopping and drained */
        pool->head = job->next;
        if (!pool->head)
            pool->tail = NULL;
        pthread_mutex_unlock(&pool->lock);
        job->run(job->arg);
        pthread_mutex_lock(&pool->lock);
    }
    pthread_mutex_unlock(&pool->lock);
    return NULL;
}

cpex__workers *cpex__workers_new(unsigned threads)
{
    if (threads == 0)
        threads = 1;
    cpex__workers *pool = cpex__calloc(1, sizeof *pool);
    if (!pool)
        return NULL;
    pool->threads = cpex__calloc(threads, sizeof *pool->threads);
    if (!pool->threads) {
        cpex__free(pool);
        return NULL;
    }
    pthread_mutex_init(&pool->lock, NULL);
    pthread_cond_init(&pool->wake, NULL);
    for (unsigned i = 0; i < threads; i++) {
        if (pthread_create(&pool->threads[i], NULL, worker_main, pool) != 0)
            break;
        pool->count++;
    }
    if (pool->count == 0) {
        cpex__workers_free(pool);
        return NULL;
    }
    return pool;
}

int cpex__workers_submit(cpex__workers *pool, cpex__job *job)
{
    pthread_mutex_lock(&pool->lock);
    if (pool->stopping) {
        pthread_mutex_unlock(&pool->lock);
        return -1;
    }
    job->next = NULL;
    if (pool->tail)
        pool->tail->next = job;
    else
        pool->head = job;
    pool->tail = job;
    pthread_cond_signal(&pool->wake);
    pthread_mutex_unlock(&pool->lock);
    return 0;
}

void cpex__workers_free(cpex__workers *pool)
{
    if (!pool)
        return;
    pthread_mutex_lock(&pool->lock);
    pool->stopping = true;
    pthread_cond_broadcast(&pool->wake);
    pthread_mutex_unlock(&pool->lock);
    for (unsigned i = 0; i < pool->count; i++)
        pthread_join(pool->threads[i], NULL);
    pthread_cond_destroy(&pool->wake);
    pthread_mutex_destroy(&pool->lock);
    cpex__free(pool->threads);
    cpex__free(pool);
}
