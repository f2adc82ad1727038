/*
 * incarnation.c — one worker process of an isolated plugin, as the host
 * holds it (proxy.h): its shared memory and channels, taking and giving
 * back a channel, killing it, and one control request (LOAD, INIT, ...)
 * with its reply read strictly. Control requests go to channel 0, which
 * the worker's main thread serves.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "isolation/proto.h"
#include "isolation/proxy.h"
#include "isolation/spawn.h"
#include "util/alloc.h"
#include "util/clock.h"

/* While the supervisor starts a worker, how often it looks whether it died. */
#define START_SLICE_NS (2 * 1000000LL)

/* ------------------------------------------------------------------ */
/* Incarnations                                                        */
/* ------------------------------------------------------------------ */

void cpex__iso_inc_unref(cpex__iso_inc *inc)
{
    if (!inc || atomic_fetch_sub(&inc->refs, 1) != 1)
        return;
    if (inc->base)
        munmap(inc->base, inc->size);
    if (inc->pidfd >= 0)
        close(inc->pidfd);
    pthread_mutex_destroy(&inc->lock);
    cpex__free(inc->chans);
    cpex__free((void *)inc->busy);
    cpex__free(inc);
}

/* Shared memory for a new worker; *fd is the memfd to hand it. */
cpex__iso_inc *cpex__iso_inc_new(cpex__iso_proxy *p, int *fd, char *why, size_t cap)
{
    cpex__iso_inc *inc = cpex__calloc(1, sizeof *inc);
    if (!inc) {
        snprintf(why, cap, "out of memory");
        return NULL;
    }
    atomic_init(&inc->refs, 1);
    inc->proxy = p;
    inc->pidfd = -1;
    inc->pid = -1;
    pthread_mutex_init(&inc->lock, NULL);
    inc->size = ISO_SHM_SIZE(p->channels);
    inc->chans = cpex__calloc(p->channels, sizeof *inc->chans);
    inc->busy = cpex__calloc(p->channels, sizeof *inc->busy);
    *fd = memfd_create("cpex-worker", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (!inc->chans || !inc->busy || *fd < 0 || ftruncate(*fd, (off_t)inc->size) != 0 ||
        /* The worker must not shrink what the host reads: that would be
           SIGBUS in the host. */
        fcntl(*fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0) {
        snprintf(why, cap, "cannot make the worker's shared memory: %s", strerror(errno));
        goto fail;
    }
    inc->base = mmap(NULL, inc->size, PROT_READ | PROT_WRITE, MAP_SHARED, *fd, 0);
    if (inc->base == MAP_FAILED) {
        inc->base = NULL;
        snprintf(why, cap, "cannot map the worker's shared memory: %s", strerror(errno));
        goto fail;
    }
    cpex__iso_shm_head *head = inc->base;
    head->magic = ISO_SHM_MAGIC;
    head->version = ISO_PROTO_VERSION;
    head->channels = p->channels;
    head->area_size = ISO_AREA_SIZE;
    for (uint32_t i = 0; i < p->channels; i++)
        cpex__iso_chan_bind(&inc->chans[i], inc->base, p->channels, i);
    return inc;
fail:
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
    cpex__iso_inc_unref(inc);
    return NULL;
}

void cpex__iso_inc_condemn(cpex__iso_inc *inc, int why, const char *text)
{
    int expected = ISO_CONDEMN_NONE;
    if (!atomic_compare_exchange_strong(&inc->condemned, &expected, why))
        return;
    pthread_mutex_lock(&inc->lock);
    snprintf(inc->condemn_text, sizeof inc->condemn_text, "%s", text);
    pthread_mutex_unlock(&inc->lock);
    cpex__iso_pidfd_kill(inc->pidfd);
}

void cpex__iso_inc_mark_dead(cpex__iso_inc *inc)
{
    atomic_store(&inc->dead, 1);
    for (uint32_t i = 0; i < inc->proxy->channels; i++)
        cpex__iso_chan_mark_dead(&inc->chans[i]);
}

/* Take a free channel among the first `n`. */
static int try_take(cpex__iso_inc *inc, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        uint32_t free_ = 0;
        if (atomic_compare_exchange_strong(&inc->busy[i], &free_, 1))
            return (int)i;
    }
    return -1;
}

int cpex__iso_inc_take_channel(cpex__iso_inc *inc, bool control, int64_t deadline_ns)
{
    cpex__iso_proxy *p = inc->proxy;
    uint32_t n = control ? 1 : p->channels;
    int got = try_take(inc, n);
    if (got >= 0)
        return got;
    pthread_mutex_lock(&p->lock);
    atomic_fetch_add(&p->chan_waiters, 1);
    for (;;) {
        for (uint32_t i = 0; i < n && got < 0; i++) {
            uint32_t free_ = 0;
            if (atomic_compare_exchange_strong(&inc->busy[i], &free_, 1))
                got = (int)i;
        }
        if (got >= 0 || atomic_load(&inc->dead) || atomic_load(&inc->condemned))
            break;
        if (cpex__now_ns() >= deadline_ns)
            break;
        struct timespec ts = {(time_t)(deadline_ns / 1000000000), (long)(deadline_ns % 1000000000)};
        pthread_cond_timedwait(&p->cond, &p->lock, &ts);
    }
    atomic_fetch_sub(&p->chan_waiters, 1);
    pthread_mutex_unlock(&p->lock);
    return got;
}

void cpex__iso_inc_give_channel(cpex__iso_inc *inc, int ch)
{
    cpex__iso_proxy *p = inc->proxy;
    atomic_store(&inc->busy[ch], 0);
    if (atomic_load(&p->chan_waiters)) {
        pthread_mutex_lock(&p->lock);
        pthread_cond_broadcast(&p->cond);
        pthread_mutex_unlock(&p->lock);
    }
}

static const char *op_name(uint8_t op)
{
    switch (op) {
    case ISO_REQ_LOAD: return "loading the plugin";
    case ISO_REQ_PREPARE: return "setting up the sandbox";
    case ISO_REQ_INIT: return "initialize";
    case ISO_REQ_SHUTDOWN: return "shutdown";
    case ISO_REQ_DESTROY: return "destroy";
    default: return "a request";
    }
}

/* The supervisor's own check while it starts a worker (it is not polling). */
static bool reaped_now(cpex__iso_inc *inc)
{
    char text[300];
    int sig, status;
    int rc = cpex__iso_pidfd_reap(inc->pidfd, 0, &sig, &status, text, sizeof text);
    if (rc == 0)
        return false;
    inc->death_signal = sig;
    inc->death_status = status;
    snprintf(inc->death_text, sizeof inc->death_text, "%s", text);
    cpex__iso_inc_mark_dead(inc);
    return true;
}

int cpex__iso_inc_await(cpex__iso_inc *inc, int ch, uint8_t op, int64_t deadline_ns,
                        bool watch_death, cpex__iso_ctl_reply *out, uint8_t **buf, char *why,
                        size_t cap)
{
    *buf = NULL;
    cpex__iso_chan *c = &inc->chans[ch];
    for (;;) {
        int64_t until = deadline_ns;
        if (watch_death) {
            int64_t slice = cpex__now_ns() + START_SLICE_NS;
            until = slice < deadline_ns ? slice : deadline_ns;
        }
        int w = cpex__iso_chan_wait_reply(c, &inc->dead, until);
        if (w == ISO_WAIT_REPLY)
            break;
        if (w == ISO_WAIT_TIMEOUT && watch_death && !reaped_now(inc) &&
            cpex__now_ns() < deadline_ns)
            continue;
        if (atomic_load(&inc->dead)) {
            snprintf(why, cap, "the worker process %s during %s", inc->death_text, op_name(op));
            return -1;
        }
        char text[200];
        snprintf(text, sizeof text, "%s did not finish within the load timeout", op_name(op));
        cpex__iso_inc_condemn(inc, ISO_CONDEMN_TIMEOUT, text);
        snprintf(why, cap,
                 "%s did not finish within the load timeout (sandbox.load_timeout, "
                 "%.1f s); the worker was killed",
                 op_name(op), (double)inc->proxy->load_timeout_ns / 1e9);
        return -1;
    }
    /* Read once: a hostile worker may change it while we look. */
    uint32_t n = *(volatile uint32_t *)&c->ctl->rep_len;
    uint8_t *copy = n <= ISO_AREA_SIZE ? cpex__malloc(n ? n : 1) : NULL;
    if (copy && n)
        memcpy(copy, c->rep, n);
    char bad[200];
    if (!copy) {
        snprintf(bad, sizeof bad,
                 n > ISO_AREA_SIZE ? "a reply length past its area" : "out of memory");
    } else if (cpex__iso_ctl_reply_decode(op, copy, n, out, bad, sizeof bad)) {
        *buf = copy;
        return 0;
    }
    cpex__free(copy);
    char text[300];
    snprintf(text, sizeof text, "it sent a malformed reply to %s (%s)", op_name(op), bad);
    cpex__iso_inc_condemn(inc, ISO_CONDEMN_MALFORMED, text);
    snprintf(why, cap, "the worker sent a malformed reply to %s (%s); it was killed", op_name(op),
             bad);
    return -1;
}

int cpex__iso_inc_control(cpex__iso_inc *inc, uint8_t op, const uint8_t *req, size_t len,
                          int64_t deadline_ns, bool watch_death, cpex__iso_ctl_reply *out,
                          uint8_t **buf, char *why, size_t cap)
{
    *buf = NULL;
    int ch = cpex__iso_inc_take_channel(inc, true, deadline_ns);
    if (ch < 0) {
        snprintf(why, cap, "the worker's control channel stayed busy for %s", op_name(op));
        return -1;
    }
    cpex__iso_chan *c = &inc->chans[ch];
    memcpy(c->req, req, len);
    c->req[0] = op; /* LOAD's bytes serve PREPARE too */
    cpex__iso_chan_post(c, (uint32_t)len);
    int rc = cpex__iso_inc_await(inc, ch, op, deadline_ns, watch_death, out, buf, why, cap);
    cpex__iso_inc_give_channel(inc, ch);
    return rc;
}
