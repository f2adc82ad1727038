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
#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/call.h"
#include "core/core.h"
#include "cpex/cmf.h"
#include "core/executor_internal.h"
#include "util/alloc.h"

int64_t cpex__now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/*
 * The clock of the cooperative timeout. A precise CLOCK_MONOTONIC read costs
 * ~30 ns on a VM (vDSO + rdtscp); CLOCK_MONOTONIC_COARSE costs ~5 ns with
 * the resolution of a scheduler tick (1-4 ms). A plugin whose timeout is at
 * least 250 ticks (1 s with 4 ms ticks; the default is 30 s) is timed with
 * the coarse clock: its deadline is then off by at most one tick, 0.4% of
 * its budget. Shorter timeouts keep the precise clock.
 */
#ifdef CLOCK_MONOTONIC_COARSE
#define CPEX_COARSE_CLOCK CLOCK_MONOTONIC_COARSE
#else
#define CPEX_COARSE_CLOCK CLOCK_MONOTONIC
#endif

static _Atomic int64_t coarse_min_timeout = -1;

static int64_t coarse_min(void)
{
    int64_t v = atomic_load_explicit(&coarse_min_timeout, memory_order_relaxed);
    if (v < 0) {
        struct timespec r;
        if (clock_getres(CPEX_COARSE_CLOCK, &r) == 0 && r.tv_sec == 0 && r.tv_nsec > 0 &&
            r.tv_nsec <= 10000000)
            v = (int64_t)r.tv_nsec * 250;
        else
            v = INT64_MAX;
        atomic_store_explicit(&coarse_min_timeout, v, memory_order_relaxed);
    }
    return v;
}

static inline int64_t clock_ns(bool coarse)
{
    struct timespec ts;
    clock_gettime(coarse ? CPEX_COARSE_CLOCK : CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Within one serial phase, the end of a call that left nothing behind is
 * the start of the next call on the same clock: one clock read per call. */
typedef struct call_clock {
    int kind; /* -1: no reading to reuse; 0 precise; 1 coarse */
    int64_t last;
} call_clock;

static inline int64_t clock_start(const call_clock *c, bool coarse)
{
    return c->kind == (int)coarse ? c->last : clock_ns(coarse);
}


/* ------------------------------------------------------------------ */
/* Payload data helpers                                                */
/* ------------------------------------------------------------------ */

/* How to clone and free payload data of one kind / type. */

static void *cmf_clone_op(const void *d, void *u) { (void)u; return cpex_cmf_clone(d); }
static void cmf_free_op(void *d, void *u) { (void)u; cpex_cmf_free(d); }
static void *json_clone_op(const void *d, void *u) { (void)u; return json_deep_copy(d); }
static void json_free_op(void *d, void *u) { (void)u; json_decref(d); }

static cpex__payload_ops ops_for(const cpex_payload *p, const cpex__type_slot *custom)
{
    cpex__payload_ops ops = {0};
    if (!p)
        return ops;
    ops.kind = p->kind;
    if (p->kind == CPEX_PAYLOAD_CMF) {
        ops.type_name = "cmf";
        ops.clone = cmf_clone_op;
        ops.free = cmf_free_op;
    } else if (p->kind == CPEX_PAYLOAD_JSON) {
        ops.type_name = "json";
        ops.clone = json_clone_op;
        ops.free = json_free_op;
    } else if (custom) {
        ops.type_name = custom->name;
        ops.clone = custom->type.clone;
        ops.free = custom->type.free;
        ops.user = custom->type.user;
    }
    return ops;
}

/* ------------------------------------------------------------------ */
/* Call state                                                          */
/* ------------------------------------------------------------------ */

void cpex__call_record(cpex__call_state *cs, const char *code, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (!cpex__records_add(cs->records, cs->record_count, cs->plugin->name, code, msg, NULL))
        cpex__log(cs->manager, CPEX_LOG_ERROR, cs->plugin->name,
                 "out of memory recording: %s", msg);
}

void cpex__call_state_cleanup(cpex__call_state *cs)
{
    /* The all-allow path owns nothing: leave without a call per field. */
    if (!cs->new_payload && !cs->pending_ext && !cs->violation && !cs->error_message &&
        !cs->metadata && !cs->scratch_local && !cs->scratch_global)
        return;
    if (cs->new_payload)
        cs->ops->free(cs->new_payload, cs->ops->user);
    cs->new_payload = NULL;
    cpex_extensions_unref(cs->pending_ext);
    cs->pending_ext = NULL;
    cpex_violation_free(cs->violation);
    cs->violation = NULL;
    cpex__free(cs->error_message);
    cs->error_message = NULL;
    json_decref(cs->metadata);
    cs->metadata = NULL;
    json_decref(cs->scratch_local);
    json_decref(cs->scratch_global);
    cs->scratch_local = cs->scratch_global = NULL;
}

/* What one handler call came to. */

/* A plugin that is not (or no longer) initialized fails closed. */
bool cpex__ex_plugin_ready(const cpex__call_state *cs, cpex__outcome *out)
{
    cpex__plugin *p = cs->plugin;
    int st = atomic_load_explicit(&p->state, memory_order_acquire);
    if (cs->closed)
        st = CPEX_PLUGIN_SHUT_DOWN;
    if (st == CPEX_PLUGIN_INITIALIZED)
        return true;
    out->kind = CPEX__OUT_ERROR;
    out->record_code = "not_initialized";
    if (st == CPEX_PLUGIN_FAILED) {
        pthread_mutex_lock(&p->lock);
        snprintf(out->message, sizeof out->message, "plugin failed to initialize: %s",
                 p->reason ? p->reason : "(no message)");
        pthread_mutex_unlock(&p->lock);
    } else if (st == CPEX_PLUGIN_SHUT_DOWN) {
        snprintf(out->message, sizeof out->message,
                 "plugin is shut down (the manager was shut down)");
    } else {
        snprintf(out->message, sizeof out->message,
                 "plugin is not initialized; call cpex_manager_initialize before invoking");
    }
    return false;
}

/* Call the handler and classify what it returned into *out. `start` and
 * out->end are readings of the coarse clock when `coarse`, else of the
 * precise one. Only an error writes out->message: the allow path touches a
 * few words (returning the 530-byte outcome by value cost ~140
 * instructions per call: a 512-byte zero fill and a copy). */
static inline __attribute__((always_inline)) void
call_handler(cpex__call_state *cs, cpex_handler_fn fn, int64_t start, bool coarse, cpex__outcome *out)
{
    out->kind = CPEX__OUT_ALLOW;
    out->record_code = NULL;
    out->end = start;
    out->message[0] = '\0';
    if (!cpex__ex_plugin_ready(cs, out))
        return;
    cs->call.deadline_ns = start + cs->plugin->timeout_ns;
    int32_t d = fn(cs->plugin->reg.instance, &cs->call);
    out->end = clock_ns(coarse);
    if (out->end > cs->call.deadline_ns) {
        /* C cannot stop a call; an overrun's result is discarded instead. */
        out->kind = CPEX__OUT_TIMEOUT;
        return;
    }
    switch (d) {
    case CPEX_ALLOW:
        break;
    case CPEX_DENY:
        out->kind = CPEX__OUT_DENY;
        break;
    case CPEX_ERROR:
        out->kind = CPEX__OUT_ERROR;
        out->record_code = "error";
        snprintf(out->message, sizeof out->message, "%s",
                 cs->error_message ? cs->error_message : "handler returned an error without a message");
        break;
    default:
        out->kind = CPEX__OUT_ERROR;
        out->record_code = "bad_decision";
        snprintf(out->message, sizeof out->message,
                 "handler returned unknown decision %d (expected CPEX_ALLOW=0, CPEX_DENY=1 or "
                 "CPEX_ERROR=2); treated as an error",
                 (int)d);
        break;
    }
}

void cpex__ex_call_handler(cpex__call_state *cs, cpex_handler_fn fn, int64_t start, cpex__outcome *out)
{
    call_handler(cs, fn, start, false, out);
}

/* The violation of a deny: the plugin's own, or plugin_deny (fail closed). */
cpex_violation *cpex__ex_take_violation(cpex__call_state *cs, const char *fallback_code)
{
    cpex_violation *v = cs->violation;
    cs->violation = NULL;
    if (!v) {
        char reason[300];
        snprintf(reason, sizeof reason, "Plugin '%s' denied without a violation",
                 cs->plugin->name);
        return cpex__violation_new(fallback_code, reason, NULL, NULL, cs->plugin->name);
    }
    char *name = cpex__strdup(cs->plugin->name);
    if (name) {
        cpex__free(v->plugin_name); /* the configured name wins over what the plugin said */
        v->plugin_name = name;
    }
    return v;
}

/* A failure as a halting violation (on_error: fail). */
cpex_violation *cpex__ex_failure_violation(const cpex__plugin *p, const cpex__outcome *o)
{
    char reason[800];
    if (o->kind == CPEX__OUT_TIMEOUT) {
        snprintf(reason, sizeof reason, "Plugin '%s' timed out after %lldms", p->name,
                 (long long)(p->timeout_ns / 1000000));
        json_t *d = json_pack("{s:I}", "timeout_ms", (json_int_t)(p->timeout_ns / 1000000));
        return cpex__violation_new("plugin_timeout", reason, NULL, d, p->name);
    }
    snprintf(reason, sizeof reason, "Plugin '%s' failed: %s", p->name, o->message);
    return cpex__violation_new("plugin_error", reason, NULL, NULL, p->name);
}

/* Record a failure as a soft error. */
void cpex__ex_record_failure(cpex__call_state *cs, const cpex__outcome *o)
{
    if (o->kind == CPEX__OUT_TIMEOUT)
        cpex__call_record(cs, "timeout", "plugin timed out after %lldms",
                         (long long)(cs->plugin->timeout_ns / 1000000));
    else
        cpex__call_record(cs, o->record_code ? o->record_code : "error", "%s", o->message);
}

void cpex__ex_disable_for(cpex__plugin *p, const cpex__outcome *o)
{
    char reason[600];
    if (o->kind == CPEX__OUT_TIMEOUT)
        snprintf(reason, sizeof reason, "timed out after %lldms",
                 (long long)(p->timeout_ns / 1000000));
    else
        snprintf(reason, sizeof reason, "%s", o->message);
    cpex__plugin_disable(p, reason);
}

/* Merge a call's metadata into an accumulated object (created on demand). */
bool cpex__ex_merge_metadata(json_t **into, json_t *from)
{
    if (!from)
        return true;
    json_t *copy = json_deep_copy(from);
    if (!copy)
        return false;
    if (!*into) {
        *into = copy;
        return true;
    }
    bool ok = json_object_update(*into, copy) == 0;
    json_decref(copy);
    return ok;
}

/* ------------------------------------------------------------------ */
/* The pipeline of one invoke                                          */
/* ------------------------------------------------------------------ */


void cpex__call_state_init(cpex__call_state *cs, const cpex__call_setup *setup, cpex__plugin *p,
                          uint32_t mode)
{
    memset(cs, 0, sizeof *cs);
    cs->call.struct_size = (uint32_t)sizeof cs->call;
    cs->call.mode = mode;
    cs->call.hook.ptr = setup->hook;
    cs->call.hook.len = setup->hook_len;
    cs->call.plugin_name.ptr = p->name;
    cs->call.plugin_name.len = p->name_len;
    cs->call.payload = setup->payload;
    cs->call.host_private = cs;
    cs->magic = CPEX_CALL_MAGIC;
    cs->manager = setup->manager;
    cs->plugin = p;
    cs->mode = mode;
    cs->can_modify = mode == CPEX_MODE_SEQUENTIAL || mode == CPEX_MODE_TRANSFORM;
    cs->closed = setup->closing;
    cs->ops = setup->ops;
    cs->ext = setup->ext;
    cs->records = setup->records;
    cs->record_count = setup->record_count;
    cs->snapshot_ctx = !cs->can_modify;
}

/* A call on the caller's thread: context reads and (serial) writes go to
 * the pipeline's live table. */
static void init_call(cpex__pipeline *pl, cpex__call_state *cs, cpex__plugin *p, uint32_t mode)
{
    cpex__call_setup setup = {pl->manager,  pl->hook->name, pl->hook->name_len,
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
 * error, metadata, context scratch). An allowing call that did not is
 * finished: nothing to adopt, merge or free. */
static inline bool call_state_dirty(const cpex__call_state *cs)
{
    return ((uintptr_t)cs->new_payload | (uintptr_t)cs->pending_ext | (uintptr_t)cs->violation |
            (uintptr_t)cs->error_message | (uintptr_t)cs->metadata |
            (uintptr_t)cs->scratch_local | (uintptr_t)cs->scratch_global) != 0;
}

/* Point a call state, cleaned up after its previous call, at the next
 * plugin of the same phase: only what differs per plugin is written
 * (init_call's memset of the ~250-byte state runs once per phase). */
static void rebind_call(cpex__pipeline *pl, cpex__call_state *cs, cpex__plugin *p)
{
    cs->call.plugin_name.ptr = p->name;
    cs->call.plugin_name.len = p->name_len;
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

void cpex__ex_halt(cpex__pipeline *pl, cpex_violation *v)
{
    pl->res->continue_processing = false;
    if (!v) /* out of memory building it: still deny, with a fixed text */
        v = cpex__violation_new("internal_error", "out of memory", NULL, NULL, NULL);
    pl->res->violation = v;
}

/* Sequential or transform. Returns false when the pipeline halted. */
/* Walks the handlers of one caller-thread phase with one reused call state
 * and one clock reading per call. */
typedef struct phase_walk {
    int64_t coarse_from;
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
    bool coarse = p->timeout_ns >= w->coarse_from;
    call_handler(&w->cs, e->fn, clock_start(&w->clk, coarse), coarse, o);
    if (o->kind == CPEX__OUT_ALLOW && !call_state_dirty(&w->cs)) {
        w->clk.kind = coarse;
        w->clk.last = o->end;
        return true;
    }
    w->clk.kind = -1; /* the caller's bookkeeping is not charged to the next plugin */
    return false;
}

static bool run_serial(cpex__pipeline *pl, uint32_t mode)
{
    const cpex__hook *h = pl->hook;
    phase_walk w;
    w.coarse_from = coarse_min();
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
                cpex__ex_halt(pl, cpex__ex_take_violation(csp, "plugin_deny"));
                halted = true;
            } else {
                cpex__call_record(csp, "dropped_deny",
                                 "plugin denied in transform mode, which cannot block; the deny "
                                 "was ignored (reason: %s)",
                                 csp->violation ? csp->violation->reason : "none given");
                adopt_changes(pl, csp);
            }
            break;
        case CPEX__OUT_ERROR:
        case CPEX__OUT_TIMEOUT:
            if (p->on_error == CPEX_ON_ERROR_FAIL && mode == CPEX_MODE_SEQUENTIAL) {
                cpex__ex_halt(pl, cpex__ex_failure_violation(p, &o));
                halted = true;
            } else {
                cpex__ex_record_failure(csp, &o);
                if (p->on_error == CPEX_ON_ERROR_DISABLE)
                    cpex__ex_disable_for(p, &o);
            }
            break;
        }
        if (!cpex__ex_merge_metadata(&pl->res->metadata, o.kind == CPEX__OUT_TIMEOUT ? NULL : csp->metadata))
            cpex__call_record(csp, "internal", "out of memory: the plugin's metadata was dropped");
        cpex__call_state_cleanup(csp);
        if (halted)
            return false;
    }
    return true;
}

static void run_audit(cpex__pipeline *pl)
{
    const cpex__hook *h = pl->hook;
    phase_walk w;
    w.coarse_from = coarse_min();
    w.clk.kind = -1;
    w.clk.last = 0;
    w.ready = false;
    for (size_t i = h->phase_start[CPEX_MODE_AUDIT]; i < h->phase_start[CPEX_MODE_AUDIT + 1];
         i++) {
        cpex__plugin *p = h->entries[i].plugin;
        if (atomic_load_explicit(&p->disabled, memory_order_relaxed))
            continue;
        cpex__outcome o;
        if (phase_step(pl, &w, &h->entries[i], CPEX_MODE_AUDIT, &o))
            continue;
        cpex__call_state *csp = &w.cs;
        if (o.kind == CPEX__OUT_DENY) {
            cpex__call_record(csp, "dropped_deny",
                             "plugin denied in audit mode, which cannot block; the deny was "
                             "ignored (reason: %s)",
                             csp->violation ? csp->violation->reason : "none given");
        } else if (o.kind == CPEX__OUT_ERROR || o.kind == CPEX__OUT_TIMEOUT) {
            cpex__ex_record_failure(csp, &o); /* audit always records, whatever on_error */
            if (p->on_error == CPEX_ON_ERROR_DISABLE)
                cpex__ex_disable_for(p, &o);
        }
        if (o.kind != CPEX__OUT_TIMEOUT)
            if (!cpex__ex_merge_metadata(&pl->res->metadata, csp->metadata))
                cpex__call_record(csp, "internal", "out of memory: the plugin's metadata was dropped");
        cpex__call_state_cleanup(csp);
    }
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
    memset(&pl, 0, sizeof pl);
    pl.manager = m;
    pl.snap = snap;
    pl.hook = hook;
    if (payload)
        pl.payload = *payload;
    pl.ops = ops_for(payload, custom);
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
            run_audit(&pl);
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
            cpex__records_add(&res->errors, &res->error_count, "", "internal",
                             "out of memory: the modified payload was lost", NULL);
        }
    }
    if (pl.owned_ext)
        res->extensions = pl.owned_ext;
}
