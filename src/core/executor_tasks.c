/*
 * executor_tasks.c — the phases that run on the manager's worker threads:
 * concurrent (waited for, up to each handler's deadline) and
 * fire-and-forget (not waited for; errors go to the background log).
 *
 * Work on other threads gets its own copies of the payload, extensions
 * and context, so a handler that outlives its invoke never touches the
 * caller's data, and no jansson value is shared across threads.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/call.h"
#include "core/core.h"
#include "core/executor_internal.h"
#include "util/alloc.h"

/* ------------------------------------------------------------------ */
/* Work on other threads: concurrent and fire-and-forget               */
/* ------------------------------------------------------------------ */

/* What background calls read: their own copies, shared and refcounted,
 * so a call that outlives its invoke never touches the caller's data. */
typedef struct shared_input {
    _Atomic long refs;
    cpex_manager *manager;
    char *hook;
    size_t hook_len;
    cpex_payload payload;
    cpex__payload_ops ops;
    void *data;
    cpex_extensions *ext;
    bool closing;
} shared_input;

static void shared_input_unref(shared_input *in)
{
    if (!in || atomic_fetch_sub(&in->refs, 1) != 1)
        return;
    if (in->data && in->ops.free)
        in->ops.free(in->data, in->ops.user);
    cpex_extensions_unref(in->ext);
    cpex__free(in->hook);
    cpex__free(in);
}

static shared_input *shared_input_new(cpex__pipeline *pl)
{
    shared_input *in = cpex__calloc(1, sizeof *in);
    if (!in)
        return NULL;
    atomic_init(&in->refs, 1);
    in->manager = pl->manager;
    in->hook = cpex__strndup(pl->hook->name, pl->hook->name_len);
    in->hook_len = pl->hook->name_len;
    in->payload = pl->payload;
    in->ops = pl->ops;
    in->closing = pl->closing;
    if (pl->payload.data) {
        if (!pl->ops.clone)
            goto fail;
        in->data = pl->ops.clone(pl->payload.data, pl->ops.user);
        if (!in->data)
            goto fail;
        in->payload.data = in->data;
    }
    if (pl->ext) {
        in->ext = cpex_extensions_copy(pl->ext);
        if (!in->ext)
            goto fail;
    }
    if (!in->hook)
        goto fail;
    return in;
fail:
    shared_input_unref(in);
    return NULL;
}

static json_t *copy_or_null(json_t *v) { return v ? json_deep_copy(v) : NULL; }

/* What a call on a worker thread carries, concurrent or fire-and-forget:
 * references to the shared input and the plugin, and its own copies of
 * the context, so it never touches the caller's data. */
typedef struct worker_call {
    cpex__job job;
    shared_input *in;
    cpex__plugin *plugin;
    cpex_handler_fn fn;
    json_t *local, *global;
    int64_t start; /* the deadline runs from here: time spent queued counts */
} worker_call;

/* Set up `w` to call entry `e` with `in` as job `run(arg)`. False when
 * memory ran out copying the context; release `w` either way. */
static bool worker_call_setup(worker_call *w, const cpex__pipeline *pl, shared_input *in,
                              const cpex__hook_entry *e, int64_t start, void (*run)(void *),
                              void *arg)
{
    atomic_fetch_add(&in->refs, 1);
    w->in = in;
    w->plugin = cpex__plugin_ref(e->plugin);
    w->fn = e->fn;
    w->start = start;
    w->job.run = run;
    w->job.arg = arg;
    json_t *local = cpex__ctx_local_state(pl->ctx, e->plugin, false);
    json_t *global = cpex__ctx_global_state(pl->ctx, false);
    w->local = copy_or_null(local);
    w->global = copy_or_null(global);
    return (!local || w->local) && (!global || w->global);
}

static void worker_call_release(worker_call *w)
{
    json_decref(w->local);
    json_decref(w->global);
    shared_input_unref(w->in);
    cpex__plugin_unref(w->plugin);
}

/* Make the call (on the worker thread) in `mode`; soft errors go to
 * `records`. It reads the task's own copies; context writes go to scratch
 * and are discarded. The caller cleans `cs` up. */
static void worker_call_run(worker_call *w, uint32_t mode, cpex_error_record **records,
                            size_t *record_count, cpex__call_state *cs, cpex__outcome *o)
{
    shared_input *in = w->in;
    cpex__call_setup setup = {in->manager,
                              in->hook,
                              in->hook_len,
                              in->payload.kind ? &in->payload : NULL,
                              &in->ops,
                              in->ext,
                              in->closing,
                              records,
                              record_count};
    cpex__call_state_init(cs, &setup, w->plugin, mode);
    cs->base_local = w->local;
    cs->base_global = w->global;
    cpex__call_handler(cs, w->fn, w->start, false, o);
}

/* A group of concurrent calls the invoker waits for. */
typedef struct conc_group {
    _Atomic long refs;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    size_t remaining;
    bool deny_seen;
} conc_group;

/* Work on worker threads is counted so shutdown can wait for all of it,
 * including concurrent handlers that outlived their invoke's deadline. */
static void bg_begin(cpex_manager *m)
{
    pthread_mutex_lock(&m->bg_lock);
    m->bg_pending++;
    pthread_mutex_unlock(&m->bg_lock);
}

static void bg_done(cpex_manager *m, cpex_error_record *records, size_t count)
{
    pthread_mutex_lock(&m->bg_lock);
    /* details move over: never share a jansson value across threads */
    cpex__records_move(&m->bg_errors, &m->bg_error_count, records, count);
    m->bg_pending--;
    if (m->bg_pending == 0)
        pthread_cond_broadcast(&m->bg_idle);
    pthread_mutex_unlock(&m->bg_lock);
}

static void group_unref(conc_group *g)
{
    if (atomic_fetch_sub(&g->refs, 1) != 1)
        return;
    pthread_cond_destroy(&g->cond);
    pthread_mutex_destroy(&g->lock);
    cpex__free(g);
}

typedef struct conc_task {
    worker_call call;
    _Atomic long refs;
    conc_group *group;
    /* written by the worker before `done`, under the group lock */
    bool done;
    cpex__outcome out;
    cpex_violation *violation;
    json_t *metadata;
    cpex_error_record *records;
    size_t record_count;
} conc_task;

static void conc_task_unref(conc_task *t)
{
    if (atomic_fetch_sub(&t->refs, 1) != 1)
        return;
    cpex_violation_free(t->violation);
    json_decref(t->metadata);
    cpex_error_records_free(t->records, t->record_count);
    worker_call_release(&t->call);
    group_unref(t->group);
    cpex__free(t);
}

static void conc_task_run(void *arg)
{
    conc_task *t = arg;
    cpex__call_state cs;
    cpex__outcome o;
    worker_call_run(&t->call, CPEX_MODE_CONCURRENT, &t->records, &t->record_count, &cs, &o);
    pthread_mutex_lock(&t->group->lock);
    t->out = o;
    t->violation = cs.violation;
    cs.violation = NULL;
    t->metadata = cs.metadata;
    cs.metadata = NULL;
    t->done = true;
    t->group->remaining--;
    if (o.kind == CPEX__OUT_DENY)
        t->group->deny_seen = true;
    pthread_cond_broadcast(&t->group->cond);
    pthread_mutex_unlock(&t->group->lock);
    cpex__call_state_cleanup(&cs);
    cpex_manager *m = t->call.in->manager;
    conc_task_unref(t);
    bg_done(m, NULL, 0);
}

/* Concurrent phase. Returns false when the pipeline halted. */
bool cpex__ex_run_concurrent(cpex__pipeline *pl)
{
    const cpex__hook *h = pl->hook;
    size_t first = h->phase_start[CPEX_MODE_CONCURRENT];
    size_t last = h->phase_start[CPEX_MODE_CONCURRENT + 1];
    size_t n = 0;
    for (size_t i = first; i < last; i++)
        if (!atomic_load_explicit(&h->entries[i].plugin->disabled, memory_order_relaxed))
            n++;
    if (n == 0)
        return true;

    conc_task **tasks = cpex__calloc(n, sizeof *tasks);
    conc_group *g = cpex__calloc(1, sizeof *g);
    shared_input *in = shared_input_new(pl);
    if (!tasks || !g || !in) {
        cpex__free(tasks);
        cpex__free(g);
        shared_input_unref(in);
        cpex__ex_halt(pl, cpex__pipeline_violation(CPEX_CODE_INTERNAL_ERROR,
                                                   "out of memory starting the concurrent phase",
                                                   NULL, NULL));
        return false;
    }
    atomic_init(&g->refs, 1);
    pthread_mutex_init(&g->lock, NULL);
    pthread_cond_init(&g->cond, NULL);

    int64_t now = cpex__now_ns();
    size_t made = 0;
    cpex__plugin *starved = NULL; /* a handler that could not be set up */
    for (size_t i = first; i < last && made < n; i++) {
        cpex__plugin *p = h->entries[i].plugin;
        if (atomic_load_explicit(&p->disabled, memory_order_relaxed))
            continue;
        conc_task *t = cpex__calloc(1, sizeof *t);
        if (!t) {
            starved = p;
            break;
        }
        atomic_init(&t->refs, 2); /* the invoker's and the worker's */
        atomic_fetch_add(&g->refs, 1);
        t->group = g;
        bool copied = worker_call_setup(&t->call, pl, in, &h->entries[i], now, conc_task_run, t);
        tasks[made++] = t;
        if (!copied) {
            starved = p;
            break;
        }
    }
    if (starved) {
        /* A concurrent plugin may deny: one that cannot run must not be
         * skipped silently. Nothing was started yet; fail closed. */
        for (size_t k = 0; k < made; k++) {
            conc_task_unref(tasks[k]); /* the worker's reference */
            conc_task_unref(tasks[k]); /* ours */
        }
        cpex__free(tasks);
        group_unref(g);
        shared_input_unref(in);
        char reason[300];
        snprintf(reason, sizeof reason,
                 "out of memory setting up the concurrent handler of plugin '%.200s'",
                 starved->name);
        cpex__ex_halt(pl, cpex__pipeline_violation(CPEX_CODE_INTERNAL_ERROR, reason, NULL,
                                                   starved->name));
        return false;
    }
    pthread_mutex_lock(&g->lock);
    g->remaining = made;
    pthread_mutex_unlock(&g->lock);
    for (size_t k = 0; k < made; k++) {
        bg_begin(pl->manager);
        cpex__job *job = &tasks[k]->call.job;
        if (cpex__workers_submit(pl->manager->workers, &job, 1) != 0) {
            /* The pool is stopping (manager being freed): run it here. */
            conc_task_run(tasks[k]);
        }
    }

    /* Wait until every task finished or passed its own deadline. With
     * short_circuit_on_deny, stop as soon as an explicit deny is the first
     * halting outcome in priority order: every task before it has finished,
     * so nothing still running could outrank it. */
    bool short_circuit = pl->manager->opts.short_circuit_on_deny;
    bool aborted = false;
    pthread_mutex_lock(&g->lock);
    while (g->remaining > 0) {
        if (short_circuit && g->deny_seen) {
            for (size_t k = 0; k < made && tasks[k]->done; k++)
                if (tasks[k]->out.kind == CPEX__OUT_DENY) {
                    aborted = true;
                    break;
                }
            if (aborted)
                break;
        }
        int64_t latest = 0;
        for (size_t k = 0; k < made; k++) {
            int64_t deadline = tasks[k]->call.start + tasks[k]->call.plugin->timeout_ns;
            if (!tasks[k]->done && deadline > latest)
                latest = deadline;
        }
        int64_t wait_ns = latest - cpex__now_ns();
        if (wait_ns <= 0)
            break;
        struct timespec abs;
        clock_gettime(CLOCK_REALTIME, &abs);
        abs.tv_sec += (time_t)(wait_ns / 1000000000);
        abs.tv_nsec += (long)(wait_ns % 1000000000);
        if (abs.tv_nsec >= 1000000000) {
            abs.tv_sec++;
            abs.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&g->cond, &g->lock, &abs);
    }

    /* Outcomes in priority order; the first halting one wins. */
    cpex_violation *winner = NULL;
    for (size_t k = 0; k < made; k++) {
        conc_task *t = tasks[k];
        cpex__plugin *p = t->call.plugin;
        cpex__call_state rec; /* only to record under the plugin's name */
        memset(&rec, 0, sizeof rec);
        rec.manager = pl->manager;
        rec.plugin = p;
        rec.records = &pl->res->errors;
        rec.record_count = &pl->res->error_count;
        if (t->done) {
            /* Take the worker's outputs over instead of sharing references:
             * jansson's reference counts are not safe across threads, and the
             * worker may drop the task on its own thread. */
            cpex__records_move(&pl->res->errors, &pl->res->error_count, t->records,
                              t->record_count);
            json_t *md = t->metadata;
            t->metadata = NULL;
            if (t->out.kind != CPEX__OUT_TIMEOUT)
                cpex__ex_keep_metadata(&rec, &pl->res->metadata, md);
            json_decref(md);
        }
        cpex__outcome o = t->out;
        if (!t->done) {
            if (aborted)
                continue; /* cut short by a deny: records nothing */
            o.kind = CPEX__OUT_TIMEOUT;
        }
        switch (o.kind) {
        case CPEX__OUT_ALLOW:
            break;
        case CPEX__OUT_DENY:
            if (!winner) {
                cpex__call_state tmp = rec;
                tmp.violation = t->violation;
                t->violation = NULL;
                winner = cpex__ex_take_violation(&tmp, CPEX_CODE_CONCURRENT_DENY);
            }
            break;
        case CPEX__OUT_ERROR:
        case CPEX__OUT_TIMEOUT:
            if (p->on_error == CPEX_ON_ERROR_FAIL) {
                if (!winner)
                    winner = cpex__ex_failure_violation(p, &o);
            } else {
                cpex__ex_soft_failure(&rec, &o);
            }
            break;
        }
    }
    pthread_mutex_unlock(&g->lock);
    for (size_t k = 0; k < made; k++)
        conc_task_unref(tasks[k]);
    cpex__free(tasks);
    group_unref(g);
    shared_input_unref(in);
    if (winner) {
        cpex__ex_halt(pl, winner);
        return false;
    }
    return true;
}

static void faf_task_run(void *arg)
{
    worker_call *t = arg;
    cpex_manager *m = t->in->manager;
    cpex_error_record *records = NULL;
    size_t count = 0;
    cpex__call_state cs;
    cpex__outcome o;
    worker_call_run(t, CPEX_MODE_FIRE_AND_FORGET, &records, &count, &cs, &o);
    if (o.kind == CPEX__OUT_DENY)
        cpex__ex_dropped_deny(&cs);
    else if (o.kind == CPEX__OUT_ERROR || o.kind == CPEX__OUT_TIMEOUT)
        cpex__ex_soft_failure(&cs, &o);
    for (size_t i = 0; i < count; i++)
        cpex__log(cpex__sink_of(m), CPEX_LOG_WARN, t->plugin->name, "background: [%s] %s", records[i].code,
                 records[i].message);
    cpex__call_state_cleanup(&cs);
    worker_call_release(t);
    cpex__free(t);
    bg_done(m, records, count);
    cpex_error_records_free(records, count);
}

void cpex__ex_run_fire_and_forget(cpex__pipeline *pl)
{
    const cpex__hook *h = pl->hook;
    size_t first = h->phase_start[CPEX_MODE_FIRE_AND_FORGET];
    size_t last = h->phase_start[CPEX_MODE_FIRE_AND_FORGET + 1];
    shared_input *in = NULL;
    for (size_t i = first; i < last; i++) {
        cpex__plugin *p = h->entries[i].plugin;
        if (atomic_load_explicit(&p->disabled, memory_order_relaxed))
            continue;
        if (!in) {
            in = shared_input_new(pl);
            if (!in) {
                cpex__records_add(&pl->res->errors, &pl->res->error_count, p->name,
                                 CPEX_CODE_INTERNAL,
                                 "out of memory: fire-and-forget handlers not started", NULL);
                return;
            }
        }
        worker_call *t = cpex__calloc(1, sizeof *t);
        if (!t || !worker_call_setup(t, pl, in, &h->entries[i], cpex__now_ns(), faf_task_run, t)) {
            if (t)
                worker_call_release(t);
            cpex__free(t);
            cpex__records_add(&pl->res->errors, &pl->res->error_count, p->name,
                             CPEX_CODE_INTERNAL, "out of memory: fire-and-forget handler not started",
                             NULL);
            continue;
        }
        bg_begin(pl->manager);
        cpex__job *job = &t->job;
        if (cpex__workers_submit(pl->manager->workers, &job, 1) != 0)
            faf_task_run(t);
    }
    shared_input_unref(in);
}
