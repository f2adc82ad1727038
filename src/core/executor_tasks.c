/*
 * executor_tasks.c — the phases that run on the manager's worker threads:
 * concurrent (waited for until every call finished or passed its deadline:
 * a hard bound on the invoke) and fire-and-forget (not waited for; its
 * soft errors go to the background log).
 *
 * One allocation per phase, the batch: what the phase's calls share (the
 * hook name, a copy of the payload, a view of the extensions, a copy of
 * the global context) and every call (its plugin, its context copy, its
 * results). A CMF payload's copy is one more allocation (cpex_cmf_clone
 * shares the parts' content) and the extensions view none (it shares the
 * extensions' content copy-on-write), so a call that outlives its invoke —
 * a fire-and-forget call, or a concurrent call abandoned at its deadline —
 * never reads what the caller may change or free afterwards, and no
 * jansson value is reference-counted by two threads.
 *
 * A call runs only if it starts before its deadline: a call still queued
 * at its deadline (every worker busy, for instance inside a hung handler)
 * is not started and is recorded as not_started, which is never blamed on
 * its plugin. The worker pool grows past threads stuck in hung handlers
 * (workers.c), so one hung plugin cannot starve the others.
 */
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/call.h"
#include "core/core.h"
#include "core/executor_internal.h"
#include "model/extensions_internal.h"
#include "util/alloc.h"

/* How long the invoking thread polls for the concurrent calls before it
 * sleeps: a handoff to a woken thread costs a futex round trip (several
 * microseconds); short calls finish well within this. */
#define WAIT_SPIN_NS 30000

enum task_state {
    T_QUEUED,    /* submitted, not started */
    T_RUNNING,   /* a worker is inside the handler */
    T_DONE,      /* finished; the results below are set */
    T_SKIPPED,   /* a worker found it past its deadline: not started */
    T_ABANDONED, /* the invoke stopped waiting before a worker took it */
};

typedef struct batch batch;

typedef struct task {
    cpex__job job;
    batch *b;
    cpex__plugin *plugin; /* a reference */
    cpex_handler_fn fn;
    json_t *local;        /* a copy of the plugin's local context, or NULL */
    int64_t start;        /* the deadline runs from here: time spent queued counts */
    _Atomic int state;    /* enum task_state */
    /* written by the worker before it stores T_DONE (release) */
    cpex__outcome out;
    cpex_violation *violation;
    json_t *metadata;
    cpex_error_record *records;
    size_t record_count;
} task;

struct batch {
    _Atomic long refs; /* the invoker's (concurrent) and one per submitted task */
    cpex__hub *hub;    /* a reference */
    uint32_t mode;
    bool closing;
    char *hook;
    size_t hook_len;
    cpex_payload payload;
    cpex__payload_ops ops;
    void *data;            /* the payload's copy (owned) */
    cpex_extensions *ext;  /* a view in this allocation, or NULL */
    json_t *global;        /* a copy of the global context, or NULL */
    /* the concurrent phase's rendezvous with its invoker */
    pthread_mutex_t lock;
    pthread_cond_t cond;   /* CLOCK_MONOTONIC */
    _Atomic size_t remaining; /* submitted tasks whose worker has not finished with them */
    _Atomic int sleeping;     /* the invoker waits on `cond` */
    _Atomic int deny_seen;
    size_t count;
    task tasks[];          /* then the extensions view's storage, then the hook name */
};

static void batch_unref(batch *b)
{
    if (atomic_fetch_sub_explicit(&b->refs, 1, memory_order_acq_rel) != 1)
        return;
    for (size_t i = 0; i < b->count; i++) {
        task *t = &b->tasks[i];
        cpex_violation_free(t->violation);
        json_decref(t->metadata);
        cpex_error_records_free(t->records, t->record_count);
        json_decref(t->local);
        cpex__plugin_unref(t->plugin);
    }
    if (b->data && b->ops.free)
        b->ops.free(b->data, b->ops.user);
    cpex__extensions_view_release(b->ext);
    json_decref(b->global);
    if (b->mode == CPEX_MODE_CONCURRENT) {
        pthread_cond_destroy(&b->cond);
        pthread_mutex_destroy(&b->lock);
    }
    cpex__hub_unref(b->hub);
    cpex__free(b);
}

/* The batch of the `n` enabled handlers of phase `mode`, with its copies
 * made; the tasks are set up but not submitted. NULL on OOM. */
static batch *batch_new(cpex__pipeline *pl, uint32_t mode, size_t n)
{
    const cpex__hook *h = pl->hook;
    size_t ext_size = pl->ext ? cpex__extensions_size : 0;
    size_t head = sizeof(batch) + n * sizeof(task);
    head = (head + 15) & ~(size_t)15; /* the view's alignment */
    batch *b = cpex__malloc(head + ext_size + h->name_len + 1);
    if (!b)
        return NULL;
    memset(b, 0, sizeof *b);
    atomic_init(&b->refs, 1);
    b->hub = cpex__hub_ref(pl->manager->hub);
    b->mode = mode;
    b->closing = pl->closing;
    b->hook = (char *)b + head + ext_size;
    memcpy(b->hook, h->name, h->name_len + 1);
    b->hook_len = h->name_len;
    b->payload = pl->payload;
    b->ops = pl->ops;
    if (pl->ext) {
        b->ext = (cpex_extensions *)(void *)((char *)b + head);
        cpex__extensions_view_init(b->ext, pl->ext);
    }
    if (mode == CPEX_MODE_CONCURRENT) {
        pthread_mutex_init(&b->lock, NULL);
        pthread_condattr_t ca;
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&b->cond, &ca);
        pthread_condattr_destroy(&ca);
    }
    bool ok = true;
    if (pl->payload.data) {
        b->data = pl->ops.clone ? pl->ops.clone(pl->payload.data, pl->ops.user) : NULL;
        b->payload.data = b->data;
        ok = b->data != NULL;
    }
    json_t *global = cpex__ctx_global_state(pl->ctx, false);
    if (ok && global)
        ok = (b->global = json_deep_copy(global)) != NULL;
    /* Tasks are counted in as they are filled, so batch_unref releases
     * exactly what was taken when a later step runs out of memory. */
    int64_t now = cpex__now_ns();
    for (size_t i = h->phase_start[mode]; ok && i < h->phase_start[mode + 1] && b->count < n; i++) {
        cpex__plugin *p = h->entries[i].plugin;
        if (atomic_load_explicit(&p->disabled, memory_order_relaxed))
            continue;
        task *t = &b->tasks[b->count];
        memset(t, 0, offsetof(task, out));
        t->violation = NULL;
        t->metadata = NULL;
        t->records = NULL;
        t->record_count = 0;
        t->out.kind = CPEX__OUT_ALLOW;
        t->b = b;
        t->plugin = cpex__plugin_ref(p);
        t->fn = h->entries[i].fn;
        t->start = now;
        t->job.arg = t;
        t->job.deadline_ns = cpex__deadline_add(now, p->timeout_ns);
        atomic_init(&t->state, T_QUEUED);
        b->count++;
        json_t *local = cpex__ctx_local_state(pl->ctx, p, false);
        if (local && !(t->local = json_deep_copy(local)))
            ok = false;
    }
    if (!ok) {
        batch_unref(b);
        return NULL;
    }
    return b;
}

/* Make task `t`'s call on this thread: `cs` is set up, the handler called
 * (unless its plugin is not ready), the outcome in *o. */
static void task_call(task *t, cpex_error_record **records, size_t *record_count,
                      cpex__call_state *cs, cpex__outcome *o)
{
    batch *b = t->b;
    cpex__call_setup setup = {b->hub,
                              b->hook,
                              b->hook_len,
                              b->payload.kind ? &b->payload : NULL,
                              &b->ops,
                              b->ext,
                              b->closing,
                              records,
                              record_count};
    cpex__call_state_init(cs, &setup, t->plugin, b->mode);
    cs->base_local = t->local;
    cs->base_global = b->global;
    atomic_fetch_add_explicit(&t->plugin->inflight, 1, memory_order_relaxed);
    cpex__call_handler(cs, t->fn, t->start, false, o);
    atomic_fetch_sub_explicit(&t->plugin->inflight, 1, memory_order_release);
}

/* Submit the batch's tasks; a pool that is stopping (the manager is being
 * freed) gets them run here. */
static void submit(cpex__pipeline *pl, batch *b, void (*run)(void *))
{
    cpex__job *jobs[64];
    atomic_fetch_add_explicit(&b->refs, (long)b->count, memory_order_relaxed);
    int64_t latest = 0;
    for (size_t i = 0; i < b->count; i++)
        if (b->tasks[i].job.deadline_ns > latest)
            latest = b->tasks[i].job.deadline_ns;
    cpex__hub_begin(b->hub, (long)b->count, latest);
    for (size_t done = 0; done < b->count;) {
        size_t k = 0;
        for (; k < 64 && done + k < b->count; k++) {
            task *t = &b->tasks[done + k];
            t->job.run = run;
            jobs[k] = &t->job;
        }
        if (cpex__workers_submit(pl->manager->workers, jobs, k) != 0)
            for (size_t j = 0; j < k; j++)
                run(jobs[j]->arg);
        done += k;
    }
}

/* ------------------------------------------------------------------ */
/* Concurrent                                                          */
/* ------------------------------------------------------------------ */

static void wake_invoker(batch *b)
{
    if (atomic_load(&b->sleeping)) {
        pthread_mutex_lock(&b->lock);
        pthread_cond_broadcast(&b->cond);
        pthread_mutex_unlock(&b->lock);
    }
}

static void conc_run(void *arg)
{
    task *t = arg;
    batch *b = t->b;
    int expected = T_QUEUED;
    bool late = cpex__now_ns() > t->job.deadline_ns;
    if (atomic_compare_exchange_strong(&t->state, &expected, late ? T_SKIPPED : T_RUNNING) &&
        !late) {
        cpex__call_state cs;
        cpex__outcome o;
        task_call(t, &t->records, &t->record_count, &cs, &o);
        t->out = o;
        t->violation = cs.violation;
        cs.violation = NULL;
        t->metadata = cs.metadata;
        cs.metadata = NULL;
        cpex__call_state_cleanup(&cs);
        if (o.kind == CPEX__OUT_DENY)
            atomic_store(&b->deny_seen, 1);
        atomic_store_explicit(&t->state, T_DONE, memory_order_release);
    }
    /* Dekker with the invoker: it sets `sleeping`, then reads `remaining`;
     * we lower `remaining`, then read `sleeping` (both seq_cst), so one of
     * us sees the other. */
    /* Any finish may end the wait (all done, a deny decided) or bring the
     * latest open deadline forward: a sleeping invoker re-evaluates. */
    atomic_fetch_sub(&b->remaining, 1);
    wake_invoker(b);
    cpex__hub *hub = cpex__hub_ref(b->hub);
    batch_unref(b);
    cpex__hub_done(hub, NULL, 0);
    cpex__hub_unref(hub);
}

/* Whether the invoke may stop waiting now (short circuit): an explicit deny
 * is the first halting outcome in priority order, every task before it
 * has finished. */
static bool deny_decided(batch *b)
{
    for (size_t k = 0; k < b->count; k++) {
        int st = atomic_load_explicit(&b->tasks[k].state, memory_order_acquire);
        if (st != T_DONE)
            return false;
        if (b->tasks[k].out.kind == CPEX__OUT_DENY)
            return true;
    }
    return false;
}

/* The latest deadline of a task not finished (0 when none). */
static int64_t latest_open_deadline(batch *b)
{
    int64_t latest = 0;
    for (size_t k = 0; k < b->count; k++) {
        int st = atomic_load_explicit(&b->tasks[k].state, memory_order_acquire);
        if ((st == T_QUEUED || st == T_RUNNING) && b->tasks[k].job.deadline_ns > latest)
            latest = b->tasks[k].job.deadline_ns;
    }
    return latest;
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* Wait until every task finished, a deny decided (short circuit), or the
 * last open deadline passed. True when cut short by a deny. */
static bool wait_tasks(batch *b, bool short_circuit)
{
    int64_t spin_end = cpex__now_ns() + WAIT_SPIN_NS;
    for (unsigned i = 1; atomic_load(&b->remaining) > 0; i++) {
        if (short_circuit && atomic_load(&b->deny_seen) && deny_decided(b))
            return true;
        cpu_relax();
        if ((i & 31) == 0) {
            sched_yield(); /* let a worker on this core run */
            if (cpex__now_ns() >= spin_end)
                break;
        }
    }
    pthread_mutex_lock(&b->lock);
    bool cut = false;
    for (;;) {
        atomic_store(&b->sleeping, 1);
        if (atomic_load(&b->remaining) == 0)
            break;
        if (short_circuit && atomic_load(&b->deny_seen) && deny_decided(b)) {
            cut = true;
            break;
        }
        int64_t latest = latest_open_deadline(b);
        if (latest == 0 || cpex__now_ns() >= latest)
            break;
        struct timespec ts = {(time_t)(latest / 1000000000), (long)(latest % 1000000000)};
        pthread_cond_timedwait(&b->cond, &b->lock, &ts);
    }
    atomic_store(&b->sleeping, 0);
    pthread_mutex_unlock(&b->lock);
    return cut;
}

/* A caller-thread call state for recording under plugin `p`'s name. */
static void record_state(cpex__call_state *rec, cpex__pipeline *pl, cpex__plugin *p)
{
    memset(rec, 0, sizeof *rec);
    rec->hub = pl->manager->hub;
    rec->plugin = p;
    rec->mode = CPEX_MODE_CONCURRENT;
    rec->records = &pl->res->errors;
    rec->record_count = &pl->res->error_count;
}

bool cpex__ex_run_concurrent(cpex__pipeline *pl)
{
    const cpex__hook *h = pl->hook;
    size_t n = 0;
    for (size_t i = h->phase_start[CPEX_MODE_CONCURRENT];
         i < h->phase_start[CPEX_MODE_CONCURRENT + 1]; i++)
        if (!atomic_load_explicit(&h->entries[i].plugin->disabled, memory_order_relaxed))
            n++;
    if (n == 0)
        return true;
    batch *b = batch_new(pl, CPEX_MODE_CONCURRENT, n);
    if (!b) {
        /* A concurrent plugin may deny: one that cannot run must not be
         * skipped silently. Nothing was started; fail closed. */
        cpex__ex_halt(pl, cpex__pipeline_violation(CPEX_CODE_INTERNAL_ERROR,
                                                   "out of memory starting the concurrent phase",
                                                   NULL, NULL));
        return false;
    }
    atomic_init(&b->remaining, b->count);
    submit(pl, b, conc_run);
    bool cut = wait_tasks(b, pl->manager->opts.short_circuit_on_deny);

    /* Outcomes in priority order; the first halting one wins. */
    cpex_violation *winner = NULL;
    for (size_t k = 0; k < b->count; k++) {
        task *t = &b->tasks[k];
        cpex__plugin *p = t->plugin;
        cpex__call_state rec;
        record_state(&rec, pl, p);
        int st = T_QUEUED;
        /* A task nobody took yet is given up, so no worker starts it later. */
        if (!atomic_compare_exchange_strong(&t->state, &st, T_ABANDONED))
            st = atomic_load_explicit(&t->state, memory_order_acquire);
        if (cut && st != T_DONE)
            continue; /* cut short by a deny: nothing to say about it */
        if (st == T_QUEUED || st == T_SKIPPED) {
            cpex__call_record(&rec, CPEX_CODE_NOT_STARTED,
                              "not started: worker pool busy (every worker thread was inside "
                              "another handler until this handler's deadline)");
            if (p->on_error == CPEX_ON_ERROR_FAIL && !winner) {
                char reason[400];
                snprintf(reason, sizeof reason,
                         "Plugin '%.200s' could not start before its deadline: every worker "
                         "thread was busy",
                         p->name);
                winner = cpex__pipeline_violation(CPEX_CODE_WORKER_POOL_BUSY, reason, NULL,
                                                  p->name);
            }
            continue;
        }
        cpex__outcome o;
        if (st == T_RUNNING) {
            o.kind = CPEX__OUT_TIMEOUT; /* past its deadline, still inside the handler */
            o.record_code = CPEX_CODE_NONE;
            o.message[0] = '\0';
        } else {
            /* Take the worker's outputs over instead of sharing them: jansson
             * values never have owners on two threads. */
            cpex__records_move(&pl->res->errors, &pl->res->error_count, t->records,
                               t->record_count);
            o = t->out;
            if (o.kind != CPEX__OUT_TIMEOUT)
                cpex__ex_keep_metadata(&rec, &pl->res->metadata, t->metadata);
        }
        switch (o.kind) {
        case CPEX__OUT_ALLOW:
            break;
        case CPEX__OUT_DENY:
            if (!winner) {
                rec.violation = t->violation;
                t->violation = NULL;
                winner = cpex__ex_take_violation(&rec, CPEX_CODE_CONCURRENT_DENY);
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
        cpex_violation_free(rec.violation);
    }
    batch_unref(b);
    if (winner) {
        cpex__ex_halt(pl, winner);
        return false;
    }
    return true;
}

/* ------------------------------------------------------------------ */
/* Fire and forget                                                     */
/* ------------------------------------------------------------------ */

static void faf_run(void *arg)
{
    task *t = arg;
    batch *b = t->b;
    cpex__hub *hub = cpex__hub_ref(b->hub);
    cpex_error_record *records = NULL;
    size_t count = 0;
    if (cpex__now_ns() > t->job.deadline_ns) {
        cpex__records_add(&records, &count, t->plugin->name, CPEX_CODE_NOT_STARTED,
                          "not started: worker pool busy (every worker thread was inside another "
                          "handler until this handler's deadline)",
                          NULL);
    } else {
        cpex__call_state cs;
        cpex__outcome o;
        task_call(t, &records, &count, &cs, &o);
        if (o.kind == CPEX__OUT_DENY)
            cpex__ex_dropped_deny(&cs);
        else if (o.kind == CPEX__OUT_ERROR || o.kind == CPEX__OUT_TIMEOUT)
            cpex__ex_soft_failure(&cs, &o);
        cpex__call_state_cleanup(&cs);
    }
    for (size_t i = 0; i < count; i++)
        cpex__log(cpex__hub_sink(hub), CPEX_LOG_WARN, t->plugin->name, "background: [%s] %s",
                  records[i].code, records[i].message);
    batch_unref(b);
    cpex__hub_done(hub, records, count);
    cpex_error_records_free(records, count);
    cpex__hub_unref(hub);
}

void cpex__ex_run_fire_and_forget(cpex__pipeline *pl)
{
    const cpex__hook *h = pl->hook;
    size_t n = 0;
    const char *first = NULL;
    for (size_t i = h->phase_start[CPEX_MODE_FIRE_AND_FORGET];
         i < h->phase_start[CPEX_MODE_FIRE_AND_FORGET + 1]; i++)
        if (!atomic_load_explicit(&h->entries[i].plugin->disabled, memory_order_relaxed)) {
            n++;
            first = first ? first : h->entries[i].plugin->name;
        }
    if (n == 0)
        return;
    batch *b = batch_new(pl, CPEX_MODE_FIRE_AND_FORGET, n);
    if (!b) {
        cpex__records_add(&pl->res->errors, &pl->res->error_count, first, CPEX_CODE_INTERNAL,
                          "out of memory: fire-and-forget handlers not started", NULL);
        return;
    }
    submit(pl, b, faf_run);
    batch_unref(b); /* the tasks hold it now */
}
