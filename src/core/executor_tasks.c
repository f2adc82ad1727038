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
    json_t *local;     /* a copy of the plugin's local context, or NULL */
    int64_t start;     /* the deadline runs from here: time spent queued counts */
    _Atomic int state; /* enum task_state */
    /* observation (b->observe): which entry, its metric, its verdict slot */
    size_t entry;
    uint32_t metric_id;
    cpex__verdict_item *item; /* fire-and-forget: a reference to the verdict, or NULL */
    size_t slot;
    _Atomic uint64_t t_start; /* ticks when the handler was called (0: not yet) */
    uint64_t t_end;           /* ticks when it returned (set before T_DONE) */
    bool disabled;            /* the call disabled its plugin (set before T_DONE) */
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
    void *data;           /* the payload's copy (owned) */
    cpex_extensions *ext; /* a view in this allocation, or NULL */
    json_t *global;       /* a copy of the global context, or NULL */
    /* the concurrent phase's rendezvous with its invoker */
    pthread_mutex_t lock;
    pthread_cond_t cond;      /* CLOCK_MONOTONIC */
    _Atomic size_t remaining; /* submitted tasks whose worker has not finished with them */
    _Atomic int sleeping;     /* the invoker waits on `cond` */
    _Atomic int deny_seen;
    bool observe; /* time the calls (records or metrics on) */
    size_t count;
    task tasks[]; /* then the extensions view's storage, then the hook name */
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
        cpex__verdict_unref(t->item);
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
    b->observe = pl->obs != NULL;
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
        t->entry = i;
        t->metric_id = pl->obs && pl->obs->ids ? pl->obs->ids[i] : CPEX__NO_METRIC;
        t->item = NULL;
        atomic_init(&t->t_start, 0);
        t->t_end = 0;
        t->disabled = false;
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
    cpex__call_setup setup = {
        b->hub,     b->hook, b->hook_len, b->payload.kind ? &b->payload : NULL, &b->ops, b->ext,
        b->closing, records, record_count};
    cpex__call_state_init(cs, &setup, t->plugin, b->mode);
    cs->base_local = t->local;
    cs->base_global = b->global;
    atomic_fetch_add_explicit(&t->plugin->inflight, 1, memory_order_relaxed);
    if (b->observe)
        atomic_store_explicit(&t->t_start, cpex__ticks(), memory_order_relaxed);
    cpex__call_handler(cs, t->fn, t->start, false, o);
    if (b->observe)
        t->t_end = cpex__ticks();
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

/* A concurrent call's record info, and whether its worker finished it. */
typedef struct conc_obs {
    cpex__rec_info ri;
    bool done;
} conc_obs;

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
    bool cut =
        wait_tasks(b, atomic_load_explicit(&pl->manager->short_circuit, memory_order_relaxed));

    /* Outcomes in priority order; the first halting one wins. */
    cpex_violation *winner = NULL;
    size_t winner_task = b->count;
    /* With observation: each call's record info and whether it finished. */
    conc_obs local_obs[32];
    conc_obs *info = !pl->obs         ? NULL
                     : b->count <= 32 ? local_obs
                                      : cpex__calloc(b->count, sizeof *info);
    uint64_t now_ticks = pl->obs ? cpex__ticks() : 0;
    for (size_t k = 0; k < b->count; k++) {
        task *t = &b->tasks[k];
        cpex__plugin *p = t->plugin;
        cpex__call_state rec;
        record_state(&rec, pl, p);
        int st = T_QUEUED;
        cpex__rec_info ri = {
            CPEX_EXEC_COMPLETED, CPEX_ALLOW, false, false, false, false, false, NULL, NULL};
        /* A task nobody took yet is given up, so no worker starts it later. */
        if (!atomic_compare_exchange_strong(&t->state, &st, T_ABANDONED))
            st = atomic_load_explicit(&t->state, memory_order_acquire);
        if (cut && st != T_DONE) {
            /* cut short by a deny: no longer awaited, nothing to say about it */
            ri.status = CPEX_EXEC_CANCELLED;
            ri.requested = -1;
            ri.ran = st == T_RUNNING;
            goto observed;
        }
        if (st == T_QUEUED || st == T_SKIPPED) {
            cpex__call_record(&rec, CPEX_CODE_NOT_STARTED,
                              "not started: worker pool busy (every worker thread was inside "
                              "another handler until this handler's deadline)");
            ri.status = CPEX_EXEC_NOT_STARTED;
            ri.requested = -1;
            ri.code = cpex_code_name(CPEX_CODE_NOT_STARTED);
            if (p->on_error == CPEX_ON_ERROR_FAIL && !winner) {
                char reason[400];
                snprintf(reason, sizeof reason,
                         "Plugin '%.200s' could not start before its deadline: every worker "
                         "thread was busy",
                         p->name);
                winner =
                    cpex__pipeline_violation(CPEX_CODE_WORKER_POOL_BUSY, reason, NULL, p->name);
                winner_task = k;
            }
            goto observed;
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
        ri.ran = true;
        switch (o.kind) {
        case CPEX__OUT_ALLOW: break;
        case CPEX__OUT_DENY:
            ri.requested = CPEX_DENY;
            ri.code = t->violation ? t->violation->code : cpex_code_name(CPEX_CODE_CONCURRENT_DENY);
            ri.reason = t->violation ? t->violation->reason : NULL;
            if (!winner) {
                rec.violation = t->violation;
                t->violation = NULL;
                winner = cpex__ex_take_violation(&rec, CPEX_CODE_CONCURRENT_DENY);
                winner_task = k;
                if (winner) {
                    ri.code = winner->code;
                    ri.reason = winner->reason;
                }
            }
            break;
        case CPEX__OUT_ERROR:
        case CPEX__OUT_TIMEOUT:
            ri.requested = -1;
            if (o.kind == CPEX__OUT_TIMEOUT) {
                ri.status = CPEX_EXEC_TIMEOUT;
                ri.code = cpex_code_name(CPEX_CODE_TIMEOUT);
            } else {
                ri.status = o.record_code == CPEX_CODE_NOT_INITIALIZED ? CPEX_EXEC_NOT_INITIALIZED
                                                                       : CPEX_EXEC_ERROR;
                ri.ran = o.record_code != CPEX_CODE_NOT_INITIALIZED;
                ri.code = cpex_code_name(o.record_code != CPEX_CODE_NONE ? o.record_code
                                                                         : CPEX_CODE_ERROR);
                ri.reason = t->out.message; /* the task lives until batch_unref */
            }
            if (p->on_error == CPEX_ON_ERROR_FAIL) {
                if (!winner) {
                    winner = cpex__ex_failure_violation(p, &o);
                    winner_task = k;
                }
            } else {
                ri.disabled = cpex__ex_soft_failure(&rec, &o);
            }
            break;
        }
        cpex_violation_free(rec.violation);
    observed:
        if (info) {
            info[k].ri = ri;
            info[k].done = st == T_DONE;
        }
    }
    /* Records after every outcome is known: the winner's is the halting one
     * (its violation's code and reason), and a record points at texts that
     * live until here. */
    if (info) {
        for (size_t k = 0; k < b->count; k++) {
            task *t = &b->tasks[k];
            cpex__rec_info *ri = &info[k].ri;
            char text[80];
            if (ri->status == CPEX_EXEC_TIMEOUT) {
                snprintf(text, sizeof text, "plugin timed out after %lldms",
                         (long long)(t->plugin->timeout_ns / 1000000));
                ri->reason = text;
            }
            if (k == winner_task && winner) {
                ri->halted = true;
                ri->code = winner->code;
                ri->reason = winner->reason;
            }
            /* A call still running is timed until now; a finished one by
             * its worker (written before it published T_DONE). */
            uint64_t t0 = atomic_load_explicit(&t->t_start, memory_order_relaxed);
            if (!t0)
                ri->ran = false;
            cpex__ex_observe(pl, t->entry, t->plugin, ri, t0, info[k].done ? t->t_end : now_ticks);
        }
        if (info != local_obs)
            cpex__free(info);
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

/* Fill fire-and-forget slot `slot` of verdict `item` with what the call
 * came to (on the worker: the slot is this task's alone once claimed). */
static void faf_record(cpex__verdict_item *item, size_t slot, const cpex__rec_info *ri, uint64_t t0,
                       uint64_t t1)
{
    char *code_buf, *reason_buf;
    cpex_execution_record *rec = cpex__verdict_faf_record(item, slot, &code_buf, &reason_buf);
    if (!rec)
        return;
    rec->status = ri->status;
    rec->requested = ri->requested;
    rec->effective = CPEX_ALLOW;
    rec->matched = ri->requested < 0 ? -1 : ri->requested == CPEX_DENY;
    rec->applied = 0;
    if (ri->ran && t0)
        cpex__recs_time(cpex__verdict_recs(item), rec, t0, t1);
    if (ri->code && code_buf) {
        rec->code.len = cpex__rec_text_cut(code_buf, ri->code);
        rec->code.ptr = code_buf;
    }
    if (ri->reason && reason_buf) {
        rec->reason.len = cpex__rec_text_cut(reason_buf, ri->reason);
        rec->reason.ptr = reason_buf;
    }
}

static void faf_run(void *arg)
{
    task *t = arg;
    batch *b = t->b;
    cpex__hub *hub = cpex__hub_ref(b->hub);
    cpex__verdict_item *item = t->item;
    bool claimed = item && cpex__verdict_faf_claim(item, t->slot);
    cpex_error_record *records = NULL;
    size_t count = 0;
    cpex__rec_info ri = {
        CPEX_EXEC_COMPLETED, CPEX_ALLOW, false, false, false, false, true, NULL, NULL};
    char text[96];
    cpex__call_state cs;
    bool have_cs = false;
    if (cpex__now_ns() > t->job.deadline_ns) {
        cpex__records_add(&records, &count, t->plugin->name, CPEX_CODE_NOT_STARTED,
                          "not started: worker pool busy (every worker thread was inside another "
                          "handler until this handler's deadline)",
                          NULL);
        ri.status = CPEX_EXEC_NOT_STARTED;
        ri.requested = -1;
        ri.ran = false;
        ri.code = cpex_code_name(CPEX_CODE_NOT_STARTED);
    } else {
        cpex__outcome o;
        if (claimed)
            cpex__verdict_faf_started(item, t->slot, cpex__ticks());
        task_call(t, &records, &count, &cs, &o);
        have_cs = true;
        if (o.kind == CPEX__OUT_DENY) {
            cpex__ex_dropped_deny(&cs);
            ri.requested = CPEX_DENY;
            ri.code = cs.violation ? cs.violation->code : cpex_code_name(CPEX_CODE_DROPPED_DENY);
            ri.reason = cs.violation ? cs.violation->reason : NULL;
        } else if (o.kind == CPEX__OUT_ERROR || o.kind == CPEX__OUT_TIMEOUT) {
            ri.disabled = cpex__ex_soft_failure(&cs, &o);
            ri.requested = -1;
            if (o.kind == CPEX__OUT_TIMEOUT) {
                ri.status = CPEX_EXEC_TIMEOUT;
                ri.code = cpex_code_name(CPEX_CODE_TIMEOUT);
                snprintf(text, sizeof text, "plugin timed out after %lldms",
                         (long long)(t->plugin->timeout_ns / 1000000));
                ri.reason = text;
            } else {
                ri.status = o.record_code == CPEX_CODE_NOT_INITIALIZED ? CPEX_EXEC_NOT_INITIALIZED
                                                                       : CPEX_EXEC_ERROR;
                ri.ran = o.record_code != CPEX_CODE_NOT_INITIALIZED;
                ri.code = cpex_code_name(o.record_code);
                ri.reason = t->out.message;
                snprintf(t->out.message, sizeof t->out.message, "%s", o.message);
            }
        }
    }
    uint64_t t0 = atomic_load_explicit(&t->t_start, memory_order_relaxed);
    if (b->observe && t->metric_id != CPEX__NO_METRIC &&
        atomic_load_explicit(&hub->metrics_on, memory_order_relaxed)) {
        cpex__mshard *sh = cpex__metrics_shard(hub->metrics);
        cpex__mslot *slot = sh ? cpex__mslot_of(sh, t->metric_id) : NULL;
        if (slot)
            cpex__mslot_call(slot, cpex__mc_outcome(ri.status, ri.requested), ri.disabled,
                             ri.ran && t0 ? cpex__ticks_ns(t0, t->t_end) : -1);
    }
    if (claimed && cpex__verdict_faf_finish(item, t->slot)) {
        faf_record(item, t->slot, &ri, t0, t->t_end);
        cpex__verdict_faf_done(hub->audit, item);
    }
    if (have_cs)
        cpex__call_state_cleanup(&cs);
    for (size_t i = 0; i < count; i++)
        cpex__log(cpex__hub_sink(hub), CPEX_LOG_WARN, t->plugin->name, "background: [%s] %s",
                  records[i].code, records[i].message);
    batch_unref(b);
    cpex__hub_done(hub, records, count);
    cpex_error_records_free(records, count);
    cpex__hub_unref(hub);
}

/* The verdict will not get slot `k`'s record from a task: write it now. */
static void faf_slot_lost(cpex__hub *hub, cpex__verdict_item *item, size_t k)
{
    if (!cpex__verdict_faf_claim(item, k) || !cpex__verdict_faf_finish(item, k))
        return;
    cpex__rec_info ri = {CPEX_EXEC_NOT_STARTED,
                         -1,
                         false,
                         false,
                         false,
                         false,
                         false,
                         cpex_code_name(CPEX_CODE_INTERNAL),
                         "out of memory: fire-and-forget handlers not started"};
    faf_record(item, k, &ri, 0, 0);
    cpex__verdict_faf_done(hub->audit, item);
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
    cpex__verdict_item *item = pl->obs ? pl->obs->item : NULL;
    size_t slots = item ? cpex__verdict_faf_slots(item) : 0;
    if (n == 0) {
        for (size_t k = 0; k < slots; k++)
            faf_slot_lost(pl->manager->hub, item, k);
        return;
    }
    batch *b = batch_new(pl, CPEX_MODE_FIRE_AND_FORGET, n);
    if (!b) {
        cpex__records_add(&pl->res->errors, &pl->res->error_count, first, CPEX_CODE_INTERNAL,
                          "out of memory: fire-and-forget handlers not started", NULL);
        for (size_t k = 0; k < slots; k++)
            faf_slot_lost(pl->manager->hub, item, k);
        return;
    }
    /* Each task fills its own slot of the verdict (made in the same order). */
    for (size_t k = 0; k < b->count && k < slots; k++) {
        b->tasks[k].item = cpex__verdict_ref(item);
        b->tasks[k].slot = k;
    }
    for (size_t k = b->count; k < slots; k++)
        faf_slot_lost(pl->manager->hub, item, k);
    submit(pl, b, faf_run);
    batch_unref(b); /* the tasks hold it now */
}
