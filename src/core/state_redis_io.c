/*
 * state_redis_io.c — see state_redis_io.h. hiredis parses the replies
 * (redisReader); sending and waiting are ours, on a non-blocking socket,
 * with MSG_NOSIGNAL (a write to a Redis that has gone must not raise
 * SIGPIPE in the host).
 */
#include "core/state_redis_io.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "util/alloc.h"
#include "util/clock.h"

static int64_t now_ns(void) { return cpex__clock_ns(false); }

/* ------------------------------------------------------------------ */
/* Commands, in the Redis protocol                                     */
/* ------------------------------------------------------------------ */


void cpex__rio_init(cpex__rio_buf *o)
{
    o->p = o->small;
    o->len = 0;
    o->cap = sizeof o->small;
    o->heap = false;
    o->oom = false;
}

void cpex__rio_free(cpex__rio_buf *o)
{
    if (o->heap)
        cpex__free(o->p);
}

void cpex__rio_put(cpex__rio_buf *o, const void *bytes, size_t n)
{
    if (o->oom)
        return;
    if (o->len + n > o->cap) {
        size_t cap = o->cap * 2 > o->len + n ? o->cap * 2 : o->len + n + 64;
        char *p = o->heap ? cpex__realloc(o->p, cap) : cpex__malloc(cap);
        if (!p) {
            o->oom = true;
            return;
        }
        if (!o->heap)
            memcpy(p, o->small, o->len);
        o->p = p;
        o->cap = cap;
        o->heap = true;
    }
    memcpy(o->p + o->len, bytes, n);
    o->len += n;
}

void cpex__rio_count(cpex__rio_buf *o, char kind, size_t n)
{
    char buf[32];
    int k = snprintf(buf, sizeof buf, "%c%zu\r\n", kind, n);
    cpex__rio_put(o, buf, (size_t)k);
}

/* Append one command of `argc` arguments (NULL lens: NUL-terminated). */
void cpex__rio_cmd(cpex__rio_buf *o, int argc, const char *const *argv, const size_t *lens)
{
    cpex__rio_count(o, '*', (size_t)argc);
    for (int i = 0; i < argc; i++) {
        size_t n = lens && lens[i] != (size_t)-1 ? lens[i] : strlen(argv[i]);
        cpex__rio_count(o, '$', n);
        cpex__rio_put(o, argv[i], n);
        cpex__rio_put(o, "\r\n", 2);
    }
}


/* ------------------------------------------------------------------ */
/* Sockets with deadlines                                              */
/* ------------------------------------------------------------------ */

/* Wait for `events` on fd until `deadline`: 1 ready, 0 time is up, -1 error. */
int cpex__rio_wait(int fd, short events, int64_t deadline)
{
    for (;;) {
        int64_t left = deadline - now_ns();
        if (left <= 0)
            return 0;
        struct pollfd p = {fd, events, 0};
        struct timespec ts = {(time_t)(left / 1000000000), (long)(left % 1000000000)};
        int n = ppoll(&p, 1, &ts, NULL);
        if (n > 0)
            return 1;
        if (n == 0)
            continue; /* the loop re-checks the clock */
        if (errno != EINTR)
            return -1;
    }
}

void cpex__rio_close(cpex__rio_conn *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    if (c->reader)
        redisReaderFree(c->reader);
    c->reader = NULL;
}

int32_t cpex__rio_io_error(cpex__state_err *e, const char *what, int err)
{
    snprintf(e->text, sizeof e->text, "%s: %s", what, strerror(err));
    return CPEX_HOST_EUNAVAILABLE;
}

int32_t cpex__rio_timed_out(cpex__state_err *e, const char *what, int64_t budget_ns)
{
    snprintf(e->text, sizeof e->text, "no answer %s within %.0f ms", what, (double)budget_ns / 1e6);
    return CPEX_HOST_ETIMEOUT;
}

/* Send the buffer, then read `n` replies into r[] (freed by the caller). */
int32_t cpex__rio_exchange(cpex__rio_conn *c, const cpex__rio_buf *o, size_t n, redisReply **r,
                           int64_t deadline, int64_t budget, cpex__state_err *e)
{
    size_t off = 0;
    while (off < o->len) {
        ssize_t k = send(c->fd, o->p + off, o->len - off, MSG_NOSIGNAL);
        if (k > 0) {
            off += (size_t)k;
            continue;
        }
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
            return cpex__rio_io_error(e, "sending to Redis", errno);
        int w = cpex__rio_wait(c->fd, POLLOUT, deadline);
        if (w == 0)
            return cpex__rio_timed_out(e, "while sending", budget);
        if (w < 0)
            return cpex__rio_io_error(e, "waiting to send", errno);
    }
    size_t got = 0;
    while (got < n) {
        void *reply = NULL;
        if (redisReaderGetReply(c->reader, &reply) != REDIS_OK) {
            snprintf(e->text, sizeof e->text, "unreadable reply from Redis: %s", c->reader->errstr);
            return CPEX_HOST_EUNAVAILABLE;
        }
        if (reply) {
            r[got++] = reply;
            continue;
        }
        char buf[16384];
        ssize_t k = recv(c->fd, buf, sizeof buf, 0);
        if (k > 0) {
            if (redisReaderFeed(c->reader, buf, (size_t)k) != REDIS_OK) {
                snprintf(e->text, sizeof e->text, "unreadable reply from Redis");
                return CPEX_HOST_EUNAVAILABLE;
            }
            continue;
        }
        if (k == 0) {
            snprintf(e->text, sizeof e->text, "Redis closed the connection");
            return CPEX_HOST_EUNAVAILABLE;
        }
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return cpex__rio_io_error(e, "reading from Redis", errno);
        int w = cpex__rio_wait(c->fd, POLLIN, deadline);
        if (w == 0)
            return cpex__rio_timed_out(e, "from Redis", budget);
        if (w < 0)
            return cpex__rio_io_error(e, "waiting for Redis", errno);
    }
    return CPEX_HOST_OK;
}

void cpex__rio_free_replies(redisReply **r, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (r[i])
            freeReplyObject(r[i]);
}

void cpex__rio_arg(cpex__rio_buf *o, const char *bytes, size_t n)
{
    cpex__rio_count(o, '$', n);
    cpex__rio_put(o, bytes, n);
    cpex__rio_put(o, "\r\n", 2);
}
