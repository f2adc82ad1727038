/*
 * chan.c — see chan.h.
 *
 * Why the spin windows adapt: a thread woken by a futex takes a while to
 * run again (several microseconds on an idle machine, tens to a hundred on
 * a busy virtual one). When that delay is longer than the other side's
 * spin window, both sides end up sleeping on every call — two wake-ups per
 * round trip — and stay so. So each side watches its sleeps: when what it
 * waited for came soon after it fell asleep (it just missed it), it
 * doubles its window, up to ISO_SPIN_MAX_NS; when it came much later (an
 * idle host, a slow plugin), it halves it, down to ISO_SPIN_MIN_NS. The
 * spin is `pause` only: yielding the processor inside it was measured to
 * hurt (a yielding thread on a busy machine waits a whole time slice to
 * run again); the window's bound is what keeps the burn small.
 */
#include "isolation/chan.h"

#include "util/clock.h"

#include <errno.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static inline int64_t now_ns(void) { return cpex__clock_ns(false); }

void cpex__iso_chan_bind(cpex__iso_chan *c, void *base, uint32_t channels, uint32_t i)
{
    uint8_t *b = base;
    c->ctl = (cpex__iso_chan_ctl *)(void *)(b + ISO_CTL_OFFSET(i));
    c->req = b + ISO_REQ_OFFSET(channels, i);
    c->rep = b + ISO_REP_OFFSET(channels, i);
    c->seq = 0;
    c->up = 0;
}

/* Shared (not private) futexes: the two sides are different processes. */
void cpex__iso_futex_wait(_Atomic uint32_t *addr, uint32_t expected, int64_t timeout_ns)
{
    struct timespec ts, *tp = NULL;
    if (timeout_ns >= 0) {
        ts.tv_sec = (time_t)(timeout_ns / 1000000000);
        ts.tv_nsec = (long)(timeout_ns % 1000000000);
        tp = &ts;
    }
    syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAIT, expected, tp, NULL, 0);
}

void cpex__iso_futex_wake(_Atomic uint32_t *addr)
{
    syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAKE, 0x7fffffff, NULL, NULL, 0);
}

void cpex__iso_chan_post(cpex__iso_chan *c, uint32_t len)
{
    c->seq = (c->seq + 1) & ISO_SEQ_MASK;
    if (c->seq == 0)
        c->seq = 1;
    c->ctl->req_len = len;
    /* seq_cst: the store must be seen before we read worker_sleeping (the
       worker sets that flag, then re-reads req_seq before sleeping). */
    atomic_store(&c->ctl->req_seq, c->seq);
    if (atomic_load(&c->ctl->worker_sleeping))
        cpex__iso_futex_wake(&c->ctl->req_seq);
}

/* After a sleep that lasted `slept` ns: widen the window when the wait
   ended within it (a longer spin would have caught it), narrow it when
   the wait was long. */
static void adapt(cpex__iso_chan *c, int64_t slept)
{
    if (slept < c->spin_ns)
        c->spin_ns = c->spin_ns * 2 < ISO_SPIN_MAX_NS ? c->spin_ns * 2 : ISO_SPIN_MAX_NS;
    else if (slept > 16 * c->spin_ns)
        c->spin_ns = c->spin_ns / 2 > ISO_SPIN_MIN_NS ? c->spin_ns / 2 : ISO_SPIN_MIN_NS;
}

/* One step of a spin: pause; every 64 steps, look at the clock. Returns
   the time when it looked, else 0. */
static inline int64_t spin_step(unsigned i)
{
    cpex__cpu_relax();
    return (i & 63) == 63 ? now_ns() : 0;
}

/* A new upcall: the UPCALL bit, not the DEAD one, not the last one answered.
   Noted in c->up, so the caller knows which one it answers. */
static inline bool is_upcall(cpex__iso_chan *c, uint32_t v)
{
    if ((v & (ISO_SEQ_UPCALL | ISO_SEQ_DEAD)) != ISO_SEQ_UPCALL || v == c->up)
        return false;
    c->up = v;
    return true;
}

int cpex__iso_chan_wait_reply(cpex__iso_chan *c, const _Atomic int *dead, int64_t deadline_ns)
{
    _Atomic uint32_t *rep = &c->ctl->rep_seq;
    if (!c->spin_ns)
        c->spin_ns = ISO_SPIN_MIN_NS;
    int64_t start = now_ns();
    for (unsigned i = 0;; i++) {
        uint32_t v = atomic_load_explicit(rep, memory_order_acquire);
        if (v == c->seq)
            return ISO_WAIT_REPLY;
        if (is_upcall(c, v))
            return ISO_WAIT_UPCALL;
        if (atomic_load_explicit(dead, memory_order_acquire))
            return ISO_WAIT_DEAD;
        int64_t t = spin_step(i);
        if (t && t >= deadline_ns)
            return ISO_WAIT_TIMEOUT;
        if (t && t - start >= c->spin_ns)
            break;
    }
    int64_t slept = now_ns();
    for (;;) {
        atomic_store(&c->ctl->host_sleeping, 1);
        uint32_t v = atomic_load(rep);
        if (v == c->seq) {
            atomic_store_explicit(&c->ctl->host_sleeping, 0, memory_order_relaxed);
            atomic_thread_fence(memory_order_acquire);
            adapt(c, now_ns() - slept);
            return ISO_WAIT_REPLY;
        }
        if (is_upcall(c, v)) {
            atomic_store_explicit(&c->ctl->host_sleeping, 0, memory_order_relaxed);
            atomic_thread_fence(memory_order_acquire);
            return ISO_WAIT_UPCALL;
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
        cpex__iso_futex_wait(rep, v, deadline_ns - t);
    }
}

void cpex__iso_chan_mark_dead(cpex__iso_chan *c)
{
    atomic_fetch_or(&c->ctl->rep_seq, ISO_SEQ_DEAD);
    cpex__iso_futex_wake(&c->ctl->rep_seq);
}

uint32_t cpex__iso_chan_wait_request(cpex__iso_chan *c)
{
    _Atomic uint32_t *req = &c->ctl->req_seq;
    if (!c->spin_ns)
        c->spin_ns = ISO_SPIN_MIN_NS;
    int64_t start = now_ns();
    for (unsigned i = 0;; i++) {
        uint32_t v = atomic_load_explicit(req, memory_order_acquire);
        if (v != c->seq)
            return v;
        int64_t t = spin_step(i);
        if (t && t - start >= c->spin_ns)
            break;
    }
    int64_t slept = now_ns();
    for (;;) {
        atomic_store(&c->ctl->worker_sleeping, 1);
        uint32_t v = atomic_load(req);
        if (v != c->seq) {
            atomic_store_explicit(&c->ctl->worker_sleeping, 0, memory_order_relaxed);
            atomic_thread_fence(memory_order_acquire);
            adapt(c, now_ns() - slept);
            return v;
        }
        cpex__iso_futex_wait(req, v, -1);
    }
}

void cpex__iso_chan_reply(cpex__iso_chan *c, uint32_t seq, uint32_t len)
{
    c->seq = seq;
    c->ctl->rep_len = len;
    atomic_store(&c->ctl->rep_seq, seq);
    if (atomic_load(&c->ctl->host_sleeping))
        cpex__iso_futex_wake(&c->ctl->rep_seq);
}

void cpex__iso_chan_answer(cpex__iso_chan *c, uint32_t off, uint32_t len)
{
    c->ctl->up_ans_off = off;
    c->ctl->up_ans_len = len;
    /* seq_cst, as in cpex__iso_chan_post: seen before worker_sleeping is read. */
    atomic_store(&c->ctl->up_done, c->up);
    if (atomic_load(&c->ctl->worker_sleeping))
        cpex__iso_futex_wake(&c->ctl->up_done);
}

void cpex__iso_chan_upcall(cpex__iso_chan *c, uint32_t len, uint32_t *ans_off, uint32_t *ans_len)
{
    uint32_t v = ((c->up + 1) & ISO_SEQ_MASK) | ISO_SEQ_UPCALL;
    c->up = v;
    c->ctl->up_len = len;
    atomic_store(&c->ctl->rep_seq, v);
    if (atomic_load(&c->ctl->host_sleeping))
        cpex__iso_futex_wake(&c->ctl->rep_seq);
    _Atomic uint32_t *done = &c->ctl->up_done;
    int64_t start = now_ns();
    bool answered = false;
    for (unsigned i = 0; !answered; i++) {
        if (atomic_load_explicit(done, memory_order_acquire) == v)
            answered = true;
        else {
            int64_t t = spin_step(i);
            if (t && t - start >= c->spin_ns)
                break;
        }
    }
    while (!answered) {
        atomic_store(&c->ctl->worker_sleeping, 1);
        uint32_t d = atomic_load(done);
        if (d == v) {
            atomic_store_explicit(&c->ctl->worker_sleeping, 0, memory_order_relaxed);
            atomic_thread_fence(memory_order_acquire);
            answered = true;
        } else {
            cpex__iso_futex_wait(done, d, -1);
        }
    }
    *ans_off = c->ctl->up_ans_off;
    *ans_len = c->ctl->up_ans_len;
}
