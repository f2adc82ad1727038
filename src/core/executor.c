/*
 * executor.c — one invoke: the five phases, in order, with each mode's
 * permissions, on_error, timeouts and the context table.
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
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/call.h"
#include "core/core.h"
#include "cpex/cmf.h"
#include "util/alloc.h"

int64_t cpex_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

const char *cpex_mode_label(uint32_t mode)
{
    switch (mode) {
    case CPEX_MODE_SEQUENTIAL: return "sequential";
    case CPEX_MODE_TRANSFORM: return "transform";
    case CPEX_MODE_AUDIT: return "audit";
    case CPEX_MODE_CONCURRENT: return "concurrent";
    case CPEX_MODE_FIRE_AND_FORGET: return "fire_and_forget";
    case CPEX_MODE_DISABLED: return "disabled";
    }
    return "unknown";
}

/* ------------------------------------------------------------------ */
/* Payload data helpers                                                */
/* ------------------------------------------------------------------ */

/* How to clone and free payload data of one kind / type. */
typedef struct payload_ops {
    uint32_t kind;
    const char *type_name;
    void *(*clone)(const void *data, void *user);
    void (*free)(void *data, void *user);
    void *user;
} payload_ops;

static void *cmf_clone_op(const void *d, void *u) { (void)u; return cpex_cmf_clone(d); }
static void cmf_free_op(void *d, void *u) { (void)u; cpex_cmf_free(d); }
static void *json_clone_op(const void *d, void *u) { (void)u; return json_deep_copy(d); }
static void json_free_op(void *d, void *u) { (void)u; json_decref(d); }

static payload_ops ops_for(const cpex_snapshot *snap, const cpex_payload *p)
{
    payload_ops ops = {0};
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
    } else {
        const cpex_type_slot *t =
            p->type_name.ptr ? cpex_snapshot_type(snap, p->type_name.ptr, p->type_name.len) : NULL;
        if (t) {
            ops.type_name = t->name;
            ops.clone = t->type.clone;
            ops.free = t->type.free;
            ops.user = t->type.user;
        }
    }
    return ops;
}

void cpex_payload_data_free(const cpex_snapshot *snap, uint32_t kind, const char *type_name,
                            void *data)
{
    cpex_payload p = {sizeof p, kind, {type_name, type_name ? strlen(type_name) : 0}, data};
    payload_ops ops = ops_for(snap, &p);
    if (ops.free && data)
        ops.free(data, ops.user);
}

/* ------------------------------------------------------------------ */
/* Call state                                                          */
/* ------------------------------------------------------------------ */

void cpex_call_record(cpex_call_state *cs, const char *code, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (!cpex_records_add(cs->records, cs->record_count, cs->plugin->name, code, msg, NULL))
        cpex_log(cs->manager, CPEX_LOG_ERROR, cs->plugin->name,
                 "out of memory recording: %s", msg);
}

void cpex_call_state_cleanup(cpex_call_state *cs)
{
    if (cs->new_payload && cs->new_payload_free)
        cs->new_payload_free(cs->new_payload, cs->new_payload_user);
    cs->new_payload = NULL;
    cpex_extensions_unref(cs->pending_ext);
    cs->pending_ext = NULL;
    cpex_violation_free(cs->violation);
    cs->violation = NULL;
    cpex_free(cs->error_message);
    cs->error_message = NULL;
    json_decref(cs->metadata);
    cs->metadata = NULL;
    json_decref(cs->scratch_local);
    json_decref(cs->scratch_global);
    cs->scratch_local = cs->scratch_global = NULL;
}

/* What one handler call came to. */
typedef enum outcome_kind { OUT_ALLOW, OUT_DENY, OUT_ERROR, OUT_TIMEOUT } outcome_kind;

typedef struct outcome {
    outcome_kind kind;
    const char *record_code; /* for OUT_ERROR: "error", "bad_decision", "not_initialized" */
    char message[512];       /* for OUT_ERROR */
} outcome;

/* A plugin that is not (or no longer) initialized fails closed. */
static bool plugin_ready(const cpex_call_state *cs, outcome *out)
{
    cpex_plugin *p = cs->plugin;
    int st = atomic_load_explicit(&p->state, memory_order_acquire);
    if (cs->closed)
        st = CPEX_PLUGIN_SHUT_DOWN;
    if (st == CPEX_PLUGIN_INITIALIZED)
        return true;
    out->kind = OUT_ERROR;
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

/* Call the handler and classify what it returned. */
static outcome call_handler(cpex_call_state *cs, cpex_handler_fn fn, int64_t start)
{
    outcome out = {OUT_ALLOW, NULL, ""};
    if (!plugin_ready(cs, &out))
        return out;
    cs->call.deadline_ns = start + cs->plugin->timeout_ns;
    int32_t d = fn(cs->plugin->reg.instance, &cs->call);
    if (cpex_now_ns() > cs->call.deadline_ns) {
        /* C cannot stop a call; an overrun's result is discarded instead. */
        out.kind = OUT_TIMEOUT;
        return out;
    }
    switch (d) {
    case CPEX_ALLOW:
        out.kind = OUT_ALLOW;
        break;
    case CPEX_DENY:
        out.kind = OUT_DENY;
        break;
    case CPEX_ERROR:
        out.kind = OUT_ERROR;
        out.record_code = "error";
        snprintf(out.message, sizeof out.message, "%s",
                 cs->error_message ? cs->error_message : "handler returned an error without a message");
        break;
    default:
        out.kind = OUT_ERROR;
        out.record_code = "bad_decision";
        snprintf(out.message, sizeof out.message,
                 "handler returned unknown decision %d (expected CPEX_ALLOW=0, CPEX_DENY=1 or "
                 "CPEX_ERROR=2); treated as an error",
                 (int)d);
        break;
    }
    return out;
}

/* The violation of a deny: the plugin's own, or plugin_deny (fail closed). */
static cpex_violation *take_violation(cpex_call_state *cs, const char *fallback_code)
{
    cpex_violation *v = cs->violation;
    cs->violation = NULL;
    if (!v) {
        char reason[300];
        snprintf(reason, sizeof reason, "Plugin '%s' denied without a violation",
                 cs->plugin->name);
        return cpex_violation_new(fallback_code, reason, NULL, NULL, cs->plugin->name);
    }
    char *name = cpex_strdup(cs->plugin->name);
    if (name) {
        cpex_free(v->plugin_name); /* the configured name wins over what the plugin said */
        v->plugin_name = name;
    }
    return v;
}

/* A failure as a halting violation (on_error: fail). */
static cpex_violation *failure_violation(const cpex_plugin *p, const outcome *o)
{
    char reason[800];
    if (o->kind == OUT_TIMEOUT) {
        snprintf(reason, sizeof reason, "Plugin '%s' timed out after %lldms", p->name,
                 (long long)(p->timeout_ns / 1000000));
        json_t *d = json_pack("{s:I}", "timeout_ms", (json_int_t)(p->timeout_ns / 1000000));
        return cpex_violation_new("plugin_timeout", reason, NULL, d, p->name);
    }
    snprintf(reason, sizeof reason, "Plugin '%s' failed: %s", p->name, o->message);
    return cpex_violation_new("plugin_error", reason, NULL, NULL, p->name);
}

/* Record a failure as a soft error. */
static void record_failure(cpex_call_state *cs, const outcome *o)
{
    if (o->kind == OUT_TIMEOUT)
        cpex_call_record(cs, "timeout", "plugin timed out after %lldms",
                         (long long)(cs->plugin->timeout_ns / 1000000));
    else
        cpex_call_record(cs, o->record_code ? o->record_code : "error", "%s", o->message);
}

static void disable_for(cpex_plugin *p, const outcome *o)
{
    char reason[600];
    if (o->kind == OUT_TIMEOUT)
        snprintf(reason, sizeof reason, "timed out after %lldms",
                 (long long)(p->timeout_ns / 1000000));
    else
        snprintf(reason, sizeof reason, "%s", o->message);
    cpex_plugin_disable(p, reason);
}

/* Merge a call's metadata into an accumulated object (created on demand). */
static void merge_metadata(json_t **into, json_t *from)
{
    if (!from)
        return;
    if (!*into) {
        *into = json_deep_copy(from);
        return;
    }
    json_t *copy = json_deep_copy(from);
    if (copy)
        json_object_update(*into, copy);
    json_decref(copy);
}

/* ------------------------------------------------------------------ */
/* The pipeline of one invoke                                          */
/* ------------------------------------------------------------------ */

typedef struct pipeline {
    cpex_manager *manager;
    const cpex_snapshot *snap;
    const cpex_hook *hook;
    cpex_payload payload;        /* current view */
    payload_ops ops;
    void *owned_payload;         /* current data when a plugin replaced it */
    const cpex_extensions *ext;  /* current extensions */
    cpex_extensions *owned_ext;  /* set when a plugin's writes were accepted */
    cpex_context_table *ctx;
    cpex_pipeline_result *res;
    bool closing;
} pipeline;

static void init_call(pipeline *pl, cpex_call_state *cs, cpex_plugin *p, uint32_t mode)
{
    memset(cs, 0, sizeof *cs);
    cs->call.struct_size = (uint32_t)sizeof cs->call;
    cs->call.mode = mode;
    cs->call.hook.ptr = pl->hook->name;
    cs->call.hook.len = pl->hook->name_len;
    cs->call.plugin_name.ptr = p->name;
    cs->call.plugin_name.len = strlen(p->name);
    cs->call.payload = pl->payload.data || pl->payload.kind ? &pl->payload : NULL;
    cs->call.host_private = cs;
    cs->magic = CPEX_CALL_MAGIC;
    cs->manager = pl->manager;
    cs->plugin = p;
    cs->mode = mode;
    cs->can_modify = mode == CPEX_MODE_SEQUENTIAL || mode == CPEX_MODE_TRANSFORM;
    cs->closed = pl->closing;
    cs->payload_kind = pl->payload.kind;
    cs->payload_type = pl->ops.type_name;
    cs->payload_free = pl->ops.free;
    cs->payload_user = pl->ops.user;
    cs->ext = pl->ext;
    cs->records = &pl->res->errors;
    cs->record_count = &pl->res->error_count;
    cs->table = &pl->ctx;
    cs->snapshot_ctx = !cs->can_modify;
    if (cs->snapshot_ctx) {
        cs->base_local = cpex_ctx_local_state(pl->ctx, p, false);
        cs->base_global = cpex_ctx_global_state(pl->ctx, false);
    }
}

/* Accept a serial call's modifications into the pipeline. */
static void adopt_changes(pipeline *pl, cpex_call_state *cs)
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

static void halt(pipeline *pl, cpex_violation *v)
{
    pl->res->continue_processing = false;
    if (!v) /* out of memory building it: still deny, with a fixed text */
        v = cpex_violation_new("internal_error", "out of memory", NULL, NULL, NULL);
    pl->res->violation = v;
}

/* Sequential or transform. Returns false when the pipeline halted. */
static bool run_serial(pipeline *pl, uint32_t mode)
{
    const cpex_hook *h = pl->hook;
    for (size_t i = h->phase_start[mode]; i < h->phase_start[mode + 1]; i++) {
        cpex_plugin *p = h->entries[i].plugin;
        if (atomic_load_explicit(&p->disabled, memory_order_relaxed))
            continue;
        cpex_call_state cs;
        init_call(pl, &cs, p, mode);
        outcome o = call_handler(&cs, h->entries[i].fn, cpex_now_ns());
        bool halted = false;
        switch (o.kind) {
        case OUT_ALLOW:
            adopt_changes(pl, &cs);
            break;
        case OUT_DENY:
            if (mode == CPEX_MODE_SEQUENTIAL) {
                halt(pl, take_violation(&cs, "plugin_deny"));
                halted = true;
            } else {
                cpex_call_record(&cs, "dropped_deny",
                                 "plugin denied in transform mode, which cannot block; the deny "
                                 "was ignored (reason: %s)",
                                 cs.violation ? cs.violation->reason : "none given");
                adopt_changes(pl, &cs);
            }
            break;
        case OUT_ERROR:
        case OUT_TIMEOUT:
            if (p->on_error == CPEX_ON_ERROR_FAIL && mode == CPEX_MODE_SEQUENTIAL) {
                halt(pl, failure_violation(p, &o));
                halted = true;
            } else {
                record_failure(&cs, &o);
                if (p->on_error == CPEX_ON_ERROR_DISABLE)
                    disable_for(p, &o);
            }
            break;
        }
        merge_metadata(&pl->res->metadata, o.kind == OUT_TIMEOUT ? NULL : cs.metadata);
        cpex_call_state_cleanup(&cs);
        if (halted)
            return false;
    }
    return true;
}

static void run_audit(pipeline *pl)
{
    const cpex_hook *h = pl->hook;
    for (size_t i = h->phase_start[CPEX_MODE_AUDIT]; i < h->phase_start[CPEX_MODE_AUDIT + 1];
         i++) {
        cpex_plugin *p = h->entries[i].plugin;
        if (atomic_load_explicit(&p->disabled, memory_order_relaxed))
            continue;
        cpex_call_state cs;
        init_call(pl, &cs, p, CPEX_MODE_AUDIT);
        outcome o = call_handler(&cs, h->entries[i].fn, cpex_now_ns());
        if (o.kind == OUT_DENY) {
            cpex_call_record(&cs, "dropped_deny",
                             "plugin denied in audit mode, which cannot block; the deny was "
                             "ignored (reason: %s)",
                             cs.violation ? cs.violation->reason : "none given");
        } else if (o.kind == OUT_ERROR || o.kind == OUT_TIMEOUT) {
            record_failure(&cs, &o); /* audit always records, whatever on_error */
            if (p->on_error == CPEX_ON_ERROR_DISABLE)
                disable_for(p, &o);
        }
        if (o.kind != OUT_TIMEOUT)
            merge_metadata(&pl->res->metadata, cs.metadata);
        cpex_call_state_cleanup(&cs);
    }
}

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
    payload_ops ops;
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
    cpex_free(in->hook);
    cpex_free(in);
}

static shared_input *shared_input_new(pipeline *pl)
{
    shared_input *in = cpex_calloc(1, sizeof *in);
    if (!in)
        return NULL;
    atomic_init(&in->refs, 1);
    in->manager = pl->manager;
    in->hook = cpex_strndup(pl->hook->name, pl->hook->name_len);
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

/* Set up a call state for a call on another thread. */
static void init_task_call(cpex_call_state *cs, shared_input *in, cpex_plugin *p, uint32_t mode,
                           json_t *local, json_t *global, cpex_error_record **records,
                           size_t *record_count)
{
    memset(cs, 0, sizeof *cs);
    cs->call.struct_size = (uint32_t)sizeof cs->call;
    cs->call.mode = mode;
    cs->call.hook.ptr = in->hook;
    cs->call.hook.len = in->hook_len;
    cs->call.plugin_name.ptr = p->name;
    cs->call.plugin_name.len = strlen(p->name);
    cs->call.payload = in->payload.data || in->payload.kind ? &in->payload : NULL;
    cs->call.host_private = cs;
    cs->magic = CPEX_CALL_MAGIC;
    cs->manager = in->manager;
    cs->plugin = p;
    cs->mode = mode;
    cs->can_modify = false;
    cs->closed = in->closing;
    cs->payload_kind = in->payload.kind;
    cs->payload_type = in->ops.type_name;
    cs->payload_free = in->ops.free;
    cs->payload_user = in->ops.user;
    cs->ext = in->ext;
    cs->records = records;
    cs->record_count = record_count;
    cs->snapshot_ctx = true;
    cs->base_local = local;
    cs->base_global = global;
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
    for (size_t i = 0; i < count; i++) {
        /* details move over: never share a jansson value across threads */
        cpex_records_add(&m->bg_errors, &m->bg_error_count, records[i].plugin_name,
                         records[i].code, records[i].message, records[i].details);
        records[i].details = NULL;
    }
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
    cpex_free(g);
}

typedef struct conc_task {
    cpex_job job;
    _Atomic long refs;
    conc_group *group;
    shared_input *in;
    cpex_plugin *plugin;
    cpex_handler_fn fn;
    json_t *local, *global;
    int64_t start;
    /* written by the worker before `done`, under the group lock */
    bool done;
    outcome out;
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
    json_decref(t->local);
    json_decref(t->global);
    shared_input_unref(t->in);
    cpex_plugin_unref(t->plugin);
    group_unref(t->group);
    cpex_free(t);
}

static void conc_task_run(void *arg)
{
    conc_task *t = arg;
    cpex_call_state cs;
    init_task_call(&cs, t->in, t->plugin, CPEX_MODE_CONCURRENT, t->local, t->global, &t->records,
                   &t->record_count);
    /* The deadline runs from submission: time spent queued counts. */
    outcome o = call_handler(&cs, t->fn, t->start);
    pthread_mutex_lock(&t->group->lock);
    t->out = o;
    t->violation = cs.violation;
    cs.violation = NULL;
    t->metadata = cs.metadata;
    cs.metadata = NULL;
    t->done = true;
    t->group->remaining--;
    if (o.kind == OUT_DENY)
        t->group->deny_seen = true;
    pthread_cond_broadcast(&t->group->cond);
    pthread_mutex_unlock(&t->group->lock);
    cpex_call_state_cleanup(&cs);
    cpex_manager *m = t->in->manager;
    conc_task_unref(t);
    bg_done(m, NULL, 0);
}

static json_t *copy_or_null(json_t *v) { return v ? json_deep_copy(v) : NULL; }

/* Concurrent phase. Returns false when the pipeline halted. */
static bool run_concurrent(pipeline *pl)
{
    const cpex_hook *h = pl->hook;
    size_t first = h->phase_start[CPEX_MODE_CONCURRENT];
    size_t last = h->phase_start[CPEX_MODE_CONCURRENT + 1];
    size_t n = 0;
    for (size_t i = first; i < last; i++)
        if (!atomic_load_explicit(&h->entries[i].plugin->disabled, memory_order_relaxed))
            n++;
    if (n == 0)
        return true;

    conc_task **tasks = cpex_calloc(n, sizeof *tasks);
    conc_group *g = cpex_calloc(1, sizeof *g);
    shared_input *in = shared_input_new(pl);
    if (!tasks || !g || !in) {
        cpex_free(tasks);
        cpex_free(g);
        shared_input_unref(in);
        halt(pl, cpex_violation_new("internal_error",
                                    "out of memory starting the concurrent phase", NULL, NULL,
                                    NULL));
        return false;
    }
    atomic_init(&g->refs, 1);
    pthread_mutex_init(&g->lock, NULL);
    pthread_cond_init(&g->cond, NULL);

    int64_t now = cpex_now_ns();
    size_t made = 0;
    for (size_t i = first; i < last && made < n; i++) {
        cpex_plugin *p = h->entries[i].plugin;
        if (atomic_load_explicit(&p->disabled, memory_order_relaxed))
            continue;
        conc_task *t = cpex_calloc(1, sizeof *t);
        if (!t)
            break;
        atomic_init(&t->refs, 2); /* the invoker's and the worker's */
        atomic_fetch_add(&g->refs, 1);
        atomic_fetch_add(&in->refs, 1);
        t->group = g;
        t->in = in;
        t->plugin = cpex_plugin_ref(p);
        t->fn = h->entries[i].fn;
        t->local = copy_or_null(cpex_ctx_local_state(pl->ctx, p, false));
        t->global = copy_or_null(cpex_ctx_global_state(pl->ctx, false));
        t->start = now;
        t->job.run = conc_task_run;
        t->job.arg = t;
        tasks[made++] = t;
    }
    pthread_mutex_lock(&g->lock);
    g->remaining = made;
    pthread_mutex_unlock(&g->lock);
    for (size_t k = 0; k < made; k++) {
        bg_begin(pl->manager);
        if (cpex_workers_submit(pl->manager->workers, &tasks[k]->job) != 0) {
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
                if (tasks[k]->out.kind == OUT_DENY) {
                    aborted = true;
                    break;
                }
            if (aborted)
                break;
        }
        int64_t latest = 0;
        for (size_t k = 0; k < made; k++)
            if (!tasks[k]->done && tasks[k]->start + tasks[k]->plugin->timeout_ns > latest)
                latest = tasks[k]->start + tasks[k]->plugin->timeout_ns;
        int64_t wait_ns = latest - cpex_now_ns();
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
        cpex_plugin *p = t->plugin;
        cpex_call_state rec; /* only to record under the plugin's name */
        memset(&rec, 0, sizeof rec);
        rec.manager = pl->manager;
        rec.plugin = p;
        rec.records = &pl->res->errors;
        rec.record_count = &pl->res->error_count;
        if (t->done) {
            /* Take the worker's outputs over instead of sharing references:
             * jansson's reference counts are not safe across threads, and the
             * worker may drop the task on its own thread. */
            for (size_t r = 0; r < t->record_count; r++)
                cpex_records_add(&pl->res->errors, &pl->res->error_count,
                                 t->records[r].plugin_name, t->records[r].code,
                                 t->records[r].message, t->records[r].details);
            for (size_t r = 0; r < t->record_count; r++)
                t->records[r].details = NULL;
            json_t *md = t->metadata;
            t->metadata = NULL;
            if (t->out.kind != OUT_TIMEOUT)
                merge_metadata(&pl->res->metadata, md);
            json_decref(md);
        }
        outcome o = t->out;
        if (!t->done) {
            if (aborted)
                continue; /* cut short by a deny: records nothing */
            o.kind = OUT_TIMEOUT;
        }
        switch (o.kind) {
        case OUT_ALLOW:
            break;
        case OUT_DENY:
            if (!winner) {
                cpex_call_state tmp = rec;
                tmp.violation = t->violation;
                t->violation = NULL;
                winner = take_violation(&tmp, "concurrent_deny");
            }
            break;
        case OUT_ERROR:
        case OUT_TIMEOUT:
            if (p->on_error == CPEX_ON_ERROR_FAIL) {
                if (!winner)
                    winner = failure_violation(p, &o);
            } else {
                record_failure(&rec, &o);
                if (p->on_error == CPEX_ON_ERROR_DISABLE)
                    disable_for(p, &o);
            }
            break;
        }
    }
    pthread_mutex_unlock(&g->lock);
    for (size_t k = 0; k < made; k++)
        conc_task_unref(tasks[k]);
    cpex_free(tasks);
    group_unref(g);
    shared_input_unref(in);
    if (winner) {
        halt(pl, winner);
        return false;
    }
    return true;
}

typedef struct faf_task {
    cpex_job job;
    shared_input *in;
    cpex_plugin *plugin;
    cpex_handler_fn fn;
    json_t *local, *global;
    int64_t start;
} faf_task;

static void faf_task_run(void *arg)
{
    faf_task *t = arg;
    cpex_manager *m = t->in->manager;
    cpex_error_record *records = NULL;
    size_t count = 0;
    cpex_call_state cs;
    init_task_call(&cs, t->in, t->plugin, CPEX_MODE_FIRE_AND_FORGET, t->local, t->global,
                   &records, &count);
    outcome o = call_handler(&cs, t->fn, t->start);
    if (o.kind == OUT_DENY) {
        cpex_call_record(&cs, "dropped_deny",
                         "plugin denied in fire_and_forget mode, which cannot block; the deny "
                         "was ignored (reason: %s)",
                         cs.violation ? cs.violation->reason : "none given");
    } else if (o.kind == OUT_ERROR || o.kind == OUT_TIMEOUT) {
        record_failure(&cs, &o);
        if (t->plugin->on_error == CPEX_ON_ERROR_DISABLE)
            disable_for(t->plugin, &o);
    }
    for (size_t i = 0; i < count; i++)
        cpex_log(m, CPEX_LOG_WARN, t->plugin->name, "background: [%s] %s", records[i].code,
                 records[i].message);
    cpex_call_state_cleanup(&cs);
    json_decref(t->local);
    json_decref(t->global);
    shared_input_unref(t->in);
    cpex_plugin_unref(t->plugin);
    cpex_free(t);
    bg_done(m, records, count);
    cpex_error_records_free(records, count);
}

static void run_fire_and_forget(pipeline *pl)
{
    const cpex_hook *h = pl->hook;
    size_t first = h->phase_start[CPEX_MODE_FIRE_AND_FORGET];
    size_t last = h->phase_start[CPEX_MODE_FIRE_AND_FORGET + 1];
    shared_input *in = NULL;
    for (size_t i = first; i < last; i++) {
        cpex_plugin *p = h->entries[i].plugin;
        if (atomic_load_explicit(&p->disabled, memory_order_relaxed))
            continue;
        if (!in) {
            in = shared_input_new(pl);
            if (!in) {
                cpex_records_add(&pl->res->errors, &pl->res->error_count, p->name, "internal",
                                 "out of memory: fire-and-forget handlers not started", NULL);
                return;
            }
        }
        faf_task *t = cpex_calloc(1, sizeof *t);
        if (!t) {
            cpex_records_add(&pl->res->errors, &pl->res->error_count, p->name, "internal",
                             "out of memory: fire-and-forget handler not started", NULL);
            continue;
        }
        atomic_fetch_add(&in->refs, 1);
        t->in = in;
        t->plugin = cpex_plugin_ref(p);
        t->fn = h->entries[i].fn;
        t->local = copy_or_null(cpex_ctx_local_state(pl->ctx, p, false));
        t->global = copy_or_null(cpex_ctx_global_state(pl->ctx, false));
        t->start = cpex_now_ns();
        t->job.run = faf_task_run;
        t->job.arg = t;
        bg_begin(pl->manager);
        if (cpex_workers_submit(pl->manager->workers, &t->job) != 0)
            faf_task_run(t);
    }
    shared_input_unref(in);
}

/* ------------------------------------------------------------------ */
/* Entry                                                               */
/* ------------------------------------------------------------------ */

void cpex_execute(cpex_manager *m, const cpex_snapshot *snap, const cpex_hook *hook,
                  const cpex_payload *payload, const cpex_extensions *ext,
                  cpex_context_table *ctx, bool closing, cpex_pipeline_result *res)
{
    pipeline pl;
    memset(&pl, 0, sizeof pl);
    pl.manager = m;
    pl.snap = snap;
    pl.hook = hook;
    if (payload)
        pl.payload = *payload;
    pl.ops = ops_for(snap, payload);
    pl.ext = ext;
    pl.ctx = ctx;
    pl.res = res;
    pl.closing = closing;

    if (run_serial(&pl, CPEX_MODE_SEQUENTIAL)) {
        run_serial(&pl, CPEX_MODE_TRANSFORM);
        run_audit(&pl);
        if (run_concurrent(&pl))
            run_fire_and_forget(&pl);
    }

    res->context = pl.ctx;
    if (pl.owned_payload) {
        res->modified_payload = cpex_result_payload_new(pl.ops.kind, pl.ops.type_name,
                                                        pl.owned_payload, pl.ops.free, pl.ops.user);
        if (!res->modified_payload) {
            pl.ops.free(pl.owned_payload, pl.ops.user);
            res->payload_modified = false;
            cpex_records_add(&res->errors, &res->error_count, "", "internal",
                             "out of memory: the modified payload was lost", NULL);
        }
    }
    if (pl.owned_ext)
        res->extensions = pl.owned_ext;
}
