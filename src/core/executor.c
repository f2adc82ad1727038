/*
 * executor.c — one invoke: the five phases, in order, with each mode's
 * permissions, on_error, timeouts and the context table. The phases that
 * run on worker threads (concurrent, fire-and-forget) are in
 * executor_tasks.c.
 *
 * Phase order is fixed (sequential, transform, audit, concurrent,
 * fire-and-forget); the registry snapshot already holds each hook's
 * entries grouped by phase and sorted by priority.
 *
 * The all-allow path allocates nothing: call states live on the stack,
 * extensions are copied only on a plugin's first write, the context table
 * only when a plugin stores state.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "core/call.h"
#include "core/core.h"
#include "core/executor_internal.h"

/* Within one serial phase, the end of a call that left nothing behind is
 * the start of the next call on the same clock: one clock read per call. */
typedef struct call_clock {
    int kind; /* -1: no reading to reuse; 0 precise; 1 coarse */
    int64_t last;
} call_clock;

static inline int64_t clock_start(const call_clock *c, bool coarse)
{
    return c->kind == (int)coarse ? c->last : cpex__deadline_now_ns(coarse);
}


/* ------------------------------------------------------------------ */
/* The pipeline of one invoke                                          */
/* ------------------------------------------------------------------ */


/* A call on the caller's thread: context reads and (serial) writes go to
 * the pipeline's live table. */
static inline __attribute__((always_inline)) void
init_call(cpex__pipeline *pl, cpex__call_state *cs, cpex__plugin *p, uint32_t mode)
{
    cpex__call_setup setup = {pl->manager->hub,
                              pl->hook->name,
                              pl->hook->name_len,
                              pl->payload.kind ? &pl->payload : NULL,
                              &pl->ops,
                              pl->ext,
                              pl->closing,
                              &pl->res->errors,
                              &pl->res->error_count};
    cpex__call_state_init(cs, &setup, p, mode);
    cs->table = &pl->ctx;
    if (cs->snapshot_ctx) {
        cs->base_local = cpex__ctx_local_state(pl->ctx, p, false);
        cs->base_global = cpex__ctx_global_state(pl->ctx, false);
    }
}

/* Whether a call left anything behind (payload, extensions, violation,
 * error, metadata, context scratch): every host slot that stores into the
 * call state sets `dirty`. An allowing call that did not is finished:
 * nothing to adopt, merge or free. */
static inline bool call_state_dirty(const cpex__call_state *cs) { return cs->dirty; }

/* Point a call state, cleaned up after its previous call, at the next
 * plugin of the same phase: only what differs per plugin is written
 * (init_call's memset of the ~250-byte state runs once per phase). */
static void rebind_call(cpex__pipeline *pl, cpex__call_state *cs, cpex__plugin *p)
{
    cs->call.plugin_name.ptr = p->name;
    cs->call.plugin_name.len = p->name_len;
    cs->call.payload = cs->base_payload; /* an earlier plugin's edit view is gone */
    cs->plugin = p;
    cs->ext = pl->ext;
    if (cs->snapshot_ctx) {
        cs->base_local = cpex__ctx_local_state(pl->ctx, p, false);
        cs->base_global = cpex__ctx_global_state(pl->ctx, false);
    }
}

/* Accept a serial call's modifications into the pipeline. */
static void adopt_changes(cpex__pipeline *pl, cpex__call_state *cs)
{
    if (cs->new_payload) {
        if (pl->owned_payload && pl->ops.free)
            pl->ops.free(pl->owned_payload, pl->ops.user);
        pl->owned_payload = cs->new_payload;
        pl->payload.data = cs->new_payload;
        cs->new_payload = NULL;
        pl->res->payload_modified = true;
    }
    if (cs->pending_ext) {
        cpex_extensions_unref(pl->owned_ext);
        pl->owned_ext = cs->pending_ext;
        pl->ext = cs->pending_ext;
        cs->pending_ext = NULL;
        pl->res->extensions_modified = true;
    }
}

/* Walks the handlers of one caller-thread phase with one reused call state
 * and one clock reading per call. */
typedef struct phase_walk {
    call_clock clk;
    bool ready;
    cpex__call_state cs;
} phase_walk;

/* Point the walk's call state at entry `e`'s plugin: set up on the
 * phase's first call, rebound on the next ones. */
static inline __attribute__((always_inline)) cpex__plugin *
walk_bind(cpex__pipeline *pl, phase_walk *w, const cpex__hook_entry *e, uint32_t mode)
{
    cpex__plugin *p = e->plugin;
    if (w->ready)
        rebind_call(pl, &w->cs, p);
    else
        init_call(pl, &w->cs, p, mode);
    w->ready = true;
    return p;
}

/* Call entry `e` in phase `mode`. True when the call allowed and left
 * nothing behind (the common case: nothing to adopt, merge or free). */
static inline __attribute__((always_inline)) bool phase_step(cpex__pipeline *pl, phase_walk *w,
                                                             const cpex__hook_entry *e,
                                                             uint32_t mode, cpex__outcome *o)
{
    cpex__plugin *p = walk_bind(pl, w, e, mode);
    bool coarse = p->coarse_clock;
    cpex__call_handler(&w->cs, e->fn, clock_start(&w->clk, coarse), coarse, o);
    if (o->kind == CPEX__OUT_ALLOW && !call_state_dirty(&w->cs)) {
        w->clk.kind = coarse;
        w->clk.last = o->end;
        return true;
    }
    w->clk.kind = -1; /* the caller's bookkeeping is not charged to the next plugin */
    return false;
}

/* A clean allow, observed: its record's status and two tick readings (the
 * block's template already says allow), and its counters. */
static inline __attribute__((always_inline)) void observe_clean(cpex__pipeline *pl, size_t entry,
                                                                uint64_t t0, uint64_t t1)
{
    cpex__pl_obs *ob = pl->obs;
    if (ob->recs) {
        cpex_execution_record *rec = &ob->recs->rec[entry];
        rec->status = CPEX_EXEC_COMPLETED;
        rec->start_unix_ns = (int64_t)t0;
        rec->duration_ns = (int64_t)t1;
    }
    if (ob->shard && ob->ids) {
        cpex__mslot *s = cpex__mslot_of(ob->shard, ob->ids[entry]);
        if (s) {
            cpex__mc_add(&s->c[CPEX__MC_ALLOWS], 1);
            cpex__mslot_time(s, cpex__ticks_ns(t0, t1));
        }
    }
}

/* The violation code and reason of a call's halting violation, or of its
 * own deny when it was dropped. */
static void deny_text(const cpex__call_state *cs, const cpex_violation *halted, cpex__rec_info *ri)
{
    const cpex_violation *v = halted ? halted : cs->violation;
    ri->code = v ? v->code : cpex_code_name(CPEX_CODE_DROPPED_DENY);
    ri->reason = v ? v->reason : NULL;
}

/* What a failed call (error, timeout, not initialized) leaves in its record. */
static void failure_text(const cpex__outcome *o, const cpex_violation *halted, char *buf,
                         size_t cap, const cpex__plugin *p, cpex__rec_info *ri)
{
    ri->requested = -1;
    if (o->kind == CPEX__OUT_TIMEOUT) {
        ri->status = CPEX_EXEC_TIMEOUT;
        snprintf(buf, cap, "plugin timed out after %lldms", (long long)(p->timeout_ns / 1000000));
        ri->code = cpex_code_name(CPEX_CODE_TIMEOUT);
        ri->reason = buf;
    } else {
        ri->status = o->record_code == CPEX_CODE_NOT_INITIALIZED ? CPEX_EXEC_NOT_INITIALIZED
                                                                 : CPEX_EXEC_ERROR;
        ri->ran = o->record_code != CPEX_CODE_NOT_INITIALIZED;
        ri->code =
            cpex_code_name(o->record_code != CPEX_CODE_NONE ? o->record_code : CPEX_CODE_ERROR);
        ri->reason = o->message;
    }
    if (halted) {
        ri->code = halted->code;
        ri->reason = halted->reason;
    }
}

/* phase_step for an observed invoke: the tick counter times the call and
 * gives the deadline check its clock (one reading per call, from `t0`). */
static inline __attribute__((always_inline)) bool phase_step_obs(cpex__pipeline *pl, phase_walk *w,
                                                                 const cpex__hook_entry *e,
                                                                 uint32_t mode, cpex__outcome *o,
                                                                 uint64_t t0, uint64_t *t1)
{
    walk_bind(pl, w, e, mode);
    cpex__call_handler_ticks(&w->cs, e->fn, &pl->obs->clock, t0, t1, o);
    return o->kind == CPEX__OUT_ALLOW && !call_state_dirty(&w->cs);
}

/* What a call that did not simply allow comes to (adopting its changes,
 * halting, recording, its metadata), and its record info when `ri` is set.
 * Returns false when it halted the pipeline. Out of the hot loop. */
static bool serial_outcome(cpex__pipeline *pl, cpex__call_state *csp, cpex__plugin *p,
                           uint32_t mode, cpex__outcome *o, cpex__rec_info *ri, char *fail_buf,
                           size_t fail_cap)
{
    bool halted = false;
    if (ri) {
        ri->payload_modified = csp->new_payload != NULL;
        ri->extensions_modified = csp->pending_ext != NULL;
    }
    switch (o->kind) {
    case CPEX__OUT_ALLOW: adopt_changes(pl, csp); break;
    case CPEX__OUT_DENY:
        if (mode == CPEX_MODE_SEQUENTIAL) {
            cpex__ex_halt(pl, cpex__ex_take_violation(csp, CPEX_CODE_PLUGIN_DENY));
            halted = true;
        } else {
            cpex__ex_dropped_deny(csp);
            adopt_changes(pl, csp);
        }
        if (ri) {
            ri->requested = CPEX_DENY;
            deny_text(csp, halted ? pl->res->violation : NULL, ri);
        }
        break;
    case CPEX__OUT_ERROR:
    case CPEX__OUT_TIMEOUT: {
        bool disabled = false;
        if (p->on_error == CPEX_ON_ERROR_FAIL && mode == CPEX_MODE_SEQUENTIAL) {
            cpex__ex_halt(pl, cpex__ex_failure_violation(p, o));
            halted = true;
        } else {
            disabled = cpex__ex_soft_failure(csp, o); /* audit always records, whatever on_error */
        }
        if (ri) {
            ri->disabled = disabled;
            failure_text(o, halted ? pl->res->violation : NULL, fail_buf, fail_cap, p, ri);
        }
        break;
    }
    }
    if (ri) {
        /* Only what was adopted counts as modified: a halting deny's or a
         * failed call's changes are dropped. */
        bool kept = !halted && (o->kind == CPEX__OUT_ALLOW || o->kind == CPEX__OUT_DENY);
        ri->payload_modified = ri->payload_modified && kept;
        ri->extensions_modified = ri->extensions_modified && kept;
        ri->halted = halted;
    }
    if (o->kind != CPEX__OUT_TIMEOUT)
        cpex__ex_keep_metadata(csp, &pl->res->metadata, csp->metadata);
    return !halted;
}

/* A phase on the caller's thread (sequential, transform or audit) with
 * observation: every call is timed with the tick counter, recorded and
 * counted. Only the sequential phase can halt; returns false when it did.
 * Adopting an audit call's changes adopts nothing: the host table refused
 * them all. */
static __attribute__((noinline)) bool run_serial_obs(cpex__pipeline *pl, uint32_t mode)
{
    const cpex__hook *h = pl->hook;
    phase_walk w;
    w.clk.kind = -1;
    w.clk.last = 0;
    w.ready = false;
    uint64_t t = cpex__ticks();
    for (size_t i = h->phase_start[mode]; i < h->phase_start[mode + 1]; i++) {
        cpex__plugin *p = h->entries[i].plugin;
        if (atomic_load_explicit(&p->disabled, memory_order_relaxed))
            continue;
        cpex__outcome o;
        uint64_t t1;
        if (phase_step_obs(pl, &w, &h->entries[i], mode, &o, t, &t1)) {
            observe_clean(pl, i, t, t1);
            t = t1;
            continue;
        }
        cpex__rec_info ri = {
            CPEX_EXEC_COMPLETED, CPEX_ALLOW, false, false, false, false, true, NULL, NULL};
        char fail_buf[80];
        bool go_on = serial_outcome(pl, &w.cs, p, mode, &o, &ri, fail_buf, sizeof fail_buf);
        cpex__ex_observe(pl, i, p, &ri, t, t1);
        cpex__call_state_cleanup(&w.cs);
        t = cpex__ticks(); /* the bookkeeping above is not the next plugin's time */
        if (!go_on)
            return false;
    }
    return true;
}

/* The phase without observation: kept apart from run_serial_obs so that the
 * observed variant's bookkeeping never shapes the hot loop's registers, and
 * inlined into the unobserved pipeline (one call less per invoke: 530 ->
 * 514 instructions for one plugin by name, 479 -> 437 by handle). */
static inline __attribute__((always_inline)) bool run_serial(cpex__pipeline *pl, uint32_t mode)
{
    const cpex__hook *h = pl->hook;
    phase_walk w;
    w.clk.kind = -1;
    w.clk.last = 0;
    w.ready = false;
    for (size_t i = h->phase_start[mode]; i < h->phase_start[mode + 1]; i++) {
        cpex__plugin *p = h->entries[i].plugin;
        if (atomic_load_explicit(&p->disabled, memory_order_relaxed))
            continue;
        cpex__outcome o;
        if (phase_step(pl, &w, &h->entries[i], mode, &o))
            continue;
        bool go_on = serial_outcome(pl, &w.cs, p, mode, &o, NULL, NULL, 0);
        cpex__call_state_cleanup(&w.cs);
        if (!go_on)
            return false;
    }
    return true;
}

/* ------------------------------------------------------------------ */
/* Observation                                                         */
/* ------------------------------------------------------------------ */

void cpex__ex_fill_record(cpex__recs *recs, cpex_execution_record *rec, const cpex__rec_info *ri,
                          uint64_t t0, uint64_t t1)
{
    rec->status = ri->status;
    rec->requested = ri->requested;
    rec->effective = ri->halted ? CPEX_DENY : CPEX_ALLOW;
    bool changed = ri->payload_modified || ri->extensions_modified;
    rec->matched = ri->requested < 0 ? -1 : (ri->requested == CPEX_DENY || changed);
    rec->applied = changed || ri->halted;
    rec->payload_modified = ri->payload_modified;
    rec->extensions_modified = ri->extensions_modified;
    if (!ri->ran) {
        rec->start_unix_ns = rec->duration_ns = 0;
    } else if (recs->templated && !recs->finished) {
        rec->start_unix_ns = (int64_t)t0; /* converted when the block is finished */
        rec->duration_ns = (int64_t)t1;
    } else {
        cpex__recs_time(recs, rec, t0, t1);
    }
    if (ri->code)
        cpex__recs_set_text(recs, &rec->code, ri->code);
    if (ri->reason)
        cpex__recs_set_text(recs, &rec->reason, ri->reason);
}

void cpex__ex_observe(cpex__pipeline *pl, size_t entry, cpex__plugin *p, const cpex__rec_info *ri,
                      uint64_t t0, uint64_t t1)
{
    cpex__pl_obs *ob = pl->obs;
    if (ob->recs) {
        cpex_execution_record *rec =
            ob->recs->templated ? &ob->recs->rec[entry] : cpex__recs_add(ob->recs, p);
        if (rec)
            cpex__ex_fill_record(ob->recs, rec, ri, t0, t1);
    }
    if (ob->shard && ob->ids) {
        cpex__mslot *s = cpex__mslot_of(ob->shard, ob->ids[entry]);
        if (s)
            cpex__mslot_call(s, cpex__mc_outcome(ri->status, ri->requested), ri->disabled,
                             ri->ran ? cpex__ticks_ns(t0, t1) : -1);
    }
}

/* The number of fire-and-forget handlers that will run. */
static size_t faf_count(const cpex__hook *h)
{
    size_t n = 0;
    for (size_t i = h->phase_start[CPEX_MODE_FIRE_AND_FORGET];
         i < h->phase_start[CPEX_MODE_FIRE_AND_FORGET + 1]; i++)
        if (!atomic_load_explicit(&h->entries[i].plugin->disabled, memory_order_relaxed))
            n++;
    return n;
}

/* Hand the verdict to the audit sinks: what the invoke decided, its final
 * payload and extensions, and its records (a copy when the result keeps
 * them; without the trace and span ids, which a sink reads through its
 * capabilities). `faf` fire-and-forget records are still to come. */
static void make_verdict(cpex__pipeline *pl, size_t faf)
{
    cpex__pl_obs *ob = pl->obs;
    ob->verdict_done = true;
    cpex__recs *recs = ob->recs;
    if (recs)
        cpex__recs_finish(recs);
    if (recs && (ob->result_records || faf)) {
        size_t extra_bytes = 0;
        const cpex__hook *h = pl->hook;
        for (size_t i = h->phase_start[CPEX_MODE_FIRE_AND_FORGET];
             i < h->phase_start[CPEX_MODE_FIRE_AND_FORGET + 1]; i++)
            extra_bytes += (h->entries[i].plugin->rec ? h->entries[i].plugin->rec->bytes : 0) +
                           2 * (CPEX__REC_MAX_TEXT + 1) + 16;
        recs = cpex__recs_clone_for_verdict(ob->recs, ob->recs->count, faf, extra_bytes);
        if (!recs)
            cpex__log(cpex__hub_sink(pl->manager->hub), CPEX_LOG_WARN, NULL,
                      "out of memory: the audit sinks get the verdict of an invoke of '%.200s' "
                      "without its execution records",
                      pl->hook->name);
        if (!ob->result_records) {
            cpex__recs_free(ob->recs);
            ob->recs = NULL;
        }
    } else if (recs) {
        ob->recs = NULL; /* the verdict takes them */
        for (size_t i = 0; i < recs->count; i++) {
            recs->rec[i].trace_id.ptr = recs->rec[i].span_id.ptr = NULL;
            recs->rec[i].trace_id.len = recs->rec[i].span_id.len = 0;
        }
    }
    const cpex__hook *h = pl->hook;
    int64_t now = cpex__now_ns();
    cpex__verdict_src src = {pl->manager->hub,
                             h->name,
                             h->name_len,
                             h->sinks,
                             h->sink_count,
                             pl->res->continue_processing,
                             pl->res->violation,
                             pl->payload.kind ? &pl->payload : NULL,
                             &pl->ops,
                             pl->ext,
                             pl->res->payload_modified,
                             pl->res->extensions_modified,
                             recs,
                             faf};
    ob->item = cpex__verdict_new(pl->manager->hub->audit, &src);
    if (!ob->item || !faf)
        return;
    ob->item_faf = true;
    size_t k = 0;
    for (size_t i = h->phase_start[CPEX_MODE_FIRE_AND_FORGET];
         i < h->phase_start[CPEX_MODE_FIRE_AND_FORGET + 1] && k < faf; i++) {
        cpex__plugin *p = h->entries[i].plugin;
        if (!atomic_load_explicit(&p->disabled, memory_order_relaxed))
            cpex__verdict_faf_prepare(ob->item, k++, p, cpex__deadline_add(now, p->timeout_ns));
    }
}

/* ------------------------------------------------------------------ */
/* The phases                                                          */
/* ------------------------------------------------------------------ */

/* A phase without handlers costs a comparison, not a call. */
#define HAS_PHASE(h, mode) ((h)->phase_start[(mode)] != (h)->phase_start[(mode) + 1])

static inline __attribute__((always_inline)) void run_phases(cpex__pipeline *pl, const bool obs)
{
    const cpex__hook *hook = pl->hook;
    if ((!HAS_PHASE(hook, CPEX_MODE_SEQUENTIAL) ||
         (obs ? run_serial_obs(pl, CPEX_MODE_SEQUENTIAL) : run_serial(pl, CPEX_MODE_SEQUENTIAL))) &&
        /* Any phase after the sequential one? One compare for all four
           (the phases are contiguous, in this order). */
        hook->phase_start[CPEX_MODE_TRANSFORM] != hook->phase_start[CPEX_PHASES]) {
        if (HAS_PHASE(hook, CPEX_MODE_TRANSFORM))
            obs ? run_serial_obs(pl, CPEX_MODE_TRANSFORM) : run_serial(pl, CPEX_MODE_TRANSFORM);
        if (HAS_PHASE(hook, CPEX_MODE_AUDIT))
            obs ? run_serial_obs(pl, CPEX_MODE_AUDIT) : run_serial(pl, CPEX_MODE_AUDIT);
        if (!HAS_PHASE(hook, CPEX_MODE_CONCURRENT) || cpex__ex_run_concurrent(pl)) {
            if (HAS_PHASE(hook, CPEX_MODE_FIRE_AND_FORGET)) {
                /* The decision is final here: a verdict that waits for the
                 * fire-and-forget records is made before they start. */
                if (obs && pl->obs->sinks) {
                    size_t n = faf_count(hook);
                    if (n)
                        make_verdict(pl, n);
                }
                cpex__ex_run_fire_and_forget(pl);
            }
        }
    }
}

/* ------------------------------------------------------------------ */
/* Entry                                                               */
/* ------------------------------------------------------------------ */

/* What every invoke does after its phases: hand the result what the
 * pipeline owns. */
static inline __attribute__((always_inline)) void finish(cpex__pipeline *pl)
{
    cpex_pipeline_result *res = pl->res;
    res->context = pl->ctx;
    if (pl->owned_payload) {
        res->modified_payload = cpex__result_payload_new(
            pl->ops.kind, pl->ops.type_name, pl->owned_payload, pl->ops.free, pl->ops.user);
        if (!res->modified_payload) {
            pl->ops.free(pl->owned_payload, pl->ops.user);
            res->payload_modified = false;
            cpex__records_add(&res->errors, &res->error_count, "", CPEX_CODE_INTERNAL,
                              "out of memory: the modified payload was lost", NULL);
        }
    }
    if (pl->owned_ext)
        res->extensions = pl->owned_ext;
}

/* An invoke with records, metrics or sinks on. */
static __attribute__((noinline)) void execute_observed(cpex__pipeline *pl, uint32_t flags)
{
    const cpex__hook *h = pl->hook;
    cpex_pipeline_result *res = pl->res;
    cpex__pl_obs ob;
    memset(&ob, 0, sizeof ob);
    ob.result_records =
        (flags & CPEX__OBS_RECORDS) && res->struct_size >= CPEX_PIPELINE_RESULT_SIZE_EXECUTIONS;
    ob.sinks = h->sink_count && !pl->closing;
    const cpex__rec_template *tpl = NULL;
    if (ob.result_records || ob.sinks) {
        tpl = cpex__hook_template(h);
        ob.recs = tpl ? cpex__recs_from_template(tpl, pl->ext) : NULL;
    }
    if (flags & CPEX__OBS_METRICS)
        ob.shard = cpex__metrics_shard(pl->manager->hub->metrics);
    ob.clock.base_ticks = cpex__ticks();
    ob.clock.base_ns = cpex__now_ns();
    ob.ids = h->metric_ids;
    pl->obs = &ob;

    run_phases(pl, true);

    if (ob.sinks && !ob.verdict_done)
        make_verdict(pl, 0);
    finish(pl);
    if (ob.item) {
        /* After the commit a verdict without fire-and-forget records may
         * be delivered and freed at once: not touched again. One with them
         * waits for the invoker's count too, dropped last. */
        bool waits = ob.item_faf;
        cpex__verdict_commit(pl->manager->hub->audit, ob.item);
        if (waits)
            cpex__verdict_faf_done(pl->manager->hub->audit, ob.item);
    }
    if (ob.result_records && !ob.recs)
        cpex__records_add(&res->errors, &res->error_count, "", CPEX_CODE_INTERNAL,
                          "out of memory: the execution records of this invoke were lost", NULL);
    if (ob.recs) {
        cpex__recs_finish(ob.recs);
        if (ob.result_records && ob.recs->lost)
            cpex__records_add(&res->errors, &res->error_count, "", CPEX_CODE_INTERNAL,
                              "out of memory: some execution records lack a name, a code or a "
                              "reason",
                              NULL);
        if (ob.result_records) {
            res->executions = ob.recs->rec;
            res->execution_count = ob.recs->count;
            res->execution_size = (uint32_t)sizeof(cpex_execution_record);
        } else {
            cpex__recs_free(ob.recs);
        }
    }
    if (ob.shard && h->metric_ids) { /* a snapshot that was never wired counts nothing */
        cpex__mslot *s = cpex__mslot_of(ob.shard, h->metric_id);
        if (s) {
            cpex__mc_add(&s->c[res->continue_processing ? CPEX__MC_ALLOWS : CPEX__MC_DENIES], 1);
        }
    }
    pl->obs = NULL; /* `ob` ends here */
}

void cpex__execute(cpex_manager *m, const cpex__snapshot *snap, const cpex__hook *hook,
                   const cpex_payload *payload, const cpex__type_slot *custom,
                   const cpex_extensions *ext, cpex_context_table *ctx, cpex_pipeline_result *res)
{
    cpex__pipeline pl;
    pl.manager = m;
    pl.snap = snap;
    pl.hook = hook;
    if (payload)
        pl.payload = *payload;
    else
        memset(&pl.payload, 0, sizeof pl.payload);
    pl.ops = cpex__payload_ops_for(payload, custom);
    pl.owned_payload = NULL;
    pl.owned_ext = NULL;
    pl.ext = ext;
    pl.ctx = ctx;
    pl.res = res;
    pl.closing = atomic_load_explicit(&m->closing, memory_order_relaxed) != 0;
    pl.obs = NULL;

    /* Records, metrics and sinks off (the default): one load, one branch. */
    uint32_t flags = atomic_load_explicit(&m->obs_flags, memory_order_relaxed);
    if (__builtin_expect((flags | hook->sink_count) != 0, 0)) {
        execute_observed(&pl, flags);
        return;
    }
    run_phases(&pl, false);
    finish(&pl);
}
