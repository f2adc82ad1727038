/*
 * rcu.h — lets invokes read the published registry without a lock that
 * writers hold, and lets a writer know when no reader still uses the old
 * registry.
 *
 * Readers never block. Where the kernel offers membarrier, entering and
 * leaving a read section are plain stores to the thread's own record (the
 * writer makes every thread fence when it needs to); elsewhere readers
 * count themselves in padded per-thread slots. rcu.c explains both. Read
 * sections nest on one thread.
 */
#ifndef CPEX_CORE_RCU_H
#define CPEX_CORE_RCU_H

#include <stdatomic.h>
#include <stdbool.h>

#define CPEX_RCU_SLOTS 16

typedef struct cpex__rcu_slot {
    _Alignas(64) _Atomic long count[2];
} cpex__rcu_slot;

typedef struct cpex__rcu {
    _Alignas(64) _Atomic unsigned long epoch;
    cpex__rcu_slot slots[CPEX_RCU_SLOTS];
} cpex__rcu;

/** A reader's ticket: which counter to release. */
typedef struct cpex__rcu_ticket {
    _Atomic long *counter;
} cpex__rcu_ticket;

void cpex__rcu_init(cpex__rcu *rcu);
/** Enter a read section. */
cpex__rcu_ticket cpex__rcu_enter(cpex__rcu *rcu);
/** Leave a read section. */
void cpex__rcu_exit(cpex__rcu_ticket ticket);
/**
 * Writer: after publishing a new pointer, wait until every reader that may
 * have seen the old one has left. Writers must be serialized by the caller.
 */
void cpex__rcu_synchronize(cpex__rcu *rcu);
/** Whether read sections are membarrier-based in this process (for tests and benches). */
bool cpex__rcu_uses_membarrier(void);

#endif
