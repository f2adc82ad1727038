/*
 * invoke.c — the entry of every invoke: one snapshot, one hash lookup,
 * the payload type check, then the executor.
 *
 * With routing (routing.h) the snapshot carries a route state, and the
 * hook's entries are narrowed before the executor runs: to the cached plan
 * of the invoke's entity when routing is enabled, or to the plugins whose
 * conditions match when it is not. An invoke without a route state (no
 * routing, no conditions) pays one NULL test for all this.
 */
#include <stdio.h>
#include <string.h>

#include "core/core.h"
#include "core/manager_internal.h"
#include "util/hash.h"
#include "core/route_lookup.h"
#include "core/routing.h"
#include "core/observe.h"
#include "util/alloc.h"

/* ------------------------------------------------------------------ */
/* Invoke                                                              */
/* ------------------------------------------------------------------ */

static void deny_invoke(cpex_pipeline_result *res, cpex_code code, const char *reason)
{
    res->continue_processing = false;
    res->violation = cpex__pipeline_violation(code, reason, NULL, NULL);
}

/* Type names are short ("cmf", "json"): compared inline, and by pointer
 * first (the library's own constants meet themselves). */
static inline bool str_eq(cpex_str a, const char *b, size_t n)
{
    return a.len == n && (a.ptr == b || (a.ptr && cpex__bytes_eq(a.ptr, b, n)));
}

/* Whether a payload type name is the built-in name of `kind` (cmf or json). */
static inline bool builtin_name_is(cpex_str t, uint32_t kind)
{
    if (kind == CPEX_PAYLOAD_CMF)
        return t.len == 3 && t.ptr && cpex__bytes_eq(t.ptr, "cmf", 3);
    return t.len == 4 && t.ptr && cpex__bytes_eq(t.ptr, "json", 4);
}

/*
 * Whether `payload` fits hook `h`: NULL when it does, else why not (in
 * `buf`). For a custom payload *custom is set to its registered type, so
 * the executor does not look it up again.
 */
static __attribute__((noinline)) const char *
payload_problem_slow(const cpex__snapshot *s, const cpex__hook *h, const char *hook,
                     const cpex_payload *payload, const cpex__type_slot **custom, char *buf,
                     size_t cap)
{
    if (h->payload_type &&
        (!payload || !str_eq(payload->type_name, h->payload_type, h->payload_type_len))) {
        snprintf(buf, cap,
                 "hook '%.100s' carries payload type '%.60s' but the invoke passed '%.*s'", hook,
                 h->payload_type,
                 payload && payload->type_name.ptr ? (int)payload->type_name.len : 4,
                 payload && payload->type_name.ptr ? payload->type_name.ptr : "none");
        return buf;
    }
    if (!payload)
        return NULL;
    switch (payload->kind) {
    case CPEX_PAYLOAD_CMF:
        if (str_eq(payload->type_name, "cmf", 3))
            return NULL;
        break;
    case CPEX_PAYLOAD_JSON:
        if (str_eq(payload->type_name, "json", 4))
            return NULL;
        break;
    case CPEX_PAYLOAD_CUSTOM:
        *custom = payload->type_name.ptr
                      ? cpex__snapshot_type(s, payload->type_name.ptr, payload->type_name.len)
                      : NULL;
        if (*custom)
            return NULL;
        return "the invoke passed a custom payload whose type is not registered with this "
               "manager";
    }
    return "the payload's kind and type name disagree; build it with cpex_payload_cmf, "
           "cpex_payload_json or cpex_payload_custom";
}

/* payload_problem_slow with the common case inline: a cmf or json hook and
 * the payload the library's own constructor built for it (names of
 * constant length: a few instructions). */
static inline __attribute__((always_inline)) const char *
payload_problem(const cpex__snapshot *s, const cpex__hook *h, const char *hook,
                const cpex_payload *payload, const cpex__type_slot **custom, char *buf, size_t cap)
{
    *custom = NULL;
    if (h->payload_builtin && payload && payload->kind == h->payload_builtin &&
        builtin_name_is(payload->type_name, h->payload_builtin))
        return NULL;
    return payload_problem_slow(s, h, hook, payload, custom, buf, cap);
}

/* The unknown_hook deny (rare: out of the inline path with its buffer). */
static __attribute__((noinline, cold)) cpex_status deny_unknown_hook(cpex_pipeline_result *res,
                                                                     const char *hook)
{
    char reason[400];
    snprintf(reason, sizeof reason,
             "no plugin is configured to run for hook '%.200s', and this manager denies "
             "such invokes (unknown_hook: deny); check the hook's spelling",
             hook);
    deny_invoke(res, CPEX_CODE_UNKNOWN_HOOK, reason);
    return CPEX_OK; /* a deny, not a failure of the call */
}

/*
 * No plugin runs for this invoke: say so where the caller's result has
 * room for it (result.h), and deny when the manager asks for that and the
 * hook has no plugin configured to run (`configured` false). The common
 * case is the store alone: no allocation, no lookup.
 */
static inline void no_plugin_ran(const cpex_manager *m, cpex_pipeline_result *res, bool configured,
                                 const char *hook)
{
    if (res->struct_size >= CPEX_PIPELINE_RESULT_SIZE_V2)
        res->no_plugin_ran = true;
    if (!configured && atomic_load_explicit(&m->deny_unknown_hooks, memory_order_relaxed))
        (void)deny_unknown_hook(res, hook);
}

/* Whether every plugin of `h` was disabled at run time (on_error: disable).
 * Reads the first entry only in the common case. */
static inline bool all_disabled(const cpex__hook *h)
{
    for (size_t i = 0; i < h->count; i++)
        if (!atomic_load_explicit(&h->entries[i].plugin->disabled, memory_order_relaxed))
            return false;
    return true;
}

/* A result too small to fill: nothing is written into it (manager.h). */
static cpex_status refuse_result(cpex_manager *m, const cpex_pipeline_result *res,
                                 cpex_context_table *context)
{
    cpex_context_table_free(context); /* taken, as on every path */
    if (res)
        cpex__log(m ? cpex__sink_of(m) : NULL, CPEX_LOG_ERROR, NULL,
                  "cpex_manager_invoke: the result's struct_size is %u, less than the %zu bytes "
                  "of its first layout: initialize it with CPEX_PIPELINE_RESULT_INIT or "
                  "cpex_pipeline_result_init; nothing was run",
                  res->struct_size, (size_t)CPEX_PIPELINE_RESULT_SIZE_V1);
    return CPEX_E_INVALID;
}

/* Run hook `h` (or a plan of the same shape): the payload check, then the
 * executor. Leaves the read section. */
static inline __attribute__((always_inline)) cpex_status
run_hook(cpex_manager *m, cpex__rcu_ticket t, const cpex__snapshot *s, const cpex__hook *h,
         const cpex_payload *payload, const cpex_extensions *extensions,
         cpex_context_table *context, cpex_pipeline_result *res)
{
    const cpex__type_slot *custom;
    char reason[300];
    const char *problem = payload_problem(s, h, h->name, payload, &custom, reason, sizeof reason);
    if (problem) {
        deny_invoke(res, CPEX_CODE_PAYLOAD_TYPE_MISMATCH, problem);
        if (h->sink_count) /* a deny the sinks see too, with no records: nothing ran */
            cpex__observe_unrun(m, s, h, h->name, h->name_len, NULL, NULL, extensions, res);
    } else
        cpex__execute(m, s, h, payload, custom, extensions, context, res);
    cpex__rcu_exit(t);
    return CPEX_OK;
}

/* Routing chose no plugin for this invoke: allowed, untouched, and said
 * so (no_plugin_ran; not the unknown_hook deny: the hook is configured);
 * the audit sinks of the hook still see the verdict. Leaves the read section. */
static void routed_to_none(cpex_manager *m, cpex__rcu_ticket t, const cpex__snapshot *s,
                           const cpex__hook *plan, const cpex_payload *payload,
                           const cpex_extensions *extensions, cpex_pipeline_result *res)
{
    no_plugin_ran(m, res, true, plan->name);
    if (__builtin_expect(s->any_sinks, 0))
        cpex__observe_unrun(m, s, plan, plan->name, plan->name_len, payload, NULL, extensions, res);
    cpex__rcu_exit(t);
}

/* Run the plan routing chose for an invoke of `h`: NULL is out of memory
 * (denied, fail closed), an empty plan is allowed untouched. Then frees a
 * plan nothing points into any more. Leaves the read section. */
static cpex_status run_plan(cpex_manager *m, cpex__rcu_ticket t, const cpex__snapshot *s,
                            const cpex__hook *plan, void *owned, const cpex_payload *payload,
                            const cpex_extensions *extensions, cpex_context_table *context,
                            cpex_pipeline_result *res)
{
    cpex_status st = CPEX_OK;
    if (!plan) {
        deny_invoke(res, CPEX_CODE_INTERNAL_ERROR,
                    "out of memory choosing the plugins of this invoke (routing); denied");
        cpex__rcu_exit(t);
    } else if (plan->count == 0) {
        routed_to_none(m, t, s, plan, payload, extensions, res);
    } else {
        st = run_hook(m, t, s, plan, payload, extensions, context, res);
    }
    if (owned)
        cpex__route_plan_free(owned);
    return st;
}

/* The plan's entries stay where a conditions filter puts them when few. */
#define PLAN_STACK_ENTRIES 16

/* Routing off, some plugins with conditions: those whose conditions match. */
static __attribute__((noinline)) cpex_status
run_conditioned(cpex_manager *m, cpex__rcu_ticket t, const cpex__snapshot *s, const cpex__hook *h,
                const cpex_payload *payload, const cpex_extensions *extensions,
                cpex_context_table *context, cpex_pipeline_result *res)
{
    void *owned = NULL;
    cpex__hook plan;
    cpex__hook_entry stack[PLAN_STACK_ENTRIES];
    uint32_t ids[PLAN_STACK_ENTRIES];
    const cpex__hook *run = cpex__conditions_plan(s->routing, s, h, extensions, &plan, stack, ids,
                                                  PLAN_STACK_ENTRIES, &owned);
    /* run_plan frees `owned` as a route entry would be: this one is a plain block. */
    cpex_status st = run_plan(m, t, s, run, NULL, payload, extensions, context, res);
    if (run == &plan)
        cpex__plan_release(&plan);
    cpex__free(owned);
    return st;
}

/* Routing on, a plan to free after the invoke (not cached) or none (out
 * of memory): run_plan, out of line. */
static __attribute__((noinline)) cpex_status
run_owned(cpex_manager *m, cpex__rcu_ticket t, const cpex__snapshot *s, const cpex__hook *plan,
          void *owned, const cpex_payload *payload, const cpex_extensions *extensions,
          cpex_context_table *context, cpex_pipeline_result *res)
{
    return run_plan(m, t, s, plan, owned, payload, extensions, context, res);
}

/* The part every invoke shares once its hook is found. Leaves the read
 * section. Without routing this costs one test; with routing, a cached
 * plan costs a few loads and one probe (route_lookup.h). Always inline:
 * as a call of its own it would cost the unrouted invoke more than the
 * router costs the routed one. */
static inline __attribute__((always_inline)) cpex_status
run_found(cpex_manager *m, cpex__rcu_ticket t, const cpex__snapshot *s, const cpex__hook *h,
          const cpex_payload *payload, const cpex_extensions *extensions,
          cpex_context_table *context, cpex_pipeline_result *res)
{
    cpex__route_state *rs = s->routing;
    if (__builtin_expect(rs != NULL, 0)) {
        if (!rs->enabled)
            return run_conditioned(m, t, s, h, payload, extensions, context, res);
        /* The steady state, a cached plan, inline; the rest is a call. */
        const cpex__hook *plan = cpex__route_cached(rs, h, extensions);
        if (!plan) {
            void *owned = NULL;
            plan = cpex__route_lookup(rs, h, extensions, &owned);
            if (__builtin_expect(!plan || owned, 0))
                return run_owned(m, t, s, plan, owned, payload, extensions, context, res);
        }
        if (plan->count == 0) {
            routed_to_none(m, t, s, plan, payload, extensions, res);
            return CPEX_OK;
        }
        h = plan;
    }
    return run_hook(m, t, s, h, payload, extensions, context, res);
}

/* The generation the invoke runs on (0: none), where the caller's result has room. */
static inline void set_generation(cpex_pipeline_result *res, const cpex__snapshot *s)
{
    if (res->struct_size >= CPEX_PIPELINE_RESULT_SIZE_GENERATION)
        res->generation = s ? s->generation : 0;
}

/*
 * The hook of a name, through a small per-thread cache: a host invokes the
 * same few names again and again, usually from the same string, and a
 * cached lookup is one compare of the name's bytes where a lookup hashes
 * them and probes the table (~60 instructions). An entry is keyed by the
 * snapshot's uid (unique in the process, so an entry of a freed snapshot
 * can never match) and holds the name's bytes (the hook's own name, or a
 * copy for a name no hook has), so a reused buffer with other contents
 * never hits. The slot is chosen by the caller's pointer. Aliases are
 * resolved before an entry is stored. initial-exec TLS, as in rcu.c: a
 * few bytes, no __tls_get_addr call.
 */
#define NAME_CACHE_SLOTS 2
#define NAME_CACHE_COPY_BYTES 24

typedef struct name_cache_entry {
    uint64_t uid;           /* 0: empty */
    const cpex__hook *hook; /* NULL: no hook of this name in that snapshot */
    const char *name;       /* hook->name, or `copy` (a miss, an alias, nothing to run) */
    size_t len;
    /* `uid` when nothing runs for this name in that snapshot and no audit
       sink observes any hook, else 0: while the snapshot is live, an invoke
       answers from the entry without a read section (the name is then in
       `copy`, so the compare reads no snapshot memory). */
    uint64_t empty_uid;
    uint64_t generation;                  /* that snapshot's */
    char copy[NAME_CACHE_COPY_BYTES + 1]; /* NUL-terminated */
} name_cache_entry;

static _Thread_local name_cache_entry name_cache[NAME_CACHE_SLOTS]
    __attribute__((tls_model("initial-exec")));

static __attribute__((noinline)) const cpex__hook *
find_uncached(const cpex__snapshot *s, const char *hook, size_t len, name_cache_entry *e)
{
    const cpex__hook *h = cpex__snapshot_find(s, hook, len);
    bool alias = false;
    /* One of two spellings of a hook (hook_names.h)? Only misses whose name
       could be one ("cmf.prompt_...") pay for the call. */
    if (!h && len > 11 && hook[4] == 'p') {
        const char *canonical = cpex__hook_alias_of(hook, len);
        if (canonical)
            alias = (h = cpex__snapshot_find(s, canonical, strlen(canonical))) != NULL;
    }
    bool empty = (!h || h->count == 0) && !s->any_sinks;
    if (h && !alias && !empty) {
        e->name = h->name;
    } else if (len <= NAME_CACHE_COPY_BYTES) {
        memcpy(e->copy, hook, len);
        e->copy[len] = '\0'; /* invoke_cached_empty compares with strcmp */
        e->name = e->copy;
    } else {
        return h; /* not kept (the entry keeps its name): a long miss or alias */
    }
    e->uid = s->uid;
    e->hook = h;
    e->len = len;
    e->empty_uid = empty ? s->uid : 0;
    e->generation = s->generation;
    return h;
}

static inline const cpex__hook *find_hook(const cpex__snapshot *s, const char *hook, size_t len)
{
    name_cache_entry *e = &name_cache[((uintptr_t)hook >> 4) % NAME_CACHE_SLOTS];
    if (e->uid == s->uid && e->len == len && cpex__bytes_eq(e->name, hook, len))
        return e->hook;
    return find_uncached(s, hook, len, e);
}

/* An invoke refused for its arguments (out of the entry points' inline
 * paths): the result filled when it may be, `why` its violation. */
static __attribute__((noinline)) cpex_status refuse_invoke(cpex_manager *m,
                                                           cpex_context_table *context,
                                                           cpex_pipeline_result *res,
                                                           const char *why)
{
    if (!cpex__result_fillable(res))
        return refuse_result(m, res, context);
    cpex__result_reset(res);
    res->context = context;
    set_generation(res, NULL);
    deny_invoke(res, CPEX_CODE_INVALID_ARGUMENT, why);
    return CPEX_E_INVALID;
}

/* Nothing to run, known without a read section (the fast answers of both
 * entry points): allowed, or the unknown_hook deny, in `generation`. */
static inline cpex_status answer_empty(const cpex_manager *m, cpex_pipeline_result *res,
                                       uint64_t generation, const char *hook)
{
    if (res->struct_size >= CPEX_PIPELINE_RESULT_SIZE_GENERATION)
        res->generation = generation;
    if (res->struct_size >= CPEX_PIPELINE_RESULT_SIZE_V2)
        res->no_plugin_ran = true;
    if (__builtin_expect(atomic_load_explicit(&m->deny_unknown_hooks, memory_order_relaxed), 0))
        return deny_unknown_hook(res, hook);
    return CPEX_OK;
}

/* cpex_manager_invoke past its checks, the result reset: the read
 * section, the hook, the run. */
static __attribute__((noinline)) cpex_status invoke_by_name(cpex_manager *m, const char *hook,
                                                            const cpex_payload *payload,
                                                            const cpex_extensions *extensions,
                                                            cpex_context_table *context,
                                                            cpex_pipeline_result *res)
{
    size_t len = strlen(hook);
    cpex__mgr_sync(m); /* registrations not yet published (publish.c) */
    cpex__rcu_ticket t = cpex__rcu_enter(&m->rcu);
    const cpex__snapshot *s = atomic_load_explicit(&m->snapshot, memory_order_seq_cst);
    set_generation(res, s);
    const cpex__hook *h = find_hook(s, hook, len);
    if (!h || h->count == 0 || all_disabled(h)) {
        /* Allow (or the unknown_hook deny), payload and extensions
           untouched. Plugins of `mode: disabled` are not in the index:
           their hooks count as unknown. Audit sinks that observe the hook
           still get the verdict (one test when there are none). */
        no_plugin_ran(m, res, h && h->count > 0, hook);
        if (__builtin_expect(s->any_sinks, 0))
            cpex__observe_unrun(m, s, h, hook, len, payload, NULL, extensions, res);
        cpex__rcu_exit(t);
        return CPEX_OK;
    }
    return run_found(m, t, s, h, payload, extensions, context, res);
}

/* What invoke_cached_empty needs only when the name turns out not to be
 * the cached one: kept here so that it saves two registers fewer around
 * its strlen. */
static _Thread_local struct {
    const cpex_payload *payload;
    const cpex_extensions *extensions;
} cached_empty_args __attribute__((tls_model("initial-exec")));

/* A name this thread found empty in the snapshot that is still live
 * (name_cache_entry.empty_uid): answered without a read section. */
static __attribute__((noinline)) cpex_status invoke_cached_empty(cpex_manager *m, const char *hook,
                                                                 const name_cache_entry *e,
                                                                 cpex_pipeline_result *res)
{
    /* One pass over the caller's string where strlen and a compare are two. */
    if (__builtin_expect(strcmp(e->name, hook) != 0, 0))
        return invoke_by_name(m, hook, cached_empty_args.payload, cached_empty_args.extensions,
                              res->context, res);
    return answer_empty(m, res, e->generation, hook);
}

/* As cpex_manager_invoke_hook: no frame of its own; the names this thread
 * last found with nothing to run go to invoke_cached_empty, the rest to
 * invoke_by_name. */
cpex_status cpex_manager_invoke(cpex_manager *m, const char *hook, const cpex_payload *payload,
                                const cpex_extensions *extensions, cpex_context_table *context,
                                cpex_pipeline_result *res)
{
    if (__builtin_expect(!cpex__result_fillable(res) || !m || !hook, 0))
        return refuse_invoke(m, context, res, "cpex_manager_invoke: manager and hook required");
    cpex__result_reset(res);
    res->context = context;
    const name_cache_entry *e = &name_cache[((uintptr_t)hook >> 4) % NAME_CACHE_SLOTS];
    /* `dirty` first: a reader that sees it clear sees the live uid of the
       publish that cleared it (publish.c), not an older one. */
    if (!atomic_load_explicit(&m->dirty, memory_order_acquire) &&
        e->empty_uid == atomic_load_explicit(&m->live_uid, memory_order_acquire)) {
        cached_empty_args.payload = payload;
        cached_empty_args.extensions = extensions;
        return invoke_cached_empty(m, hook, e, res);
    }
    return invoke_by_name(m, hook, payload, extensions, context, res);
}

const cpex_hook_handle *cpex_manager_hook(cpex_manager *m, const char *hook, cpex_error *err)
{
    if (!m || !hook) {
        cpex__error_add(err, CPEX_E_INVALID, NULL, "cpex_manager_hook: manager and hook required");
        return NULL;
    }
    cpex__mgr_lock(m);
    cpex__hook_name *e = cpex__hook_names_intern(&m->names, hook, strlen(hook));
    if (e) /* a name new since the last publish: empty in the live snapshot */
        cpex__mgr_mark_empty_hook(e, atomic_load(&m->snapshot));
    cpex__mgr_unlock(m);
    if (!e)
        cpex__error_add(err, CPEX_E_NOMEM, NULL, "out of memory resolving hook '%.200s'", hook);
    return (const cpex_hook_handle *)e;
}

const char *cpex_hook_handle_name(const cpex_hook_handle *hook)
{
    return hook ? ((const cpex__hook_name *)(const void *)hook)->name : NULL;
}

/* cpex_manager_invoke_hook past its checks, the result reset: the read
 * section, the hook, the run (as invoke_by_name). */
static __attribute__((noinline)) cpex_status
invoke_by_handle(cpex_manager *m, const cpex__hook_name *name, const cpex_payload *payload,
                 const cpex_extensions *extensions, cpex_context_table *context,
                 cpex_pipeline_result *res)
{
    cpex__mgr_sync(m);
    cpex__rcu_ticket t = cpex__rcu_enter(&m->rcu);
    const cpex__snapshot *s = atomic_load_explicit(&m->snapshot, memory_order_seq_cst);
    set_generation(res, s);
    /* A name interned after this snapshot was built has no handler in it. */
    const cpex__hook *h = name->id < s->id_count ? s->by_id[name->id] : NULL;
    if (!h || h->count == 0 || all_disabled(h)) { /* as invoke_by_name */
        no_plugin_ran(m, res, h && h->count > 0, name->name);
        if (__builtin_expect(s->any_sinks, 0))
            cpex__observe_unrun(m, s, h, name->name, name->len, payload, NULL, extensions, res);
        cpex__rcu_exit(t);
        return CPEX_OK;
    }
    return run_found(m, t, s, h, payload, extensions, context, res);
}

/* Kept free of calls but tail calls, so the common answers need no frame:
 * a hook with nothing to run in the live snapshot (publish.c) is answered
 * here, without a read section; everything else goes on in invoke_by_handle. */
cpex_status cpex_manager_invoke_hook(cpex_manager *m, const cpex_hook_handle *hook,
                                     const cpex_payload *payload, const cpex_extensions *extensions,
                                     cpex_context_table *context, cpex_pipeline_result *res)
{
    const cpex__hook_name *name = (const cpex__hook_name *)(const void *)hook;
    if (__builtin_expect(!cpex__result_fillable(res) || !m || !name || name->owner != m, 0))
        return refuse_invoke(m, context, res,
                             m && name
                                 ? "cpex_manager_invoke_hook: the hook handle is another manager's"
                                 : "cpex_manager_invoke_hook: manager and hook required");
    cpex__result_reset(res);
    res->context = context;
    if (__builtin_expect(!atomic_load_explicit(&m->dirty, memory_order_acquire), 1)) {
        uint64_t live = atomic_load_explicit(&m->live_generation, memory_order_acquire);
        if (atomic_load_explicit(&name->empty_in, memory_order_relaxed) == live)
            return answer_empty(m, res, live, name->name);
    }
    return invoke_by_handle(m, name, payload, extensions, context, res);
}
