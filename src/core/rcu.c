/* rcu.c — see rcu.h. All atomics are sequentially consistent on purpose:
 * the correctness argument (reader increments, then re-checks the epoch;
 * writer publishes, flips, then drains) relies on a single total order. */
#include "core/rcu.h"

#include <sched.h>
#include <time.h>

static _Atomic unsigned next_slot;
/* initial-exec: in libcpex.so a plain thread-local costs a __tls_get_addr
 * call per invoke; four bytes of static TLS are always available. */
static _Thread_local int my_slot __attribute__((tls_model("initial-exec"))) = -1;

void cpex__rcu_init(cpex__rcu *rcu)
{
    atomic_init(&rcu->epoch, 0);
    for (int i = 0; i < CPEX_RCU_SLOTS; i++) {
        atomic_init(&rcu->slots[i].count[0], 0);
        atomic_init(&rcu->slots[i].count[1], 0);
    }
}

cpex__rcu_ticket cpex__rcu_enter(cpex__rcu *rcu)
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

void cpex__rcu_exit(cpex__rcu_ticket ticket) { atomic_fetch_sub(ticket.counter, 1); }

void cpex__rcu_synchronize(cpex__rcu *rcu)
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
