/*
 * rcu.c — see rcu.h. Two implementations behind one interface, chosen once
 * per process:
 *
 * membarrier (Linux 4.14+, the default). Each thread that reads registers
 * a record once; entering a read section is a plain store of the current
 * grace-period phase into the thread's own record, leaving it a plain store
 * of zero: no atomic read-modify-write, no cache line shared between
 * threads. The writer pays instead: membarrier(PRIVATE_EXPEDITED) makes
 * every running thread of the process execute a full memory barrier, which
 * orders the readers' plain stores and loads as if they had fenced; then it
 * flips the phase twice, each time waiting until no record is in a section
 * of the old phase (the scheme of liburcu's "memb" flavour).
 *
 * counters (when membarrier is missing, and under ThreadSanitizer, which
 * cannot see the barriers membarrier implies). Readers count themselves in
 * one of a few padded slots, under the parity of an epoch; the writer flips
 * the epoch and waits for the old parity to drain. All atomics are
 * sequentially consistent on purpose: the argument (reader increments, then
 * re-checks the epoch; writer publishes, flips, then drains) relies on one
 * total order.
 */
#include "core/rcu.h"

#include <errno.h>
#include <linux/membarrier.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#if defined(__SANITIZE_THREAD__)
#define CPEX__RCU_NO_MEMBARRIER 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define CPEX__RCU_NO_MEMBARRIER 1
#endif
#endif

/* ------------------------------------------------------------------ */
/* Mode                                                                */
/* ------------------------------------------------------------------ */

static pthread_once_t mode_once = PTHREAD_ONCE_INIT;
static bool use_membarrier;

static long membarrier_call(int cmd) { return syscall(__NR_membarrier, cmd, 0, 0); }

static void choose_mode(void)
{
#ifdef CPEX__RCU_NO_MEMBARRIER
    use_membarrier = false;
#else
    long cmds = membarrier_call(MEMBARRIER_CMD_QUERY);
    use_membarrier = cmds > 0 && (cmds & MEMBARRIER_CMD_PRIVATE_EXPEDITED) &&
                     membarrier_call(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) == 0;
#endif
}

/* ------------------------------------------------------------------ */
/* membarrier: per-thread records                                      */
/* ------------------------------------------------------------------ */

#define GP_PHASE 1ul  /* the phase bit of gp_ctr */
#define GP_ACTIVE 2ul /* set in every non-zero reader value */

typedef struct reader {
    _Atomic unsigned long ctr; /* 0: outside; else gp_ctr at entry (GP_ACTIVE set) */
    unsigned nest;             /* sections of this thread, nested (touched only by it) */
    bool registered;
    struct reader *prev, *next;
} reader;

static _Atomic unsigned long gp_ctr = GP_ACTIVE;
static pthread_mutex_t readers_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t writers_lock = PTHREAD_MUTEX_INITIALIZER;
static reader *readers;
static pthread_key_t reader_key;
static pthread_once_t key_once = PTHREAD_ONCE_INIT;
/* initial-exec: in libcpex.so a plain thread-local costs a __tls_get_addr
 * call per invoke; a few bytes of static TLS are always available. */
static _Thread_local reader me __attribute__((tls_model("initial-exec")));

static void reader_gone(void *arg)
{
    reader *r = arg;
    pthread_mutex_lock(&readers_lock);
    if (r->prev)
        r->prev->next = r->next;
    else
        readers = r->next;
    if (r->next)
        r->next->prev = r->prev;
    r->registered = false;
    pthread_mutex_unlock(&readers_lock);
}

static void make_key(void) { pthread_key_create(&reader_key, reader_gone); }

static void register_reader(void)
{
    pthread_once(&key_once, make_key);
    pthread_mutex_lock(&readers_lock);
    me.prev = NULL;
    me.next = readers;
    if (readers)
        readers->prev = &me;
    readers = &me;
    me.registered = true;
    pthread_mutex_unlock(&readers_lock);
    pthread_setspecific(reader_key, &me); /* unregistered when the thread exits */
}

static void memb_enter(void)
{
    if (__builtin_expect(!me.registered, 0))
        register_reader();
    if (me.nest++ == 0) {
        atomic_store_explicit(&me.ctr, atomic_load_explicit(&gp_ctr, memory_order_relaxed),
                              memory_order_relaxed);
        /* The compiler may not move the section's loads above the store;
         * the writer's membarrier supplies the CPU barrier. */
        atomic_signal_fence(memory_order_seq_cst);
    }
}

static void memb_exit(void)
{
    if (--me.nest == 0) {
        atomic_signal_fence(memory_order_seq_cst);
        atomic_store_explicit(&me.ctr, 0, memory_order_relaxed);
    }
}

/* Whether reader `r` is inside a section that began before the last flip. */
static bool in_old_phase(reader *r)
{
    unsigned long v = atomic_load_explicit(&r->ctr, memory_order_relaxed);
    return v != 0 && ((v ^ atomic_load_explicit(&gp_ctr, memory_order_relaxed)) & GP_PHASE);
}

static void wait_for_readers(void)
{
    for (int spins = 0;; spins++) {
        bool busy = false;
        pthread_mutex_lock(&readers_lock);
        for (reader *r = readers; r && !busy; r = r->next)
            busy = in_old_phase(r);
        pthread_mutex_unlock(&readers_lock);
        if (!busy)
            return;
        if (spins < 100) {
            sched_yield();
        } else {
            struct timespec ts = {0, 200000}; /* 0.2 ms: readers may run long handlers */
            nanosleep(&ts, NULL);
        }
    }
}

static void memb_synchronize(void)
{
    pthread_mutex_lock(&writers_lock);
    membarrier_call(MEMBARRIER_CMD_PRIVATE_EXPEDITED);
    /* Two flips: a reader that loaded gp_ctr just before the first flip
     * and stores it after the first wait began is caught by the second. */
    for (int i = 0; i < 2; i++) {
        atomic_fetch_xor_explicit(&gp_ctr, GP_PHASE, memory_order_relaxed);
        membarrier_call(MEMBARRIER_CMD_PRIVATE_EXPEDITED);
        wait_for_readers();
    }
    membarrier_call(MEMBARRIER_CMD_PRIVATE_EXPEDITED);
    pthread_mutex_unlock(&writers_lock);
}

/* ------------------------------------------------------------------ */
/* counters                                                            */
/* ------------------------------------------------------------------ */

static _Atomic unsigned next_slot;
static _Thread_local int my_slot __attribute__((tls_model("initial-exec"))) = -1;

static cpex__rcu_ticket count_enter(cpex__rcu *rcu)
{
    if (my_slot < 0)
        my_slot = (int)(atomic_fetch_add(&next_slot, 1) % CPEX_RCU_SLOTS);
    cpex__rcu_slot *slot = &rcu->slots[my_slot];
    for (;;) {
        unsigned long e = atomic_load(&rcu->epoch);
        _Atomic long *c = &slot->count[e & 1];
        atomic_fetch_add(c, 1);
        if (atomic_load(&rcu->epoch) == e) {
            cpex__rcu_ticket t = {c};
            return t;
        }
        /* A writer flipped between our load and increment: retry under the new parity. */
        atomic_fetch_sub(c, 1);
    }
}

static void count_synchronize(cpex__rcu *rcu)
{
    unsigned long old = atomic_fetch_add(&rcu->epoch, 1);
    unsigned parity = (unsigned)(old & 1);
    for (int spins = 0;; spins++) {
        long total = 0;
        for (int i = 0; i < CPEX_RCU_SLOTS; i++)
            total += atomic_load(&rcu->slots[i].count[parity]);
        if (total == 0)
            return;
        if (spins < 100) {
            sched_yield();
        } else {
            struct timespec ts = {0, 200000}; /* 0.2 ms: readers may run long handlers */
            nanosleep(&ts, NULL);
        }
    }
}

/* ------------------------------------------------------------------ */
/* Interface                                                           */
/* ------------------------------------------------------------------ */

void cpex__rcu_init(cpex__rcu *rcu)
{
    pthread_once(&mode_once, choose_mode);
    atomic_init(&rcu->epoch, 0);
    for (int i = 0; i < CPEX_RCU_SLOTS; i++) {
        atomic_init(&rcu->slots[i].count[0], 0);
        atomic_init(&rcu->slots[i].count[1], 0);
    }
}

cpex__rcu_ticket cpex__rcu_enter(cpex__rcu *rcu)
{
    if (__builtin_expect(use_membarrier, 1)) {
        memb_enter();
        cpex__rcu_ticket t = {NULL};
        return t;
    }
    return count_enter(rcu);
}

void cpex__rcu_exit(cpex__rcu_ticket ticket)
{
    if (!ticket.counter)
        memb_exit();
    else
        atomic_fetch_sub(ticket.counter, 1);
}

void cpex__rcu_synchronize(cpex__rcu *rcu)
{
    if (use_membarrier)
        memb_synchronize();
    else
        count_synchronize(rcu);
}

bool cpex__rcu_uses_membarrier(void)
{
    pthread_once(&mode_once, choose_mode);
    return use_membarrier;
}
