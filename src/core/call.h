/*
 * call.h — the host's side of one handler call: what the host table's
 * slots reach through cpex_call.host_private. Shared by executor.c and
 * host_api.c.
 */
#ifndef CPEX_CORE_CALL_H
#define CPEX_CORE_CALL_H

#include <stdbool.h>
#include <stdio.h>

#include "core/core.h"
#include "cpex/extensions.h"
#include "util/clock.h"
#include "util/coarse_clock.h"
#include "util/ticks.h"

#define CPEX_CALL_MAGIC 0x63706578u /* "cpex": catches a plugin passing a stray pointer */

/* How to clone and free payload data of the kind / type a hook carries. */
typedef struct cpex__payload_ops {
    uint32_t kind; /* enum cpex_payload_kind; 0 when there is no payload */
    const char *type_name;
    void *(*clone)(const void *data, void *user);
    void (*free)(void *data, void *user);
    void *user;
} cpex__payload_ops;

typedef struct cpex__call_state {
    cpex_call call; /* what the handler sees */
    uint32_t magic;
    cpex__hub *hub; /* the manager's log (borrowed; the caller holds it) */
    cpex__plugin *plugin;
    uint32_t mode;
    bool can_modify;                  /* sequential and transform */
    bool dirty;                       /* the call left something below (set by every host slot
                                      that stores into it; cleared by cleanup) */
    bool closed;                      /* the invoke began after shutdown started */
    const cpex__payload_ops *ops;     /* the payload's type (the pipeline's or task's) */
    const cpex_payload *base_payload; /* what the call sees until it edits (NULL: none) */
    cpex_payload edit_view;           /* what it sees after an edit (host_edit.c) */

    /* extensions: what the plugin reads, and its copy-on-write changes */
    const cpex_extensions *ext;
    cpex_extensions *pending_ext;

    /* what the handler produced */
    void *new_payload; /* owned; of ops->kind, freed with ops->free */
    cpex_violation *violation;
    char *error_message;
    json_t *metadata;

    /* soft errors go here */
    cpex_error_record **records;
    size_t *record_count;

    /* context: serial modes write the live table; others a scratch copy */
    bool snapshot_ctx;
    cpex_context_table **table;             /* serial: the pipeline's table (created on write) */
    json_t *base_local, *base_global;       /* snapshot modes: what reads see (borrowed) */
    json_t *scratch_local, *scratch_global; /* snapshot modes: writes, discarded */
} cpex__call_state;

/** The call state behind a call, or NULL if the pointer is not one of ours. */
static inline cpex__call_state *cpex__call_state_of(const cpex_call *call)
{
    if (!call || !call->host_private)
        return NULL;
    cpex__call_state *cs = (cpex__call_state *)call->host_private;
    return cs->magic == CPEX_CALL_MAGIC ? cs : NULL;
}

/** Record a soft error for the call's plugin (formatted). */
void cpex__call_record(cpex__call_state *cs, cpex_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/** Release everything the call state owns (not the struct). */
void cpex__call_state_cleanup(cpex__call_state *cs);

/** What every call shares, wherever it runs; the rest is the caller's to set. */
typedef struct cpex__call_setup {
    cpex__hub *hub;
    const char *hook;
    size_t hook_len;
    const cpex_payload *payload; /* the view handlers get (NULL: none) */
    const cpex__payload_ops *ops;
    const cpex_extensions *ext;
    bool closing;
    cpex_error_record **records;
    size_t *record_count;
} cpex__call_setup;

/** Start a call state for plugin `p` in `mode` (zeroes everything else).
 *  Inline: it runs once per phase of every invoke. */
static inline void cpex__call_state_init(cpex__call_state *cs, const cpex__call_setup *setup,
                                         cpex__plugin *p, uint32_t mode)
{
    /* Field by field rather than a memset of the whole (~300-byte) state:
     * this runs once per phase of every invoke. edit_view is written
     * before it is read (host_edit.c). */
    bool can_modify = mode == CPEX_MODE_SEQUENTIAL || mode == CPEX_MODE_TRANSFORM;
    cs->call.struct_size = (uint32_t)sizeof cs->call;
    cs->call.mode = mode;
    cs->call.hook.ptr = setup->hook;
    cs->call.hook.len = setup->hook_len;
    cs->call.plugin_name.ptr = p->name;
    cs->call.plugin_name.len = p->name_len;
    cs->call.payload = setup->payload;
    cs->call.deadline_ns = 0;
    cs->call.host_private = cs;
    cs->magic = CPEX_CALL_MAGIC;
    cs->hub = setup->hub;
    cs->plugin = p;
    cs->mode = mode;
    cs->can_modify = can_modify;
    cs->dirty = false;
    cs->closed = setup->closing;
    cs->ops = setup->ops;
    cs->base_payload = setup->payload;
    cs->ext = setup->ext;
    cs->pending_ext = NULL;
    cs->new_payload = NULL;
    cs->violation = NULL;
    cs->error_message = NULL;
    cs->metadata = NULL;
    cs->records = setup->records;
    cs->record_count = setup->record_count;
    cs->snapshot_ctx = !can_modify;
    cs->table = NULL;
    cs->base_local = cs->base_global = NULL;
    cs->scratch_local = cs->scratch_global = NULL;
}

/** Free a CMF message / a jansson value given as payload data (`user` unused). */
void cpex__payload_free_cmf(void *data, void *user);
void cpex__payload_free_json(void *data, void *user);
/** Clone a CMF message / a jansson value given as payload data (`user` unused). */
void *cpex__payload_clone_cmf(const void *data, void *user);
void *cpex__payload_clone_json(const void *data, void *user);

/** How to clone and free the data of payload `p` (`custom`: its registered
 *  type when it is CPEX_PAYLOAD_CUSTOM). All zero when `p` is NULL. */
static inline cpex__payload_ops cpex__payload_ops_for(const cpex_payload *p,
                                                      const cpex__type_slot *custom)
{
    cpex__payload_ops ops = {0};
    if (!p)
        return ops;
    ops.kind = p->kind;
    if (p->kind == CPEX_PAYLOAD_CMF) {
        ops.type_name = "cmf";
        ops.clone = cpex__payload_clone_cmf;
        ops.free = cpex__payload_free_cmf;
    } else if (p->kind == CPEX_PAYLOAD_JSON) {
        ops.type_name = "json";
        ops.clone = cpex__payload_clone_json;
        ops.free = cpex__payload_free_json;
    } else if (custom) {
        ops.type_name = custom->name;
        ops.clone = custom->type.clone;
        ops.free = custom->type.free;
        ops.user = custom->type.user;
    }
    return ops;
}

/* ------------------------------------------------------------------ */
/* What one handler call came to                                      */
/* ------------------------------------------------------------------ */

typedef enum cpex__outcome_kind {
    CPEX__OUT_ALLOW,
    CPEX__OUT_DENY,
    CPEX__OUT_ERROR,
    CPEX__OUT_TIMEOUT
} cpex__outcome_kind;

typedef struct cpex__outcome {
    cpex__outcome_kind kind;
    cpex_code record_code; /* for CPEX__OUT_ERROR only: ERROR, BAD_DECISION or NOT_INITIALIZED */
    int64_t end;           /* clock reading after the call (the start when not called) */
    char message[512];     /* for CPEX__OUT_ERROR only; written only then */
} cpex__outcome;

/** Whether the call's plugin may run; if not, *out says why (fail closed). */
bool cpex__ex_plugin_ready(const cpex__call_state *cs, cpex__outcome *out);
/** The violation of a deny: the plugin's own, or `fallback_code` (fail closed). */
cpex_violation *cpex__ex_take_violation(cpex__call_state *cs, cpex_code fallback_code);
/** A failure as a halting violation (on_error: fail). */
cpex_violation *cpex__ex_failure_violation(const cpex__plugin *p, const cpex__outcome *o);
/** A failure that does not halt: recorded as a soft error, and the plugin
 *  disabled when its on_error is disable. True when this call disabled it. */
bool cpex__ex_soft_failure(cpex__call_state *cs, const cpex__outcome *o);
/** Record that the call's deny was ignored: its mode cannot block. */
void cpex__ex_dropped_deny(cpex__call_state *cs);
/** Merge a call's metadata `from` into the accumulated object *into
 *  (copies); on OOM the metadata is dropped and that recorded. */
void cpex__ex_keep_metadata(cpex__call_state *cs, json_t **into, json_t *from);

/* What a handler returned, after its deadline was checked: only an error
 * writes out->message. */
static inline __attribute__((always_inline)) void
cpex__call_classify(const cpex__call_state *cs, int32_t d, bool late, cpex__outcome *out)
{
    if (__builtin_expect(late, 0)) {
        /* C cannot stop a call; an overrun's result is discarded instead. */
        out->kind = CPEX__OUT_TIMEOUT;
        return;
    }
    if (__builtin_expect(d == CPEX_ALLOW, 1))
        return;
    if (d == CPEX_DENY) {
        out->kind = CPEX__OUT_DENY;
    } else if (d == CPEX_ERROR) {
        out->kind = CPEX__OUT_ERROR;
        out->record_code = CPEX_CODE_ERROR;
        snprintf(out->message, sizeof out->message, "%s",
                 cs->error_message ? cs->error_message
                                   : "handler returned an error without a message");
    } else {
        out->kind = CPEX__OUT_ERROR;
        out->record_code = CPEX_CODE_BAD_DECISION;
        snprintf(out->message, sizeof out->message,
                 "handler returned unknown decision %d (expected CPEX_ALLOW=0, CPEX_DENY=1 or "
                 "CPEX_ERROR=2); treated as an error",
                 (int)d);
    }
}

/* Whether the call's plugin may be called (the common case inline); if
 * not, *out says why. */
static inline __attribute__((always_inline)) bool cpex__call_ready(cpex__call_state *cs,
                                                                   cpex__outcome *out)
{
    cpex__plugin *p = cs->plugin;
    return !(__builtin_expect(atomic_load_explicit(&p->state, memory_order_acquire) !=
                                      CPEX_STATE_INITIALIZED ||
                                  cs->closed,
                              0) &&
             !cpex__ex_plugin_ready(cs, out));
}

/* Call the handler and classify what it returned into *out. `start` and
 * out->end are readings of the ticker's clock (util/coarse_clock.h) when `coarse`, else of the
 * precise one. Only an error writes out->message: the allow path touches a
 * few words (returning the 530-byte outcome by value cost ~140
 * instructions per call: a 512-byte zero fill and a copy). */
static inline __attribute__((always_inline)) void cpex__call_handler(cpex__call_state *cs,
                                                                     cpex_handler_fn fn,
                                                                     int64_t start, bool coarse,
                                                                     cpex__outcome *out)
{
    out->kind = CPEX__OUT_ALLOW;
    out->end = start;
    if (!cpex__call_ready(cs, out))
        return;
    cpex__plugin *p = cs->plugin;
    cs->call.deadline_ns = cpex__deadline_add(start, p->timeout_ns);
    int32_t d = fn(p->reg.instance, &cs->call);
    out->end = cpex__deadline_now_ns(coarse);
    cpex__call_classify(cs, d, out->end > cs->call.deadline_ns, out);
}

/* CLOCK_MONOTONIC from the tick counter, anchored once per invoke: an
 * observed invoke times each call with one tick reading, which gives the
 * deadline check its clock too (the anchor keeps the drift of the tick
 * rate's estimate within one invoke negligible). */
typedef struct cpex__tick_clock {
    int64_t base_ns; /* CLOCK_MONOTONIC at base_ticks */
    uint64_t base_ticks;
} cpex__tick_clock;

static inline int64_t cpex__tick_clock_ns(const cpex__tick_clock *c, uint64_t ticks)
{
    return c->base_ns + cpex__ticks_ns(c->base_ticks, ticks);
}

/* cpex__call_handler timed by the tick counter: `t0` is the reading it
 * starts from; *t1 gets the reading after the call (t0 when not called).
 * The deadline is checked in ticks (the plugin's timeout_ticks): one
 * conversion per call, for the deadline the handler sees. out->end is not
 * set: the caller has *t1. */
static inline __attribute__((always_inline)) void
cpex__call_handler_ticks(cpex__call_state *cs, cpex_handler_fn fn, const cpex__tick_clock *clk,
                         uint64_t t0, uint64_t *t1, cpex__outcome *out)
{
    out->kind = CPEX__OUT_ALLOW;
    *t1 = t0;
    if (!cpex__call_ready(cs, out))
        return;
    cpex__plugin *p = cs->plugin;
    cs->call.deadline_ns = cpex__deadline_add(cpex__tick_clock_ns(clk, t0), p->timeout_ns);
    int32_t d = fn(p->reg.instance, &cs->call);
    *t1 = cpex__ticks();
    cpex__call_classify(cs, d, *t1 - t0 > p->timeout_ticks, out);
}

#endif
