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
    return c->kind == (int)coarse ? c->last : cpex__clock_ns(coarse);
}


/* ------------------------------------------------------------------ */
/* The pipeline of one invoke                                          */
/* ------------------------------------------------------------------ */


/* A call on the caller's thread: context reads and (serial) writes go to
 * the pipeline's live table. */
static void init_call(cpex__pipeline *pl, cpex__call_state *cs, cpex__plugin *p, uint32_t mode)
{
    cpex__call_setup setup = {pl->manager->hub,  pl->hook->name, pl->hook->name_len,
                        pl->payload.kind ? &pl->payload : NULL, &pl->ops, pl->ext,
                        pl->closing,  &pl->res->errors, &pl->res->error_count};
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
static inline bool call_state_dirty(const cpex__call_state *cs)
{
    return cs->dirty;
}

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

/* Call entry `e` in phase `mode`. True when the call allowed and left
 * nothing behind (the common case: nothing to adopt, merge or free). */
static inline __attribute__((always_inline)) bool
phase_step(cpex__pipeline *pl, phase_walk *w, const cpex__hook_entry *e, uint32_t mode, cpex__outcome *o)
{
    cpex__plugin *p = e->plugin;
    if (w->ready)
        rebind_call(pl, &w->cs, p);
    else
        init_call(pl, &w->cs, p, mode);
    w->ready = true;
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

/* A phase on the caller's thread: sequential, transform or audit. Only the
 * sequential phase can halt; returns false when it did. Adopting an audit
 * call's changes adopts nothing: the host table refused them all. */
static bool run_serial(cpex__pipeline *pl, uint32_t mode)
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
        cpex__call_state *csp = &w.cs;
        bool halted = false;
        switch (o.kind) {
        case CPEX__OUT_ALLOW:
            adopt_changes(pl, csp);
            break;
        case CPEX__OUT_DENY:
            if (mode == CPEX_MODE_SEQUENTIAL) {
                cpex__ex_halt(pl, cpex__ex_take_violation(csp, CPEX_CODE_PLUGIN_DENY));
                halted = true;
            } else {
                cpex__ex_dropped_deny(csp);
                adopt_changes(pl, csp);
            }
            break;
        case CPEX__OUT_ERROR:
        case CPEX__OUT_TIMEOUT:
            if (p->on_error == CPEX_ON_ERROR_FAIL && mode == CPEX_MODE_SEQUENTIAL) {
                cpex__ex_halt(pl, cpex__ex_failure_violation(p, &o));
                halted = true;
            } else {
                cpex__ex_soft_failure(csp, &o); /* audit always records, whatever on_error */
            }
            break;
        }
        if (o.kind != CPEX__OUT_TIMEOUT)
            cpex__ex_keep_metadata(csp, &pl->res->metadata, csp->metadata);
        cpex__call_state_cleanup(csp);
        if (halted)
            return false;
    }
    return true;
}

/* ------------------------------------------------------------------ */
/* Entry                                                               */
/* ------------------------------------------------------------------ */

void cpex__execute(cpex_manager *m, const cpex__snapshot *snap, const cpex__hook *hook,
                  const cpex_payload *payload, const cpex__type_slot *custom,
                  const cpex_extensions *ext, cpex_context_table *ctx, bool closing,
                  cpex_pipeline_result *res)
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
    pl.closing = closing;

    /* A phase without handlers costs a comparison, not a call. */
#define HAS_PHASE(mode) (hook->phase_start[(mode)] != hook->phase_start[(mode) + 1])
    if (!HAS_PHASE(CPEX_MODE_SEQUENTIAL) || run_serial(&pl, CPEX_MODE_SEQUENTIAL)) {
        if (HAS_PHASE(CPEX_MODE_TRANSFORM))
            run_serial(&pl, CPEX_MODE_TRANSFORM);
        if (HAS_PHASE(CPEX_MODE_AUDIT))
            run_serial(&pl, CPEX_MODE_AUDIT);
        if (!HAS_PHASE(CPEX_MODE_CONCURRENT) || cpex__ex_run_concurrent(&pl)) {
            if (HAS_PHASE(CPEX_MODE_FIRE_AND_FORGET))
                cpex__ex_run_fire_and_forget(&pl);
        }
    }
#undef HAS_PHASE

    res->context = pl.ctx;
    if (pl.owned_payload) {
        res->modified_payload = cpex__result_payload_new(pl.ops.kind, pl.ops.type_name,
                                                        pl.owned_payload, pl.ops.free, pl.ops.user);
        if (!res->modified_payload) {
            pl.ops.free(pl.owned_payload, pl.ops.user);
            res->payload_modified = false;
            cpex__records_add(&res->errors, &res->error_count, "", CPEX_CODE_INTERNAL,
                             "out of memory: the modified payload was lost", NULL);
        }
    }
    if (pl.owned_ext)
        res->extensions = pl.owned_ext;
}
