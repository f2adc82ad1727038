/*
 * observe.h — execution records, metrics and audit sinks inside the core
 * (docs/observability.md). Not installed.
 *
 *   records.c     record blocks: one allocation per invoke, strings copied
 *   metrics.c     per-thread counter shards, the label table, snapshots
 *   prometheus.c  the text exposition
 *   audit.c       the verdict queue, its thread, delivery to sinks
 *   sinks.c       sinks registered from code, wiring snapshots (sink lists,
 *                 metric ids), verdicts of invokes that ran no pipeline
 *
 * The executor asks for each of them only when it is on: with records,
 * metrics and sinks off an invoke pays one load and one branch.
 */
#ifndef CPEX_CORE_OBSERVE_H
#define CPEX_CORE_OBSERVE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/call.h"
#include "core/core.h"
#include "cpex/observe.h"
#include "util/ticks.h"

/* ------------------------------------------------------------------ */
/* Settings                                                            */
/* ------------------------------------------------------------------ */

/** Bits of cpex_manager.obs_flags. */
enum { CPEX__OBS_RECORDS = 1u, CPEX__OBS_METRICS = 2u };

/** The most config key names a record carries, and the text bound. */
#define CPEX__REC_MAX_KEYS 64
#define CPEX__REC_MAX_TEXT 256

/* ------------------------------------------------------------------ */
/* Records (records.c)                                                 */
/* ------------------------------------------------------------------ */

/** What a plugin's records share: its name, kind and config key names,
 *  laid out once at registration, copied into each record block. */
typedef struct cpex__rec_static {
    char *blob; /* name \0 kind \0 key \0 key \0 ... */
    size_t blob_len;
    size_t name_len;
    size_t kind_off; /* 0 when the plugin has no kind */
    size_t kind_len;
    uint32_t key_count;
    uint32_t *key_off; /* key i: blob + key_off[i], key_len[i] bytes */
    uint32_t *key_len;
    size_t bytes; /* what one record of it takes in a block's text area */
} cpex__rec_static;

/** Build `rs` for plugin `p` (name, kind and config set). False on OOM. */
bool cpex__rec_static_init(cpex__rec_static *rs, const char *name, const char *kind,
                           const json_t *config);
void cpex__rec_static_free(cpex__rec_static *rs);

/** An overflow allocation for texts that did not fit a block. */
typedef struct cpex__rec_more {
    struct cpex__rec_more *next;
    char text[];
} cpex__rec_more;

/**
 * A block of records: one allocation holding the records and their
 * strings. The pipeline result points at `rec` (cpex__recs_of finds the
 * block again).
 */
/** A record a block holds for a handler that was not called (yet). */
#define CPEX__REC_UNUSED 0xFFFFFFFFu

/**
 * What every invoke of one hook starts its records from: one record per
 * handler of the hook, in entry order, each as a clean allow with status
 * CPEX__REC_UNUSED, and their strings (plugin names, kinds, config key
 * names, the hook name), laid out once per registry snapshot. Its
 * pointers hold offsets from `image`: a block copies the image with one
 * memcpy and rebases the pointers of the records it used when it is
 * finished.
 */
typedef struct cpex__rec_template {
    size_t count;
    size_t bytes;
    size_t hook_off; /* the hook name in the image */
    size_t hook_len;
    char image[];
} cpex__rec_template;

/** The template of hook `h` (its entries' plugins). NULL on OOM. */
cpex__rec_template *cpex__rec_template_new(const cpex__hook *h);
/**
 * The template of a published snapshot's hook, made on the first observed
 * invoke that needs one (most snapshots, with records and sinks off,
 * never do; a registration then costs no template) and kept with the
 * snapshot. Any thread; NULL on OOM.
 */
const cpex__rec_template *cpex__hook_template(const cpex__hook *h);

typedef struct cpex__recs {
    size_t count, cap;
    bool templated; /* rec[i] is entry i until finished */
    bool finished;
    bool lost;             /* memory ran out for a text: some record lacks it */
    char *text, *text_end; /* the free part of the text area */
    cpex__rec_more *more;
    cpex_str hook, trace_id, span_id; /* in the text area */
    uint64_t t0_ticks;                /* time base of start_unix_ns */
    int64_t t0_unix_ns;
    cpex_execution_record rec[];
} cpex__recs;

static inline cpex__recs *cpex__recs_of(const cpex_execution_record *first)
{
    return (cpex__recs *)(void *)((char *)(uintptr_t)first - offsetof(cpex__recs, rec));
}

/**
 * A block for up to `cap` records with `text_bytes` of strings for them
 * (cpex__rec_static.bytes each) plus room for the hook name, the trace and
 * span ids of `ext` and a few reasons. NULL on OOM.
 */
cpex__recs *cpex__recs_new(size_t cap, size_t text_bytes, const char *hook, size_t hook_len,
                           const cpex_extensions *ext);
void cpex__recs_free(cpex__recs *r);
/**
 * A block for one invoke of a hook, from its template: record i is entry
 * i's, unused until the executor writes its status; timings are tick
 * readings until cpex__recs_finish. NULL on OOM.
 */
cpex__recs *cpex__recs_from_template(const cpex__rec_template *t, const cpex_extensions *ext);
/** Keep the records the executor used, in entry order, with their
 *  pointers and times made final (idempotent). */
void cpex__recs_finish(cpex__recs *r);
/** Append a record of plugin `p` (static fields filled, outcome zero:
 *  completed, requested -1, matched -1); NULL when the block is full. */
cpex_execution_record *cpex__recs_add(cpex__recs *r, const cpex__plugin *p);
/** Copy `text` into the block (at most 256 bytes, cut at a UTF-8 boundary
 *  with an ellipsis); the record's `field` points at it. NULL text: unset. */
void cpex__recs_set_text(cpex__recs *r, cpex_str *field, const char *text);
/** Set a record's timing from tick readings. */
static inline void cpex__recs_time(const cpex__recs *r, cpex_execution_record *rec, uint64_t start,
                                   uint64_t end)
{
    rec->start_unix_ns = r->t0_unix_ns + cpex__ticks_ns(r->t0_ticks, start);
    rec->duration_ns = cpex__ticks_ns(start, end);
}
/**
 * A copy of the first `count` records of `r` in a new block with room for
 * `extra` more records of `extra_bytes` text, without trace and span ids
 * (what a verdict carries). NULL on OOM.
 */
cpex__recs *cpex__recs_clone_for_verdict(const cpex__recs *r, size_t count, size_t extra,
                                         size_t extra_bytes);
/** Reserve `n` bytes of the block's text area (for a worker thread to
 *  write a reason into later); NULL when there is no room. */
char *cpex__recs_reserve(cpex__recs *r, size_t n);
/** Write `text` into `buf` of CPEX__REC_MAX_TEXT + 1 bytes, cut as the
 *  record rule says; returns its length. */
size_t cpex__rec_text_cut(char *buf, const char *text);

/* ------------------------------------------------------------------ */
/* Metrics (metrics.c)                                                 */
/* ------------------------------------------------------------------ */

/* A call adds one to its outcome's counter, and when it ran, its time to
 * the sum and one to its bucket: three stores. Invocations are the sum of
 * the outcomes and the timed calls the sum of the buckets, added up when
 * read. A hook's slot counts its invokes as allows or denies. */
enum {
    CPEX__MC_ALLOWS,
    CPEX__MC_DENIES,
    CPEX__MC_ERRORS,
    CPEX__MC_TIMEOUTS,
    CPEX__MC_CANCELLED,
    CPEX__MC_NOT_STARTED,
    CPEX__MC_DISABLES,
    CPEX__MC_DUR_SUM,
    CPEX__MC_COUNT
};
/** The outcome counters (their sum is the invocations). */
#define CPEX__MC_OUTCOMES (CPEX__MC_NOT_STARTED + 1)

/** The counters of one label set (a plugin on a hook, a sink on a hook, a
 *  hook) in one thread's shard. Written by that thread only. */
typedef struct cpex__mslot {
    _Atomic uint64_t c[CPEX__MC_COUNT];
    _Atomic uint64_t b[CPEX_STATS_BUCKETS];
} cpex__mslot;

#define CPEX__MBLOCK_SLOTS 64u
#define CPEX__MBLOCKS 1024u /* 65536 label sets per manager */
#define CPEX__MAX_METRIC_IDS (CPEX__MBLOCK_SLOTS * CPEX__MBLOCKS)
#define CPEX__NO_METRIC UINT32_MAX

/** What a label set counts. */
enum { CPEX__ML_HANDLER = 0, CPEX__ML_SINK = 1, CPEX__ML_HOOK = 2 };

/** A label set as the table holds it. */
typedef struct cpex__mlabel {
    int kind;
    char *plugin;
    char *hook;
} cpex__mlabel;

/** A manager's metrics: the label table and every thread's shard. */
typedef struct cpex__metrics {
    uint64_t uid;         /* unique in the process: thread caches key on it */
    pthread_mutex_t lock; /* guards the label table */
    size_t count, cap;
    cpex__mlabel *labels; /* id -> label set */
    uint32_t *table;      /* open addressing: id + 1, 0 empty */
    size_t mask;
    struct cpex__mshard *shards;  /* every thread's shard (the process-wide lock) */
    struct cpex__mshard *retired; /* the counts of threads that exited (same lock) */
} cpex__metrics;

/** One thread's counters for one manager's metrics. */
typedef struct cpex__mshard {
    struct cpex__mshard *next;        /* in the metrics' list */
    struct cpex__mshard *thread_next; /* in its thread's list */
    struct cpex__mthread *thread;
    cpex__metrics *metrics;
    _Atomic(cpex__mslot *) blocks[CPEX__MBLOCKS];
} cpex__mshard;

/** A new, empty metrics object (owned by the hub). NULL on OOM. */
cpex__metrics *cpex__metrics_new(void);
void cpex__metrics_free(cpex__metrics *m);
/** The id of a label set, made when new (`hook` may be "" for none).
 *  CPEX__NO_METRIC on OOM or when the table is full. */
uint32_t cpex__metrics_id(cpex__metrics *m, int kind, const char *plugin, const char *hook);
/** This thread's shard of `m` (made on first use). NULL on OOM. */
cpex__mshard *cpex__metrics_shard_slow(cpex__metrics *m);
cpex__mslot *cpex__mshard_grow(cpex__mshard *sh, uint32_t id);

/** The thread's most recent (metrics id, shard): one compare per invoke. */
typedef struct cpex__mcache {
    uint64_t id;
    cpex__mshard *shard;
} cpex__mcache;
extern _Thread_local cpex__mcache cpex__mcache_tl;

static inline cpex__mshard *cpex__metrics_shard(cpex__metrics *m)
{
    if (__builtin_expect(cpex__mcache_tl.id == m->uid, 1))
        return cpex__mcache_tl.shard;
    return cpex__metrics_shard_slow(m);
}

static inline cpex__mslot *cpex__mslot_of(cpex__mshard *sh, uint32_t id)
{
    if (id >= CPEX__MAX_METRIC_IDS)
        return NULL;
    cpex__mslot *blk =
        atomic_load_explicit(&sh->blocks[id / CPEX__MBLOCK_SLOTS], memory_order_relaxed);
    if (__builtin_expect(!blk, 0))
        return cpex__mshard_grow(sh, id);
    return &blk[id % CPEX__MBLOCK_SLOTS];
}

/* One writer per shard: a plain read-modify-write, atomic only so that a
 * reader summing the shards never tears a value (no lock, no fence). */
static inline void cpex__mc_add(_Atomic uint64_t *c, uint64_t n)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
                          memory_order_relaxed);
}

/** The latency bucket of `ns`: bucket i holds (2^(9+i), 2^(10+i)] ns. */
static inline unsigned cpex__mbucket(int64_t ns)
{
    if (ns <= 1024)
        return 0;
    unsigned b = (unsigned)(64 - __builtin_clzll((uint64_t)(ns - 1) >> 10));
    return b < CPEX_STATS_BUCKETS ? b : CPEX_STATS_BUCKETS - 1;
}

static inline void cpex__mslot_time(cpex__mslot *s, int64_t ns)
{
    cpex__mc_add(&s->c[CPEX__MC_DUR_SUM], (uint64_t)ns);
    cpex__mc_add(&s->b[cpex__mbucket(ns)], 1);
}

/** The counter of a call's outcome: status, and what it asked for. */
static inline unsigned cpex__mc_outcome(uint32_t status, int32_t requested)
{
    switch (status) {
    case CPEX_EXEC_COMPLETED: return requested == CPEX_DENY ? CPEX__MC_DENIES : CPEX__MC_ALLOWS;
    case CPEX_EXEC_TIMEOUT: return CPEX__MC_TIMEOUTS;
    case CPEX_EXEC_CANCELLED: return CPEX__MC_CANCELLED;
    case CPEX_EXEC_NOT_STARTED: return CPEX__MC_NOT_STARTED;
    default: return CPEX__MC_ERRORS; /* error, not_initialized */
    }
}

/** Count one call: its outcome counter, a disable it caused, and its
 *  duration when it ran (`ns` < 0: it was not called). */
static inline void cpex__mslot_call(cpex__mslot *s, unsigned outcome, bool disabled, int64_t ns)
{
    cpex__mc_add(&s->c[outcome], 1);
    if (disabled)
        cpex__mc_add(&s->c[CPEX__MC_DISABLES], 1);
    if (ns >= 0)
        cpex__mslot_time(s, ns);
}

/** One label set summed over every shard, for readers. */
typedef struct cpex__msum {
    uint64_t c[CPEX__MC_COUNT];
    uint64_t b[CPEX_STATS_BUCKETS];
} cpex__msum;

/**
 * Every label set and its sums (a consistent copy, taken under the
 * metrics' locks; counting goes on meanwhile). The caller frees both
 * arrays with cpex__metrics_read_free. False on OOM.
 */
bool cpex__metrics_read(cpex__metrics *m, cpex__mlabel **labels, cpex__msum **sums, size_t *count);
void cpex__metrics_read_free(cpex__mlabel *labels, cpex__msum *sums, size_t count);

/* ------------------------------------------------------------------ */
/* Audit (audit.c)                                                     */
/* ------------------------------------------------------------------ */

typedef struct cpex__audit cpex__audit;

/** One verdict on its way to its sinks. */
typedef struct cpex__verdict_item cpex__verdict_item;

cpex__audit *cpex__audit_new(cpex__hub *hub);
/** Stop the thread (bounded wait for a sink stuck in a call) and free
 *  everything left. Called when the hub is freed... or detached. */
void cpex__audit_free(cpex__audit *a);
/** Queue settings (clamped by the caller). */
void cpex__audit_configure(cpex__audit *a, uint32_t capacity, uint32_t overflow,
                           int64_t max_wait_ns);
/** Start the delivery thread if it is not running. False when it cannot start. */
bool cpex__audit_start(cpex__audit *a);
/** Deliver everything queued or waiting for fire-and-forget calls; gives up
 *  only on a sink stuck in one call past its deadline and `grace_ns`. */
void cpex__audit_drain(cpex__audit *a, int64_t grace_ns);
/** Stop the thread after draining (manager free); abandons a stuck one. */
void cpex__audit_stop(cpex__audit *a, int64_t grace_ns);
/** Counts for stats: enqueued, delivered, dropped, depth, capacity. */
void cpex__audit_counts(cpex__audit *a, uint64_t *enqueued, uint64_t *delivered, uint64_t *dropped,
                        uint32_t *depth, uint32_t *capacity);

/** What a verdict is built from (the executor's or the invoke's state). */
typedef struct cpex__verdict_src {
    cpex__hub *hub;
    const char *hook;
    size_t hook_len;
    cpex__plugin *const *sinks; /* the hook's sinks */
    size_t sink_count;
    bool allowed;
    const cpex_violation *violation;
    const cpex_payload *payload; /* final; NULL when none */
    const cpex__payload_ops *ops;
    const cpex_extensions *ext; /* final; NULL when none */
    bool payload_modified, extensions_modified;
    cpex__recs *recs; /* taken (records for the verdict); may be NULL */
    size_t faf_count; /* fire-and-forget calls whose records are to come */
} cpex__verdict_src;

/**
 * Build a verdict and take room for it in the queue (waiting or dropping
 * as the queue's overflow mode says). NULL when it was dropped (counted)
 * or memory ran out; `src->recs` is taken either way.
 */
cpex__verdict_item *cpex__verdict_new(cpex__audit *a, const cpex__verdict_src *src);
/** Hand a verdict made by cpex__verdict_new over: ready now, or when its
 *  fire-and-forget calls end (the caller holds one count of those). */
void cpex__verdict_commit(cpex__audit *a, cpex__verdict_item *item);

/** A fire-and-forget call's slot in a verdict. */
typedef struct cpex__verdict_slot {
    cpex__verdict_item *item; /* a reference */
    size_t index;             /* its slot */
} cpex__verdict_slot;

/** The record of fire-and-forget slot `index` (once finished), with two
 *  buffers of CPEX__REC_MAX_TEXT + 1 bytes for its code and reason (NULL
 *  when there was no room). NULL when the slot has no record. */
cpex_execution_record *cpex__verdict_faf_record(cpex__verdict_item *item, size_t index,
                                                char **code_buf, char **reason_buf);
/** How many fire-and-forget slots the verdict has. */
size_t cpex__verdict_faf_slots(const cpex__verdict_item *item);
/** Prepare slot `index` for plugin `p` (static fields; on the invoking thread). */
void cpex__verdict_faf_prepare(cpex__verdict_item *item, size_t index, const cpex__plugin *p,
                               int64_t deadline_ns);
/** A fire-and-forget task starts slot `index` (false: the slot expired,
 *  leave it alone). */
bool cpex__verdict_faf_claim(cpex__verdict_item *item, size_t index);
/** When it started (ticks), for the thread that may expire it. */
void cpex__verdict_faf_started(cpex__verdict_item *item, size_t index, uint64_t ticks);
/** The task ends: true when it may write the slot's record (it did not
 *  expire meanwhile); it then calls cpex__verdict_faf_done. */
bool cpex__verdict_faf_finish(cpex__verdict_item *item, size_t index);
/** The slot's record is written: one fire-and-forget call fewer to wait
 *  for; the last (or the invoker's own count) makes the verdict ready. */
void cpex__verdict_faf_done(cpex__audit *a, cpex__verdict_item *item);
/** Drop the caller's reference (a fire-and-forget task's, or the invoker's
 *  count of the calls to come when none was submitted). */
void cpex__verdict_unref(cpex__verdict_item *item);
cpex__verdict_item *cpex__verdict_ref(cpex__verdict_item *item);
/** The time base of the verdict's records (for fire-and-forget timing). */
const cpex__recs *cpex__verdict_recs(const cpex__verdict_item *item);

/* ------------------------------------------------------------------ */
/* Sinks and snapshot wiring (sinks.c)                                 */
/* ------------------------------------------------------------------ */

/** What a snapshot adds for observation (owned by it). */
typedef struct cpex__snap_obs {
    uint32_t *metric_ids;      /* every hook entry's label id; hooks point into it */
    cpex__plugin **sink_lists; /* every hook's sink list; hooks point into it */
    size_t all_count;          /* sinks that observe every hook */
    cpex__plugin **all;
    size_t named_count; /* (hook, sink) pairs of sinks that list hooks */
    const char **named_hooks;
    cpex__plugin **named_sinks;
} cpex__snap_obs;

/**
 * Wire a built snapshot for observation: each hook's metric ids and sink
 * list, from the snapshot's plugins and the manager's API sinks. Every
 * path that publishes a snapshot calls it (cpex__mgr_publish does). False
 * on OOM (the snapshot is then unusable: free it).
 */
bool cpex__snapshot_observe(cpex_manager *m, cpex__snapshot *snap);
void cpex__snapshot_obs_free(cpex__snapshot *snap);

/** Apply a loaded configuration's plugin_settings to the manager. */
void cpex__observe_apply_settings(cpex_manager *m, int execution_records, int metrics,
                                  int64_t queue_size, int overflow, double max_wait);

/**
 * The verdict of an invoke that ran no pipeline (no handler for the hook,
 * or the payload did not fit it): sent to the sinks that observe `hook`.
 */
void cpex__observe_unrun(cpex_manager *m, const cpex__snapshot *snap, const cpex__hook *h,
                         const char *hook, size_t hook_len, const cpex_payload *payload,
                         const cpex__type_slot *custom, const cpex_extensions *ext,
                         const cpex_pipeline_result *res);

/** Whether a verdict would go anywhere for an invoke of `h` / an unknown hook. */
static inline bool cpex__snapshot_has_sinks(const cpex__snapshot *snap) { return snap->any_sinks; }

#endif
