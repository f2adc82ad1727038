/*
 * audit.c — verdicts on their way to the audit sinks (observe.h).
 *
 * An invoke hands its verdict over and returns: the verdict joins a
 * bounded queue that one thread per manager drains, calling every sink of
 * the verdict's hook in turn, verdict after verdict, in the order they
 * were decided. The invoke's only cost is building the verdict (one
 * allocation, a payload clone that shares the parts' content, an
 * extensions view in the same allocation) and a lock held for a pointer
 * swap.
 *
 * Room. The queue counts verdicts handed over and not yet delivered. When
 * it is full, an invoke waits for room (backpressure: nothing is lost),
 * up to the manager's audit_max_wait, and then drops its verdict; in drop
 * mode it drops at once. It never waits on a sink stuck in one call past
 * that call's deadline: such a sink is not draining the queue, and waiting
 * would only make every invoke slow. Drops are counted (cpex_stats,
 * Prometheus) and logged (the 1st, 2nd, 4th, 8th, ...).
 *
 * Fire-and-forget. A verdict carries the records of its invoke's
 * fire-and-forget calls too, which end after the invoke returned: it is
 * "parked" until the last of them wrote its record, or until their
 * deadline (plus a grace) passed, when the thread records the stragglers
 * as timed out (or not started) and delivers anyway. A record slot is
 * claimed once, by its task or by the thread, with a compare-and-swap.
 *
 * A sink is called like an audit-mode handler (call.h): readiness, the
 * deadline, modifications refused, errors recorded in the background error
 * log, on_error: disable honoured. A sink cannot be stopped mid-call (C
 * cannot), so one that hangs holds the queue: the drops above say so.
 * Shutdown delivers everything queued; freeing the manager abandons a
 * thread stuck in a sink after a grace period.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/call.h"
#include "core/observe.h"
#include "model/extensions_internal.h"
#include "util/alloc.h"

/* How long past their deadline fire-and-forget records are waited for. */
#define FAF_GRACE_NS 100000000LL

enum { SLOT_QUEUED = 0, SLOT_DONE = 1, SLOT_EXPIRED = 2, SLOT_RUNNING = 3 };

struct cpex__verdict_item {
    cpex__verdict_item *next; /* in the ready queue or the parked list */
    _Atomic long refs;        /* the queue's, and one per fire-and-forget task */
    _Atomic long faf_pending; /* records to come, plus the invoker's count until it commits */
    int64_t faf_deadline;     /* the latest deadline of those calls */
    size_t faf_first, faf_count;
    _Atomic int *faf_claim;      /* per fire-and-forget slot: enum above */
    _Atomic uint64_t *faf_start; /* its start, in ticks, once running */
    char **faf_reason;           /* its reason buffer */
    size_t sink_count;
    cpex__plugin **sinks; /* references */
    cpex_verdict v;
    cpex_payload payload;
    void *payload_data; /* owned */
    cpex__payload_ops ops;
    cpex_extensions *ext;      /* a view in this allocation, or NULL */
    cpex_violation *violation; /* owned, or NULL */
    cpex__recs *recs;          /* owned, or NULL */
    char *hook;
};

struct cpex__audit {
    cpex__hub *hub; /* the owner (no reference: the hub owns this) */
    pthread_mutex_t lock;
    pthread_cond_t work; /* the thread waits for verdicts (CLOCK_MONOTONIC) */
    pthread_cond_t room; /* invokes wait for room, drains for the end (CLOCK_MONOTONIC) */
    cpex__verdict_item *head, *tail; /* ready */
    cpex__verdict_item *parked;      /* waiting for fire-and-forget records */
    size_t held;  /* verdicts handed over and not delivered (ready, parked, busy) */
    size_t depth; /* ready ones */
    uint32_t capacity;
    uint32_t overflow;
    int64_t max_wait_ns;
    bool running;          /* the thread exists */
    bool stop;             /* it should end once nothing is held */
    bool abandon;          /* it should end as soon as it can, dropping what is left */
    bool closed;           /* no more verdicts: the manager is gone */
    bool busy;             /* it is delivering */
    bool sleeping;         /* it waits on `work`: a new verdict must wake it */
    int64_t call_deadline; /* of the sink call in progress, 0 when none */
    const char *call_sink; /* its name (valid while busy) */
    pthread_t thread;
    _Atomic uint64_t enqueued, delivered, dropped;
    uint64_t next_drop_log;
};

/* ------------------------------------------------------------------ */
/* The queue                                                           */
/* ------------------------------------------------------------------ */

static void init_cond(pthread_cond_t *c)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(c, &ca);
    pthread_condattr_destroy(&ca);
}

static void wait_until(pthread_cond_t *c, pthread_mutex_t *l, int64_t deadline_ns)
{
    if (deadline_ns == INT64_MAX) {
        pthread_cond_wait(c, l);
        return;
    }
    struct timespec ts = {(time_t)(deadline_ns / 1000000000), (long)(deadline_ns % 1000000000)};
    pthread_cond_timedwait(c, l, &ts);
}

cpex__audit *cpex__audit_new(cpex__hub *hub)
{
    cpex__audit *a = cpex__calloc(1, sizeof *a);
    if (!a)
        return NULL;
    a->hub = hub;
    pthread_mutex_init(&a->lock, NULL);
    init_cond(&a->work);
    init_cond(&a->room);
    a->capacity = 1024;
    a->overflow = CPEX_AUDIT_BLOCK;
    a->max_wait_ns = 1000000000;
    a->next_drop_log = 1;
    return a;
}

void cpex__audit_configure(cpex__audit *a, uint32_t capacity, uint32_t overflow,
                           int64_t max_wait_ns)
{
    pthread_mutex_lock(&a->lock);
    a->capacity = capacity;
    a->overflow = overflow;
    a->max_wait_ns = max_wait_ns;
    pthread_cond_broadcast(&a->room); /* a larger queue may have room now */
    pthread_mutex_unlock(&a->lock);
}

void cpex__audit_counts(cpex__audit *a, uint64_t *enqueued, uint64_t *delivered, uint64_t *dropped,
                        uint32_t *depth, uint32_t *capacity)
{
    pthread_mutex_lock(&a->lock);
    *depth = (uint32_t)a->held;
    *capacity = a->capacity;
    pthread_mutex_unlock(&a->lock);
    *enqueued = atomic_load(&a->enqueued);
    *delivered = atomic_load(&a->delivered);
    *dropped = atomic_load(&a->dropped);
}

static void count_drop(cpex__audit *a, const char *hook, const char *why)
{
    uint64_t n = atomic_fetch_add(&a->dropped, 1) + 1;
    bool log = false;
    pthread_mutex_lock(&a->lock);
    if (n >= a->next_drop_log) {
        log = true;
        while (a->next_drop_log <= n)
            a->next_drop_log *= 2;
    }
    pthread_mutex_unlock(&a->lock);
    if (log)
        cpex__log(cpex__hub_sink(a->hub), CPEX_LOG_WARN, NULL,
                  "audit: the verdict of an invoke of '%.200s' was dropped (%s); %llu dropped so "
                  "far (cpex_stats.audit_dropped); raise plugin_settings.audit_queue_size or "
                  "audit_max_wait, or make the sinks faster",
                  hook, why, (unsigned long long)n);
}

/* Take room for one verdict: false when it must be dropped (`why` says). */
static bool reserve(cpex__audit *a, const char **why)
{
    pthread_mutex_lock(&a->lock);
    bool ok = false;
    if (a->closed || a->stop) {
        *why = "the manager is shutting down";
        goto out;
    }
    if (a->held >= a->capacity) {
        if (a->overflow == CPEX_AUDIT_DROP) {
            *why = "queue full, drop mode";
            goto out;
        }
        int64_t until = cpex__deadline_add(cpex__now_ns(), a->max_wait_ns);
        while (a->held >= a->capacity && !a->closed && !a->stop) {
            int64_t now = cpex__now_ns();
            if (a->busy && a->call_deadline && now > a->call_deadline) {
                *why = "queue full and a sink is stuck in a call past its deadline";
                goto out;
            }
            if (now >= until) {
                *why = "queue full past audit_max_wait";
                goto out;
            }
            int64_t wake = until;
            if (a->busy && a->call_deadline && a->call_deadline < wake)
                wake = a->call_deadline + 1;
            wait_until(&a->room, &a->lock, wake);
        }
        if (a->closed || a->stop) {
            *why = "the manager is shutting down";
            goto out;
        }
    }
    a->held++;
    ok = true;
out:
    pthread_mutex_unlock(&a->lock);
    return ok;
}

static void unreserve(cpex__audit *a)
{
    pthread_mutex_lock(&a->lock);
    a->held--;
    pthread_cond_broadcast(&a->room);
    pthread_mutex_unlock(&a->lock);
}

/* Lock held. */
static void push_ready(cpex__audit *a, cpex__verdict_item *it)
{
    it->next = NULL;
    if (a->tail)
        a->tail->next = it;
    else
        a->head = it;
    a->tail = it;
    a->depth++;
    /* A busy thread finds it when it looks again: no wake-up (a futex
     * call) for every verdict. */
    if (a->sleeping)
        pthread_cond_signal(&a->work);
}

/* Lock held. */
static void unpark(cpex__audit *a, cpex__verdict_item *it)
{
    cpex__verdict_item **pp = &a->parked;
    while (*pp && *pp != it)
        pp = &(*pp)->next;
    if (*pp)
        *pp = it->next;
}

/* ------------------------------------------------------------------ */
/* Verdicts                                                            */
/* ------------------------------------------------------------------ */

static void item_free(cpex__verdict_item *it)
{
    for (size_t i = 0; i < it->sink_count; i++)
        cpex__plugin_unref(it->sinks[i]);
    if (it->payload_data && it->ops.free)
        it->ops.free(it->payload_data, it->ops.user);
    cpex__extensions_view_release(it->ext);
    cpex_violation_free(it->violation);
    cpex__recs_free(it->recs);
    cpex__free(it);
}

cpex__verdict_item *cpex__verdict_ref(cpex__verdict_item *it)
{
    atomic_fetch_add_explicit(&it->refs, 1, memory_order_relaxed);
    return it;
}

void cpex__verdict_unref(cpex__verdict_item *it)
{
    if (it && atomic_fetch_sub_explicit(&it->refs, 1, memory_order_acq_rel) == 1)
        item_free(it);
}

static cpex_str view_str(const char *s)
{
    cpex_str out = {s, s ? strlen(s) : 0};
    return out;
}

cpex__verdict_item *cpex__verdict_new(cpex__audit *a, const cpex__verdict_src *src)
{
    const char *why = "out of memory";
    if (!reserve(a, &why)) {
        cpex__recs_free(src->recs);
        count_drop(a, src->hook, why);
        return NULL;
    }
    size_t nf = src->faf_count;
    size_t head = sizeof(cpex__verdict_item) + src->sink_count * sizeof(cpex__plugin *) +
                  nf * (sizeof(_Atomic int) + sizeof(_Atomic uint64_t) + sizeof(char *));
    head = (head + 15) & ~(size_t)15;
    size_t ext_size = src->ext ? cpex__extensions_size : 0;
    cpex__verdict_item *it = cpex__malloc(head + ext_size + src->hook_len + 1);
    cpex__recs *recs = src->recs;
    if (!it)
        goto oom;
    memset(it, 0, sizeof *it);
    atomic_init(&it->refs, 1);
    char *p = (char *)(it + 1);
    it->sinks = (cpex__plugin **)(void *)p;
    p += src->sink_count * sizeof(cpex__plugin *);
    it->faf_start = (_Atomic uint64_t *)(void *)p;
    p += nf * sizeof(_Atomic uint64_t);
    it->faf_reason = (char **)(void *)p;
    p += nf * sizeof(char *);
    it->faf_claim = (_Atomic int *)(void *)p;
    it->hook = (char *)it + head + ext_size;
    memcpy(it->hook, src->hook, src->hook_len);
    it->hook[src->hook_len] = '\0';
    for (size_t i = 0; i < src->sink_count; i++)
        it->sinks[i] = cpex__plugin_ref(src->sinks[i]);
    it->sink_count = src->sink_count;
    it->ops = src->ops ? *src->ops : (cpex__payload_ops){0};
    if (src->payload && src->payload->data && it->ops.clone) {
        /* The sink reads its own copy: the caller's payload may be gone. */
        it->payload = *src->payload;
        it->payload_data = it->ops.clone(src->payload->data, it->ops.user);
        if (!it->payload_data)
            goto oom;
        it->payload.data = it->payload_data;
    }
    if (src->ext) {
        it->ext = (cpex_extensions *)(void *)((char *)it + head);
        cpex__extensions_view_init(it->ext, src->ext);
    }
    if (src->violation) {
        const cpex_violation *v = src->violation;
        it->violation =
            cpex__violation_new(v->code, v->reason, v->description,
                                v->details ? json_deep_copy(v->details) : NULL, v->plugin_name);
        if (!it->violation)
            goto oom;
    }
    if (!recs && !(recs = cpex__recs_new(nf, nf * (2 * (CPEX__REC_MAX_TEXT + 1) + 16), src->hook,
                                         src->hook_len, NULL)))
        goto oom;
    it->recs = recs;
    recs = NULL;
    it->faf_first = it->recs->count;
    it->faf_count = nf;
    for (size_t k = 0; k < nf; k++) {
        atomic_init(&it->faf_claim[k], SLOT_QUEUED);
        atomic_init(&it->faf_start[k], 0);
        it->faf_reason[k] = cpex__recs_reserve(it->recs, 2 * (CPEX__REC_MAX_TEXT + 1));
    }
    atomic_init(&it->faf_pending, nf ? (long)nf + 1 : 0);

    cpex_verdict *v = &it->v;
    v->struct_size = (uint32_t)sizeof *v;
    v->decision = src->allowed ? CPEX_ALLOW : CPEX_DENY;
    v->hook.ptr = it->hook;
    v->hook.len = src->hook_len;
    if (it->violation) {
        v->violation_code = view_str(it->violation->code);
        v->violation_reason = view_str(it->violation->reason);
        v->violation_description = view_str(it->violation->description);
        v->violation_plugin = view_str(it->violation->plugin_name);
        v->violation_details = (const cpex_json *)it->violation->details;
    }
    v->payload = it->payload.kind ? &it->payload : NULL;
    v->payload_modified = src->payload_modified;
    v->extensions_modified = src->extensions_modified;
    v->record_size = (uint32_t)sizeof(cpex_execution_record);
    v->records = it->recs->rec;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    v->time_unix_ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
    atomic_fetch_add(&a->enqueued, 1);
    return it;
oom:
    cpex__recs_free(recs);
    if (it)
        item_free(it);
    unreserve(a);
    count_drop(a, src->hook, "out of memory building it");
    return NULL;
}

void cpex__verdict_faf_prepare(cpex__verdict_item *it, size_t index, const cpex__plugin *p,
                               int64_t deadline_ns)
{
    cpex_execution_record *rec = cpex__recs_add(it->recs, p);
    (void)rec; /* fire-and-forget slots follow the others in order */
    if (deadline_ns > it->faf_deadline)
        it->faf_deadline = deadline_ns;
    (void)index;
}

cpex_execution_record *cpex__verdict_faf_record(cpex__verdict_item *it, size_t index,
                                                char **code_buf, char **reason_buf)
{
    char *buf = it->faf_reason[index];
    *code_buf = buf;
    *reason_buf = buf ? buf + CPEX__REC_MAX_TEXT + 1 : NULL;
    size_t at = it->faf_first + index;
    return at < it->recs->count ? &it->recs->rec[at] : NULL;
}

size_t cpex__verdict_faf_slots(const cpex__verdict_item *it) { return it->faf_count; }

const cpex__recs *cpex__verdict_recs(const cpex__verdict_item *it) { return it->recs; }

bool cpex__verdict_faf_claim(cpex__verdict_item *it, size_t index)
{
    int expected = SLOT_QUEUED;
    return atomic_compare_exchange_strong(&it->faf_claim[index], &expected, SLOT_RUNNING);
}

void cpex__verdict_faf_started(cpex__verdict_item *it, size_t index, uint64_t ticks)
{
    atomic_store_explicit(&it->faf_start[index], ticks, memory_order_relaxed);
}

bool cpex__verdict_faf_finish(cpex__verdict_item *it, size_t index)
{
    int expected = SLOT_RUNNING;
    return atomic_compare_exchange_strong(&it->faf_claim[index], &expected, SLOT_DONE);
}

/* One record fewer to wait for; the last makes the verdict ready. */
void cpex__verdict_faf_done(cpex__audit *a, cpex__verdict_item *it)
{
    if (atomic_fetch_sub_explicit(&it->faf_pending, 1, memory_order_acq_rel) != 1)
        return;
    pthread_mutex_lock(&a->lock);
    unpark(a, it);
    push_ready(a, it);
    pthread_mutex_unlock(&a->lock);
}

void cpex__verdict_commit(cpex__audit *a, cpex__verdict_item *it)
{
    cpex__hub_begin(a->hub, 1, 0); /* background work: wait_background waits for it */
    pthread_mutex_lock(&a->lock);
    if (it->faf_count) {
        it->next = a->parked;
        a->parked = it;
    } else {
        push_ready(a, it);
    }
    pthread_mutex_unlock(&a->lock);
}

/* Lock held. Records the fire-and-forget calls of parked verdicts that are
 * past their deadline and the grace, and readies those verdicts. Returns
 * the earliest deadline still to watch (INT64_MAX: none). */
static int64_t expire_parked(cpex__audit *a, int64_t now)
{
    int64_t next = INT64_MAX;
    cpex__verdict_item **pp = &a->parked;
    while (*pp) {
        cpex__verdict_item *it = *pp;
        int64_t due = cpex__deadline_add(it->faf_deadline, FAF_GRACE_NS);
        if (now < due && !a->abandon) {
            if (due < next)
                next = due;
            pp = &it->next;
            continue;
        }
        long left = 0;
        for (size_t k = 0; k < it->faf_count; k++) {
            int st = atomic_load(&it->faf_claim[k]);
            if ((st != SLOT_QUEUED && st != SLOT_RUNNING) ||
                !atomic_compare_exchange_strong(&it->faf_claim[k], &st, SLOT_EXPIRED))
                continue;
            cpex_execution_record *rec = &it->recs->rec[it->faf_first + k];
            rec->effective = CPEX_ALLOW;
            if (st == SLOT_QUEUED) {
                rec->status = CPEX_EXEC_NOT_STARTED;
                rec->code = view_str(cpex_code_name(CPEX_CODE_NOT_STARTED));
            } else {
                rec->status = CPEX_EXEC_TIMEOUT;
                rec->code = view_str(cpex_code_name(CPEX_CODE_TIMEOUT));
                uint64_t start = atomic_load_explicit(&it->faf_start[k], memory_order_relaxed);
                if (start)
                    cpex__recs_time(it->recs, rec, start, cpex__ticks());
                if (it->faf_reason[k]) {
                    char *reason = it->faf_reason[k] + CPEX__REC_MAX_TEXT + 1;
                    snprintf(reason, CPEX__REC_MAX_TEXT + 1,
                             "still running past its deadline when the verdict was delivered");
                    rec->reason = view_str(reason);
                }
            }
            left++;
        }
        /* The claims taken here stand for their tasks' counts. */
        if (left && atomic_fetch_sub(&it->faf_pending, left) == left) {
            *pp = it->next;
            push_ready(a, it);
            continue;
        }
        pp = &it->next;
    }
    return next;
}

/* ------------------------------------------------------------------ */
/* Delivery                                                            */
/* ------------------------------------------------------------------ */

static _Thread_local const cpex_verdict *tl_verdict;
static _Thread_local cpex_verdict_fn tl_fn;

/* The verdict handler behind the call machinery's handler signature. */
static int32_t verdict_trampoline(void *instance, const cpex_call *call)
{
    return tl_fn(instance, call, tl_verdict);
}

/* Call sink `p` with verdict `it`; its soft errors join *errs. */
static void deliver_one(cpex__audit *a, cpex__verdict_item *it, cpex__plugin *p,
                        cpex_error_record **errs, size_t *nerr, bool count, cpex__mshard *shard)
{
    if (atomic_load_explicit(&p->disabled, memory_order_relaxed) || !p->reg.verdict)
        return;
    cpex__call_setup setup = {
        a->hub,   it->hook, it->v.hook.len, it->payload.kind ? &it->payload : NULL,
        &it->ops, it->ext,  false,          errs,
        nerr};
    cpex__call_state cs;
    cpex__call_state_init(&cs, &setup, p, CPEX_MODE_AUDIT);
    tl_verdict = &it->v;
    tl_fn = p->reg.verdict;
    int64_t start = cpex__now_ns();
    pthread_mutex_lock(&a->lock);
    a->call_deadline = cpex__deadline_add(start, p->timeout_ns);
    a->call_sink = p->name;
    pthread_mutex_unlock(&a->lock);
    atomic_fetch_add(&p->inflight, 1);
    cpex__outcome o;
    uint64_t t0 = cpex__ticks();
    cpex__call_handler(&cs, verdict_trampoline, start, false, &o);
    uint64_t t1 = cpex__ticks();
    atomic_fetch_sub_explicit(&p->inflight, 1, memory_order_release);
    bool disabled = false;
    uint32_t status = CPEX_EXEC_COMPLETED;
    int32_t requested = CPEX_ALLOW;
    switch (o.kind) {
    case CPEX__OUT_ALLOW: break;
    case CPEX__OUT_DENY:
        requested = CPEX_DENY;
        cpex__ex_dropped_deny(&cs);
        break;
    case CPEX__OUT_ERROR:
    case CPEX__OUT_TIMEOUT:
        status = o.kind == CPEX__OUT_TIMEOUT                  ? CPEX_EXEC_TIMEOUT
                 : o.record_code == CPEX_CODE_NOT_INITIALIZED ? CPEX_EXEC_NOT_INITIALIZED
                                                              : CPEX_EXEC_ERROR;
        disabled = cpex__ex_soft_failure(&cs, &o);
        break;
    }
    cpex__call_state_cleanup(&cs);
    if (count && shard) {
        uint32_t id = cpex__metrics_id(a->hub->metrics, CPEX__ML_SINK, p->name, it->hook);
        cpex__mslot *s = id != CPEX__NO_METRIC ? cpex__mslot_of(shard, id) : NULL;
        bool ran = status != CPEX_EXEC_NOT_INITIALIZED;
        if (s)
            cpex__mslot_call(s, cpex__mc_outcome(status, requested), disabled,
                             ran ? cpex__ticks_ns(t0, t1) : -1);
    }
}

static void deliver(cpex__audit *a, cpex__verdict_item *it)
{
    /* Every record is written by now (fire-and-forget slots included). */
    it->v.records = it->recs->rec;
    it->v.record_count = it->recs->count;
    cpex_error_record *errs = NULL;
    size_t nerr = 0;
    bool count = atomic_load_explicit(&a->hub->metrics_on, memory_order_relaxed);
    cpex__mshard *shard = count ? cpex__metrics_shard(a->hub->metrics) : NULL;
    for (size_t i = 0; i < it->sink_count; i++)
        deliver_one(a, it, it->sinks[i], &errs, &nerr, count, shard);
    for (size_t i = 0; i < nerr; i++)
        cpex__log(cpex__hub_sink(a->hub), CPEX_LOG_WARN, errs[i].plugin_name, "audit sink: [%s] %s",
                  errs[i].code, errs[i].message);
    /* Counted before the hub hears of it: whoever waited for background
     * work to end reads the count it expects. */
    atomic_fetch_add(&a->delivered, 1);
    cpex__hub_done(a->hub, errs, nerr);
    cpex_error_records_free(errs, nerr);
}

static void *audit_main(void *arg)
{
    cpex__audit *a = arg;
    pthread_mutex_lock(&a->lock);
    for (;;) {
        int64_t next = expire_parked(a, cpex__now_ns());
        if (a->head && !a->abandon) {
            cpex__verdict_item *it = a->head;
            a->head = it->next;
            if (!a->head)
                a->tail = NULL;
            a->depth--;
            a->busy = true;
            pthread_mutex_unlock(&a->lock);
            deliver(a, it);
            cpex__verdict_unref(it);
            pthread_mutex_lock(&a->lock);
            a->busy = false;
            a->call_deadline = 0;
            a->call_sink = NULL;
            a->held--;
            pthread_cond_broadcast(&a->room);
            continue;
        }
        if (a->abandon || (a->stop && a->held == 0))
            break;
        a->sleeping = true;
        wait_until(&a->work, &a->lock, next);
        a->sleeping = false;
    }
    a->running = false;
    pthread_cond_broadcast(&a->room);
    pthread_mutex_unlock(&a->lock);
    cpex__hub_unref(a->hub);
    return NULL;
}

bool cpex__audit_start(cpex__audit *a)
{
    pthread_mutex_lock(&a->lock);
    bool ok = a->running;
    if (!ok && !a->closed) {
        cpex__hub_ref(a->hub); /* the thread's: the hub outlives it */
        a->stop = false;
        if (pthread_create(&a->thread, NULL, audit_main, a) == 0) {
            a->running = ok = true;
        } else {
            pthread_mutex_unlock(&a->lock);
            cpex__hub_unref(a->hub);
            return false;
        }
    }
    pthread_mutex_unlock(&a->lock);
    return ok;
}

/* Wait until nothing is held, or the thread is stuck in one call past its
 * deadline and `grace_ns`. Lock held. True when everything was delivered. */
static bool wait_held(cpex__audit *a, int64_t grace_ns)
{
    while (a->held > 0 && a->running) {
        int64_t now = cpex__now_ns();
        if (a->busy && a->call_deadline && now > cpex__deadline_add(a->call_deadline, grace_ns)) {
            cpex__log(cpex__hub_sink(a->hub), CPEX_LOG_ERROR, a->call_sink,
                      "audit sink still inside a verdict call past its deadline and a grace "
                      "of %lld ms: %zu verdict(s) not delivered",
                      (long long)(grace_ns / 1000000), a->held);
            return false;
        }
        int64_t wake = now + 50000000; /* re-check the stuck call now and then */
        wait_until(&a->room, &a->lock, wake);
    }
    return a->held == 0;
}

void cpex__audit_drain(cpex__audit *a, int64_t grace_ns)
{
    pthread_mutex_lock(&a->lock);
    pthread_cond_signal(&a->work);
    wait_held(a, grace_ns);
    pthread_mutex_unlock(&a->lock);
}

void cpex__audit_stop(cpex__audit *a, int64_t grace_ns)
{
    pthread_mutex_lock(&a->lock);
    a->closed = true;
    if (!a->running) {
        pthread_mutex_unlock(&a->lock);
        return;
    }
    a->stop = true;
    pthread_cond_signal(&a->work);
    bool done = wait_held(a, grace_ns);
    if (!done) {
        a->abandon = true; /* it drops what is left when (if) the call returns */
        pthread_cond_signal(&a->work);
    }
    pthread_t t = a->thread;
    pthread_mutex_unlock(&a->lock);
    if (done)
        pthread_join(t, NULL);
    else
        pthread_detach(t);
}

void cpex__audit_free(cpex__audit *a)
{
    if (!a)
        return;
    /* The thread is gone (it held a reference to the hub that owns this). */
    cpex__verdict_item *lists[2] = {a->head, a->parked};
    for (int l = 0; l < 2; l++)
        while (lists[l]) {
            cpex__verdict_item *it = lists[l];
            lists[l] = it->next;
            cpex__verdict_unref(it);
        }
    pthread_cond_destroy(&a->work);
    pthread_cond_destroy(&a->room);
    pthread_mutex_destroy(&a->lock);
    cpex__free(a);
}
