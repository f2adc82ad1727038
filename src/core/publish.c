/*
 * publish.c — the one way any change reaches invokes: build a new registry
 * snapshot, store it atomically, wait (RCU) until no invoke reads the old
 * one, then free the old one.
 *
 * Registrations from code are published lazily: cpex_manager_register
 * checks and wires the plugin at once (every error is its own), then
 * leaves it in m->pending and sets m->dirty; the next reader of the
 * registry publishes every pending plugin in one snapshot. So n
 * registrations in a row build one snapshot, not n. Readers outside the
 * write lock (invokes, queries) call cpex__mgr_sync, which publishes
 * without the RCU wait (a reader must never wait for other readers: it may
 * be one itself, an invoke nested in a handler) and leaves the replaced
 * snapshot on m->retired, freed after the next writer's wait. Writers call
 * cpex__mgr_current under the lock. A writer that waits for readers does
 * so with nothing pending: a reader that finds registrations pending spins
 * until it gets the lock or they are published. Out of memory, they stay
 * pending: writers that need them fail (cpex__mgr_unpublished), and readers
 * retry the publish whenever the lock is free, reading the registry as it
 * was when it is not (they never wait for a retry).
 */
#include <sched.h>
#include <string.h>
#include <time.h>

#include "core/core.h"
#include "core/manager_internal.h"
#include "core/routing.h"
#include "core/observe.h"
#include "util/alloc.h"

/* Identifies the calling thread: m->writer holds its address while the
 * thread holds m->write_lock. */
static _Thread_local char writer_token;

void cpex__mgr_lock(cpex_manager *m)
{
    pthread_mutex_lock(&m->write_lock);
    atomic_store_explicit(&m->writer, &writer_token, memory_order_relaxed);
}

void cpex__mgr_unlock(cpex_manager *m)
{
    atomic_store_explicit(&m->writer, NULL, memory_order_relaxed);
    pthread_mutex_unlock(&m->write_lock);
}

static bool try_lock(cpex_manager *m)
{
    if (pthread_mutex_trylock(&m->write_lock) != 0)
        return false;
    atomic_store_explicit(&m->writer, &writer_token, memory_order_relaxed);
    return true;
}

static void free_retired(cpex_manager *m)
{
    while (m->retired) {
        cpex__snapshot *s = m->retired;
        m->retired = s->retired_next;
        cpex__snapshot_free(s);
    }
    m->retired_count = 0;
}

/*
 * An invoke of a hook with nothing to run answers without a read section
 * when the hook's empty_in equals the manager's live generation (invoke.c).
 * The order makes that safe: every name empty in `next` gets its
 * generation before `next` is stored; a name that gains plugins keeps an
 * older generation. While `next` is being stored the live words say
 * "busy" (a value no empty_in and no name cache entry holds), so no
 * invoke answers from the old generation once the new snapshot can be
 * seen: a thread that read `next` (an invoke, cpex_manager_generation)
 * and then invokes finds "busy" or the new words. A registration waits in
 * `dirty`, which is cleared only after the new words are stored, and the
 * invoke reads `dirty` before them.
 */
void cpex__mgr_mark_empty_hook(cpex__hook_name *name, const cpex__snapshot *snap)
{
    const cpex__hook *h = name->id < snap->id_count ? snap->by_id[name->id] : NULL;
    if (!snap->any_sinks && (!h || h->count == 0))
        atomic_store_explicit(&name->empty_in, snap->generation, memory_order_relaxed);
}

void cpex__mgr_mark_empty_hooks(cpex_manager *m, const cpex__snapshot *next)
{
    for (size_t id = 0; id < m->names.count; id++)
        cpex__mgr_mark_empty_hook(m->names.by_id[id], next);
}

void cpex__mgr_set_live_busy(cpex_manager *m)
{
    atomic_store_explicit(&m->live_uid, CPEX__LIVE_UID_BUSY, memory_order_relaxed);
    atomic_store_explicit(&m->live_generation, CPEX__LIVE_GENERATION_BUSY, memory_order_relaxed);
}

void cpex__mgr_set_live(cpex_manager *m, const cpex__snapshot *next)
{
    atomic_store_explicit(&m->live_uid, next->uid, memory_order_release);
    atomic_store_explicit(&m->live_generation, next->generation, memory_order_release);
}

/* Build and store a snapshot of `plugins`; its generation is `steps` more.
 * wait: wait for readers and free the old snapshot (and every retired
 * one); else retire the old one. */
static cpex_status publish_guarded(cpex_manager *m, cpex__plugin *const *plugins, size_t count,
                                   uint64_t steps, bool wait);

/* Every publish (a writer's, or a flush of pending registrations) runs
 * guarded: it may log (the audit thread that cannot start), and a log sink
 * that reads the manager must not publish the pending registrations from
 * inside it: the outer publish would then replace that snapshot with one
 * that lacks them, and they would be dropped. */
static cpex_status publish(cpex_manager *m, cpex__plugin *const *plugins, size_t count,
                           uint64_t steps, bool wait)
{
    bool was = m->publishing;
    m->publishing = true;
    cpex_status st = publish_guarded(m, plugins, count, steps, wait);
    m->publishing = was;
    return st;
}

static cpex_status publish_guarded(cpex_manager *m, cpex__plugin *const *plugins, size_t count,
                                   uint64_t steps, bool wait)
{
    cpex__snapshot *next = cpex__snapshot_build(plugins, count, &m->names, m->types, m->type_count);
    if (next && !cpex__snapshot_observe(m, next)) {
        cpex__snapshot_free(next);
        next = NULL;
    }
    if (!next)
        return CPEX_E_NOMEM;
    bool ok;
    next->routing = cpex__route_state_new(m->policy, next, cpex__sink_of(m), &ok);
    if (!ok) {
        cpex__snapshot_free(next);
        return CPEX_E_NOMEM;
    }
    /* One publish, one generation: a reload is one publish. Pending
       registrations published together count one each. */
    m->generation += steps;
    next->generation = m->generation;
    /* Verdicts need their thread before the first invoke can hand one over. */
    if (cpex__snapshot_has_sinks(next) && !cpex__audit_start(m->hub->audit))
        cpex__log(cpex__sink_of(m), CPEX_LOG_ERROR, NULL,
                  "cannot start the audit thread: verdicts for the audit sinks will queue up "
                  "and then be dropped");
    cpex__mgr_mark_empty_hooks(m, next);
    cpex__mgr_set_live_busy(m);
    cpex__snapshot *old = atomic_exchange(&m->snapshot, next);
    cpex__mgr_set_live(m, next);
    if (!wait) {
        old->retired_next = m->retired;
        m->retired = old;
        m->retired_count++;
        return CPEX_OK;
    }
    cpex__rcu_synchronize(&m->rcu);
    cpex__snapshot_free(old);
    free_retired(m);
    return CPEX_OK;
}

/* Publish the pending registrations (lock held). */
static cpex_status flush(cpex_manager *m, bool wait)
{
    /* A host log sink called while this thread publishes (a log line of the
       publish itself) and read the registry: it sees it as it was. Publishing
       again from inside would count the generation twice and publish a
       snapshot the outer publish then replaces. */
    if (m->publishing)
        return CPEX_OK;
    /* After shutdown nothing is published: shutdown published what was
       pending, or (out of memory) shut the pending plugins down where they
       are; cpex_manager_free releases them. */
    if (m->pending_count && atomic_load(&m->shut_down)) {
        atomic_store_explicit(&m->dirty, 0, memory_order_release);
        return CPEX_OK;
    }
    if (m->pending_count == 0) {
        if (wait && m->retired) {
            cpex__rcu_synchronize(&m->rcu);
            free_retired(m);
        }
        return CPEX_OK;
    }
    cpex__snapshot *cur = atomic_load(&m->snapshot);
    size_t total = cur->plugin_count + m->pending_count;
    cpex__plugin **all = cpex__malloc(total * sizeof *all);
    cpex_status st = all ? CPEX_OK : CPEX_E_NOMEM;
    if (all) {
        if (cur->plugin_count)
            memcpy(all, cur->plugins, cur->plugin_count * sizeof *all);
        memcpy(all + cur->plugin_count, m->pending, m->pending_count * sizeof *all);
        /* Published before the flag is cleared, and the flag cleared before
           any wait for readers: a reader that sees it clear sees the new
           snapshot, and a reader spinning on it (cpex__mgr_sync_slow) is let go. */
        st = publish(m, all, total, m->pending_count, false);
        cpex__free(all);
    }
    if (st != CPEX_OK) {
        m->publishing = true; /* the log line below may reach a sink that reads */
        /* They stay pending, and readers retry the publish when they find
           the lock free (else they read the registry as it was), but none
           may spin on the flag while a writer waits. */
        /* Said once, not by every reader that retries while memory is short. */
        bool first = atomic_exchange_explicit(&m->dirty, CPEX__PENDING_RETRY,
                                              memory_order_acq_rel) != CPEX__PENDING_RETRY;
        if (first)
            cpex__log(cpex__sink_of(m), CPEX_LOG_ERROR, NULL,
                      "out of memory publishing %zu registered plugin%s; the next reader or "
                      "change publishes them",
                      m->pending_count, m->pending_count == 1 ? "" : "s");
        m->publishing = false;
        return st;
    }
    for (size_t i = 0; i < m->pending_count; i++)
        cpex__plugin_unref(m->pending[i]); /* the snapshot holds them now */
    m->pending_count = 0;
    atomic_store_explicit(&m->dirty, 0, memory_order_release);
    if (wait) {
        cpex__rcu_synchronize(&m->rcu);
        free_retired(m);
    }
    return CPEX_OK;
}

cpex__snapshot *cpex__mgr_current(cpex_manager *m)
{
    /* No wait: the replaced snapshot is freed by the next publish that waits. */
    flush(m, false);
    return atomic_load(&m->snapshot);
}

void cpex__mgr_sync_slow(cpex_manager *m)
{
    /* This thread holds the lock (a plugin's initialize or a log sink,
       called during cpex_manager_register, reads the registry). */
    if (atomic_load_explicit(&m->writer, memory_order_relaxed) == &writer_token) {
        flush(m, false);
        return;
    }
    /* Never block on the lock: its holder may wait for readers, and this
       thread may be one (an invoke inside a handler). Every holder that
       waits publishes what is pending first, which lets this loop go. */
    int d;
    for (unsigned spins = 0; (d = atomic_load_explicit(&m->dirty, memory_order_acquire)) != 0;
         spins++) {
        if (try_lock(m)) {
            flush(m, false); /* out of memory: the registry as it was, logged */
            cpex__mgr_unlock(m);
            return;
        }
        if (d == CPEX__PENDING_RETRY)
            return; /* a writer has the lock and the retry: do not wait for it */
        if (spins < 100) {
            sched_yield();
        } else {
            struct timespec ts = {0, 50000};
            nanosleep(&ts, NULL);
        }
    }
}

bool cpex__mgr_add_pending(cpex_manager *m, cpex__plugin *p)
{
    /* Readers' publishes retire snapshots; a writer frees them after a
       wait. Registrations that alternate with invokes keep a few. */
    if (m->retired_count >= 8)
        flush(m, true);
    cpex__plugin **n = cpex__grow(m->pending, m->pending_count, &m->pending_cap, sizeof *n, 16);
    if (!n)
        return false;
    m->pending = n;
    m->pending[m->pending_count++] = cpex__plugin_ref(p);
    atomic_store_explicit(&m->dirty, CPEX__PENDING, memory_order_release);
    return true;
}

void cpex__mgr_pending_free(cpex_manager *m)
{
    for (size_t i = m->pending_count; i-- > 0;)
        cpex__plugin_unref(m->pending[i]);
    cpex__free(m->pending);
    m->pending = NULL;
    m->pending_count = m->pending_cap = 0;
    atomic_store(&m->dirty, 0);
    free_retired(m);
}

/* Publish a new snapshot of `plugins`; waits for readers of the old one.
 * Every snapshot is wired for observation before it is published (metric
 * ids, and the audit sinks of each hook: the snapshot's own plugins that
 * are sinks, and the manager's sinks registered from code). The caller
 * took `plugins` from cpex__mgr_current: nothing is pending. */
cpex_status cpex__mgr_publish(cpex_manager *m, cpex__plugin *const *plugins, size_t count)
{
    return publish(m, plugins, count, 1, true);
}

cpex_status cpex__mgr_republish(cpex_manager *m)
{
    cpex__snapshot *cur = cpex__mgr_current(m);
    return cpex__mgr_publish(m, cur->plugins, cur->plugin_count);
}
