/* chan.c — see chan.h. */
#include "isolation/chan.h"

#include <errno.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static inline int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

void iso_chan_bind(iso_chan *c, void *base, uint32_t channels, uint32_t i)
{
    uint8_t *b = base;
    c->ctl = (iso_chan_ctl *)(void *)(b + ISO_CTL_OFFSET(i));
    c->req = b + ISO_REQ_OFFSET(channels, i);
    c->rep = b + ISO_REP_OFFSET(channels, i);
    c->seq = 0;
}

/* Shared (not private) futexes: the two sides are different processes. */
void iso_futex_wait(_Atomic uint32_t *addr, uint32_t expected, int64_t timeout_ns)
{
    struct timespec ts, *tp = NULL;
    if (timeout_ns >= 0) {
        ts.tv_sec = (time_t)(timeout_ns / 1000000000);
        ts.tv_nsec = (long)(timeout_ns % 1000000000);
        tp = &ts;
    }
    syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAIT, expected, tp, NULL, 0);
}

void iso_futex_wake(_Atomic uint32_t *addr)
{
    syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAKE, 0x7fffffff, NULL, NULL, 0);
}

void iso_chan_post(iso_chan *c, uint32_t len)
{
    c->seq = (c->seq + 1) & ~ISO_SEQ_DEAD;
    if (c->seq == 0)
        c->seq = 1;
    c->ctl->req_len = len;
    /* seq_cst: the store must be seen before we read worker_sleeping (the
       worker sets that flag, then re-reads req_seq before sleeping). */
    atomic_store(&c->ctl->req_seq, c->seq);
    if (atomic_load(&c->ctl->worker_sleeping))
        iso_futex_wake(&c->ctl->req_seq);
}

int iso_chan_wait_reply(iso_chan *c, const _Atomic int *dead, int64_t deadline_ns,
                        int64_t spin_ns)
{
    _Atomic uint32_t *rep = &c->ctl->rep_seq;
    int64_t start = now_ns();
    for (unsigned i = 0;; i++) {
        uint32_t v = atomic_load_explicit(rep, memory_order_acquire);
        if (v == c->seq)
            return ISO_WAIT_REPLY;
        if (atomic_load_explicit(dead, memory_order_acquire))
            return ISO_WAIT_DEAD;
        if ((i & 63) == 63) {
            int64_t t = now_ns();
            if (t >= deadline_ns)
                return ISO_WAIT_TIMEOUT;
            if (t - start >= spin_ns)
                break;
        }
        cpu_relax();
    }
    for (;;) {
        atomic_store(&c->ctl->host_sleeping, 1);
        uint32_t v = atomic_load(rep);
        if (v == c->seq) {
            atomic_store_explicit(&c->ctl->host_sleeping, 0, memory_order_relaxed);
            atomic_thread_fence(memory_order_acquire);
            return ISO_WAIT_REPLY;
        }
        if (atomic_load(dead)) {
            atomic_store_explicit(&c->ctl->host_sleeping, 0, memory_order_relaxed);
            return ISO_WAIT_DEAD;
        }
        int64_t t = now_ns();
        if (t >= deadline_ns) {
            atomic_store_explicit(&c->ctl->host_sleeping, 0, memory_order_relaxed);
            return ISO_WAIT_TIMEOUT;
        }
        iso_futex_wait(rep, v, deadline_ns - t);
    }
}

void iso_chan_mark_dead(iso_chan *c)
{
    atomic_fetch_or(&c->ctl->rep_seq, ISO_SEQ_DEAD);
    iso_futex_wake(&c->ctl->rep_seq);
}

uint32_t iso_chan_wait_request(iso_chan *c, int64_t spin_ns)
{
    _Atomic uint32_t *req = &c->ctl->req_seq;
    int64_t start = 0;
    for (unsigned i = 0;; i++) {
        uint32_t v = atomic_load_explicit(req, memory_order_acquire);
        if (v != c->seq)
            return v;
        if ((i & 63) == 63) {
            int64_t t = now_ns();
            if (!start)
                start = t;
            else if (t - start >= spin_ns)
                break;
        }
        cpu_relax();
    }
    for (;;) {
        atomic_store(&c->ctl->worker_sleeping, 1);
        uint32_t v = atomic_load(req);
        if (v != c->seq) {
            atomic_store_explicit(&c->ctl->worker_sleeping, 0, memory_order_relaxed);
            atomic_thread_fence(memory_order_acquire);
            return v;
        }
        iso_futex_wait(req, v, -1);
    }
}

void iso_chan_reply(iso_chan *c, uint32_t seq, uint32_t len)
{
    c->seq = seq;
    c->ctl->rep_len = len;
    atomic_store(&c->ctl->rep_seq, seq);
    if (atomic_load(&c->ctl->host_sleeping))
        iso_futex_wake(&c->ctl->rep_seq);
}
