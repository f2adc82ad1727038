/*
 * state_redis.c — the Redis state backend.
 *
 * A small pool of connections (pool_size), each used by one slot call at a
 * time. hiredis reads the replies (redisReader); the connection itself is
 * ours: a non-blocking socket that every wait polls with the time left, so
 * no slot ever blocks past its deadline (hiredis's blocking calls time each
 * read separately, and its writes can raise SIGPIPE in the host; we send
 * with MSG_NOSIGNAL; state_redis_io.c is that wire). Commands are written
 * in the Redis protocol straight into one buffer, so a slot that needs
 * several commands (MULTI … EXEC) costs one round trip.
 *
 * Deadlines: a connection attempt ends by min(call deadline,
 * connect_timeout); a command exchange by min(call deadline,
 * command_timeout). Running out of time is CPEX_HOST_ETIMEOUT; a refused,
 * reset or closed connection is CPEX_HOST_EUNAVAILABLE. A connection that
 * failed or timed out mid-cpex__rio_exchange is closed (a late reply would answer the
 * next command). After a failed connection attempt no new one is made for
 * a backoff time (50 ms, doubling to 2 s, reset by a success): calls that
 * find no open connection meanwhile fail at once with EUNAVAILABLE instead
 * of each waiting for the connect timeout.
 */
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <hiredis.h>

#include "core/state.h"
#include "core/state_redis_io.h"
#include "util/alloc.h"
#include "util/clock.h"

#define BACKOFF_MIN_NS (50 * 1000000LL)
#define BACKOFF_MAX_NS (2000 * 1000000LL)
#define MAX_REPLIES 6


typedef struct redis_backend {
    cpex__state_backend base;
    cpex__redis_url url;
    const char *password; /* effective: the option's, else the URL's */
    int64_t connect_ns, command_ns;
    pthread_mutex_t lock; /* the pool and the backoff */
    pthread_cond_t freed;
    size_t pool_size;
    cpex__rio_conn *pool;
    int64_t retry_at; /* no connection attempt before this (monotonic ns) */
    int64_t backoff;
    char down_reason[256]; /* why the last attempt failed */
} redis_backend;

static int64_t now_ns(void) { return cpex__clock_ns(false); }

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

/* Open one connection to the address; *by_call: the call's deadline, not the
   connect timeout, cut it short. */
static int32_t dial(redis_backend *rb, cpex__rio_conn *c, int64_t deadline, cpex__state_err *e)
{
    char port[16];
    snprintf(port, sizeof port, "%d", rb->url.port);
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    int gai = getaddrinfo(rb->url.host, port, &hints, &res);
    if (gai != 0) {
        snprintf(e->text, sizeof e->text, "cannot resolve '%.80s': %s", rb->url.host,
                 gai_strerror(gai));
        return CPEX_HOST_EUNAVAILABLE;
    }
    int32_t st = CPEX_HOST_EUNAVAILABLE;
    snprintf(e->text, sizeof e->text, "no address for '%.80s'", rb->url.host);
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        int fd =
            socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            st = cpex__rio_io_error(e, "socket", errno);
            continue;
        }
        int rc = connect(fd, ai->ai_addr, ai->ai_addrlen);
        if (rc != 0 && errno == EINPROGRESS) {
            int w = cpex__rio_wait(fd, POLLOUT, deadline);
            if (w == 0) {
                close(fd);
                st = cpex__rio_timed_out(e, "to the connection attempt", rb->connect_ns);
                break; /* no time left for another address */
            }
            int soerr = 0;
            socklen_t sl = sizeof soerr;
            if (w < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0)
                soerr = errno;
            rc = soerr ? -1 : 0;
            errno = soerr;
        }
        if (rc != 0) {
            st = cpex__rio_io_error(e, "connecting to Redis", errno);
            close(fd);
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
        c->fd = fd;
        st = CPEX_HOST_OK;
        break;
    }
    freeaddrinfo(res);
    if (st != CPEX_HOST_OK)
        return st;
    c->reader = redisReaderCreate();
    if (!c->reader) {
        cpex__rio_close(c);
        snprintf(e->text, sizeof e->text, "out of memory");
        return CPEX_HOST_ENOMEM;
    }
    /* AUTH and SELECT, when asked for, before the first command. */
    cpex__rio_buf o;
    cpex__rio_init(&o);
    size_t n = 0;
    if (rb->password) {
        if (rb->url.user)
            CMD(&o, "AUTH", rb->url.user, rb->password);
        else
            CMD(&o, "AUTH", rb->password);
        n++;
    }
    char db[16];
    if (rb->url.db) {
        snprintf(db, sizeof db, "%d", rb->url.db);
        CMD(&o, "SELECT", db);
        n++;
    }
    if (n == 0 || o.oom) {
        cpex__rio_free(&o);
        if (o.oom) {
            cpex__rio_close(c);
            snprintf(e->text, sizeof e->text, "out of memory");
            return CPEX_HOST_ENOMEM;
        }
        return CPEX_HOST_OK;
    }
    redisReply *r[2] = {NULL, NULL};
    st = cpex__rio_exchange(c, &o, n, r, min64(deadline, now_ns() + rb->command_ns), rb->command_ns,
                            e);
    cpex__rio_free(&o);
    for (size_t i = 0; st == CPEX_HOST_OK && i < n; i++) {
        if (r[i]->type == REDIS_REPLY_ERROR) {
            snprintf(e->text, sizeof e->text, "%s refused: %.120s",
                     rb->password && i == 0 ? "AUTH" : "SELECT", r[i]->str);
            st = CPEX_HOST_EUNAVAILABLE;
        }
    }
    cpex__rio_free_replies(r, n);
    if (st != CPEX_HOST_OK)
        cpex__rio_close(c);
    return st;
}

/* ------------------------------------------------------------------ */
/* The pool                                                            */
/* ------------------------------------------------------------------ */

/* Take a free connection, preferring an open one; wait for one until deadline. */
static int32_t acquire(redis_backend *rb, int64_t deadline, cpex__rio_conn **out,
                       cpex__state_err *e)
{
    pthread_mutex_lock(&rb->lock);
    for (;;) {
        cpex__rio_conn *pick = NULL;
        for (size_t i = 0; i < rb->pool_size; i++) {
            cpex__rio_conn *c = &rb->pool[i];
            if (c->busy)
                continue;
            if (c->fd >= 0) {
                pick = c;
                break;
            }
            if (!pick)
                pick = c;
        }
        if (pick) {
            if (pick->fd < 0 && now_ns() < rb->retry_at) {
                snprintf(e->text, sizeof e->text, "%.200s; next connection attempt in %lld ms",
                         rb->down_reason, (long long)((rb->retry_at - now_ns()) / 1000000));
                pthread_mutex_unlock(&rb->lock);
                return CPEX_HOST_EUNAVAILABLE;
            }
            pick->busy = true;
            pthread_mutex_unlock(&rb->lock);
            *out = pick;
            return CPEX_HOST_OK;
        }
        struct timespec ts = {(time_t)(deadline / 1000000000), (long)(deadline % 1000000000)};
        if (pthread_cond_timedwait(&rb->freed, &rb->lock, &ts) == ETIMEDOUT &&
            now_ns() >= deadline) {
            pthread_mutex_unlock(&rb->lock);
            snprintf(e->text, sizeof e->text,
                     "all %zu connections stayed busy until the deadline (raise pool_size)",
                     rb->pool_size);
            return CPEX_HOST_ETIMEOUT;
        }
    }
}

static void release(redis_backend *rb, cpex__rio_conn *c)
{
    pthread_mutex_lock(&rb->lock);
    c->busy = false;
    pthread_cond_signal(&rb->freed);
    pthread_mutex_unlock(&rb->lock);
}

/* Connect a pooled connection; a failure that was not the call's own
   deadline starts (or lengthens) the backoff. */
static int32_t open_conn(redis_backend *rb, cpex__rio_conn *c, int64_t call_deadline,
                         cpex__state_err *e)
{
    int64_t start = now_ns();
    int64_t limit = start + rb->connect_ns;
    int32_t st = dial(rb, c, min64(call_deadline, limit), e);
    pthread_mutex_lock(&rb->lock);
    if (st == CPEX_HOST_OK) {
        rb->backoff = BACKOFF_MIN_NS;
        rb->retry_at = 0;
    } else if (!(st == CPEX_HOST_ETIMEOUT && call_deadline < limit)) {
        int64_t now = now_ns();
        rb->retry_at = now + rb->backoff;
        rb->backoff = min64(rb->backoff * 2, BACKOFF_MAX_NS);
        memcpy(rb->down_reason, e->text, sizeof rb->down_reason);
    }
    pthread_mutex_unlock(&rb->lock);
    return st;
}

/* One round trip: `n` replies to the commands in `o`. */
static int32_t run(redis_backend *rb, const cpex__rio_buf *o, size_t n, redisReply **r,
                   int64_t deadline, cpex__state_err *e)
{
    if (o->oom) {
        snprintf(e->text, sizeof e->text, "out of memory");
        return CPEX_HOST_ENOMEM;
    }
    cpex__rio_conn *c = NULL;
    int32_t st = acquire(rb, deadline, &c, e);
    if (st != CPEX_HOST_OK)
        return st;
    if (c->fd < 0)
        st = open_conn(rb, c, deadline, e);
    if (st == CPEX_HOST_OK) {
        st = cpex__rio_exchange(c, o, n, r, min64(deadline, now_ns() + rb->command_ns),
                                rb->command_ns, e);
        if (st != CPEX_HOST_OK) {
            cpex__rio_close(c);
            cpex__rio_free_replies(r, n);
            memset(r, 0, n * sizeof *r);
        }
    }
    release(rb, c);
    return st;
}

/* ------------------------------------------------------------------ */
/* Replies                                                             */
/* ------------------------------------------------------------------ */

static bool starts(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* The status of an error reply. */
static int32_t reply_error(const redisReply *r, cpex__state_err *e)
{
    const char *s = r->str ? r->str : "";
    snprintf(e->text, sizeof e->text, "Redis answered: %.200s", s);
    if (starts(s, "WRONGTYPE") || strstr(s, "not an integer"))
        return CPEX_HOST_ETYPE;
    if (strstr(s, "overflow"))
        return CPEX_HOST_EINVAL;
    if (starts(s, "OOM"))
        return CPEX_HOST_ENOMEM;
    return CPEX_HOST_EUNAVAILABLE; /* NOAUTH, LOADING, READONLY, MISCONF, … */
}

static int32_t unexpected(const redisReply *r, cpex__state_err *e)
{
    snprintf(e->text, sizeof e->text, "unexpected reply of type %d from Redis", r ? r->type : -1);
    return CPEX_HOST_EUNAVAILABLE;
}

static bool is_ok(const redisReply *r)
{
    return r && r->type == REDIS_REPLY_STATUS && r->str && strcmp(r->str, "OK") == 0;
}

/* The results of EXEC: its array, after MULTI's +OK and `queued` +QUEUED replies. */
static int32_t exec_results(redisReply **r, size_t queued, size_t want, redisReply ***items,
                            cpex__state_err *e)
{
    if (!is_ok(r[0]))
        return r[0]->type == REDIS_REPLY_ERROR ? reply_error(r[0], e) : unexpected(r[0], e);
    for (size_t i = 1; i <= queued; i++)
        if (r[i]->type == REDIS_REPLY_ERROR)
            return reply_error(r[i], e);
    redisReply *x = r[queued + 1];
    if (x->type == REDIS_REPLY_ERROR)
        return reply_error(x, e);
    if (x->type != REDIS_REPLY_ARRAY || x->elements != want)
        return unexpected(x, e);
    *items = x->element;
    return CPEX_HOST_OK;
}

/* ------------------------------------------------------------------ */
/* Operations                                                          */
/* ------------------------------------------------------------------ */


/* One command, one reply in *r (the caller frees it); an error reply is
   turned into its status here. */
static int32_t run_one(redis_backend *rb, int argc, const char *const *argv, const size_t *lens,
                       int64_t deadline, redisReply **r, cpex__state_err *e)
{
    cpex__rio_buf o;
    cpex__rio_init(&o);
    cpex__rio_cmd(&o, argc, argv, lens);
    *r = NULL;
    int32_t st = run(rb, &o, 1, r, deadline, e);
    cpex__rio_free(&o);
    if (st == CPEX_HOST_OK && (*r)->type == REDIS_REPLY_ERROR) {
        st = reply_error(*r, e);
        freeReplyObject(*r);
        *r = NULL;
    }
    return st;
}

static int32_t r_get(cpex__state_backend *b, const char *key, size_t klen, int64_t deadline,
                     char **value, size_t *len, cpex__state_err *e)
{
    const char *argv[] = {"GET", key};
    size_t lens[] = {3, klen};
    redisReply *r;
    int32_t st = run_one((redis_backend *)b, 2, argv, lens, deadline, &r, e);
    if (st != CPEX_HOST_OK)
        return st;
    if (r->type == REDIS_REPLY_NIL) {
        st = CPEX_HOST_ENOTFOUND;
    } else if (r->type == REDIS_REPLY_STRING) {
        *value = cpex__strndup(r->str, r->len);
        *len = r->len;
        st = *value ? CPEX_HOST_OK : CPEX_HOST_ENOMEM;
    } else {
        st = unexpected(r, e);
    }
    freeReplyObject(r);
    return st;
}

static int32_t r_set(cpex__state_backend *b, const char *key, size_t klen, const void *value,
                     size_t len, int64_t ttl_ms, int64_t deadline, cpex__state_err *e)
{
    char ttl[24];
    snprintf(ttl, sizeof ttl, "%" PRId64, ttl_ms);
    const char *argv[] = {"SET", key, value, "PX", ttl};
    size_t lens[] = {3, klen, len, 2, (size_t)-1};
    redisReply *r;
    int32_t st = run_one((redis_backend *)b, ttl_ms > 0 ? 5 : 3, argv, lens, deadline, &r, e);
    if (st != CPEX_HOST_OK)
        return st;
    if (!is_ok(r))
        st = unexpected(r, e);
    freeReplyObject(r);
    return st;
}

/*
 * MULTI; [SET key 0 NX PX ttl;] INCRBY key delta; PTTL key; EXEC — one round
 * trip, and atomic: the key is created with its time to live in the same
 * transaction that counts, so no replica can see a counter without expiry.
 */
static int32_t r_incr(cpex__state_backend *b, const char *key, size_t klen, int64_t delta,
                      int64_t ttl_ms, int64_t deadline, int64_t *value, int64_t *left,
                      cpex__state_err *e)
{
    redis_backend *rb = (redis_backend *)b;
    cpex__rio_buf o;
    cpex__rio_init(&o);
    char ttl[24], d[24];
    snprintf(ttl, sizeof ttl, "%" PRId64, ttl_ms);
    snprintf(d, sizeof d, "%" PRId64, delta);
    CMD(&o, "MULTI");
    size_t queued = 2;
    if (ttl_ms > 0) {
        cpex__rio_count(&o, '*', 6);
        cpex__rio_put(&o, "$3\r\nSET\r\n", 9);
        cpex__rio_arg(&o, key, klen);
        cpex__rio_put(&o, "$1\r\n0\r\n$2\r\nNX\r\n$2\r\nPX\r\n", 23);
        cpex__rio_arg(&o, ttl, strlen(ttl));
        queued = 3;
    }
    cpex__rio_count(&o, '*', 3);
    cpex__rio_put(&o, "$6\r\nINCRBY\r\n", 12);
    cpex__rio_arg(&o, key, klen);
    cpex__rio_arg(&o, d, strlen(d));
    cpex__rio_count(&o, '*', 2);
    cpex__rio_put(&o, "$4\r\nPTTL\r\n", 10);
    cpex__rio_arg(&o, key, klen);
    CMD(&o, "EXEC");
    redisReply *r[MAX_REPLIES] = {NULL};
    size_t n = queued + 2;
    int32_t st = run(rb, &o, n, r, deadline, e);
    cpex__rio_free(&o);
    if (st != CPEX_HOST_OK)
        return st;
    redisReply **x = NULL;
    st = exec_results(r, queued, queued, &x, e);
    if (st == CPEX_HOST_OK) {
        redisReply *count = x[queued - 2], *pttl = x[queued - 1];
        if (count->type == REDIS_REPLY_ERROR)
            st = reply_error(count, e);
        else if (count->type != REDIS_REPLY_INTEGER || pttl->type != REDIS_REPLY_INTEGER)
            st = unexpected(count, e);
        if (st == CPEX_HOST_OK) {
            if (value)
                *value = count->integer;
            if (left)
                *left = pttl->integer < 0 ? -1 : pttl->integer;
        }
    }
    cpex__rio_free_replies(r, n);
    return st;
}

static int32_t r_del(cpex__state_backend *b, const char *key, size_t klen, int64_t deadline,
                     cpex__state_err *e)
{
    const char *argv[] = {"DEL", key};
    size_t lens[] = {3, klen};
    redisReply *r;
    int32_t st = run_one((redis_backend *)b, 2, argv, lens, deadline, &r, e);
    if (st != CPEX_HOST_OK)
        return st;
    if (r->type == REDIS_REPLY_INTEGER)
        st = r->integer > 0 ? CPEX_HOST_OK : CPEX_HOST_ENOTFOUND;
    else
        st = unexpected(r, e);
    freeReplyObject(r);
    return st;
}

/* SADD, and with a ttl MULTI; SADD; PEXPIRE; EXEC (one round trip, atomic). */
static int32_t r_set_add(cpex__state_backend *b, const char *key, size_t klen, const void *member,
                         size_t len, int64_t ttl_ms, int64_t deadline, cpex__state_err *e)
{
    redis_backend *rb = (redis_backend *)b;
    cpex__rio_buf o;
    cpex__rio_init(&o);
    char ttl[24];
    snprintf(ttl, sizeof ttl, "%" PRId64, ttl_ms);
    const char *sadd[] = {"SADD", key, member};
    size_t sadd_lens[] = {4, klen, len};
    const char *pexpire[] = {"PEXPIRE", key, ttl};
    size_t pexpire_lens[] = {7, klen, (size_t)-1};
    size_t n = 1;
    if (ttl_ms > 0) {
        CMD(&o, "MULTI");
        cpex__rio_cmd(&o, 3, sadd, sadd_lens);
        cpex__rio_cmd(&o, 3, pexpire, pexpire_lens);
        CMD(&o, "EXEC");
        n = 4;
    } else {
        cpex__rio_cmd(&o, 3, sadd, sadd_lens);
    }
    redisReply *r[MAX_REPLIES] = {NULL};
    int32_t st = run(rb, &o, n, r, deadline, e);
    cpex__rio_free(&o);
    if (st != CPEX_HOST_OK)
        return st;
    redisReply *added = r[0];
    if (ttl_ms > 0) {
        redisReply **x = NULL;
        st = exec_results(r, 2, 2, &x, e);
        added = st == CPEX_HOST_OK ? x[0] : NULL;
    }
    if (added && added->type == REDIS_REPLY_ERROR)
        st = reply_error(added, e);
    else if (added && added->type != REDIS_REPLY_INTEGER)
        st = unexpected(added, e);
    cpex__rio_free_replies(r, n);
    return st;
}

static int32_t r_set_members(cpex__state_backend *b, const char *key, size_t klen, int64_t deadline,
                             cpex_str **members, size_t *count, cpex__state_err *e)
{
    const char *argv[] = {"SMEMBERS", key};
    size_t lens[] = {8, klen};
    redisReply *a;
    int32_t st = run_one((redis_backend *)b, 2, argv, lens, deadline, &a, e);
    if (st != CPEX_HOST_OK)
        return st;
    size_t total = a->type == REDIS_REPLY_ARRAY ? a->elements * sizeof(cpex_str) : 0;
    if (a->type != REDIS_REPLY_ARRAY)
        st = unexpected(a, e);
    for (size_t i = 0; st == CPEX_HOST_OK && i < a->elements; i++) {
        if (a->element[i]->type != REDIS_REPLY_STRING)
            st = unexpected(a->element[i], e);
        total += a->element[i]->len + 1;
    }
    cpex_str *out = st == CPEX_HOST_OK && a->elements ? cpex__malloc(total) : NULL;
    if (st == CPEX_HOST_OK && a->elements && !out)
        st = CPEX_HOST_ENOMEM;
    if (out) {
        /* one block: the array, then the members it points into */
        char *w = (char *)(out + a->elements);
        for (size_t i = 0; i < a->elements; i++) {
            memcpy(w, a->element[i]->str, a->element[i]->len);
            w[a->element[i]->len] = '\0';
            out[i].ptr = w;
            out[i].len = a->element[i]->len;
            w += a->element[i]->len + 1;
        }
        *members = out;
        *count = a->elements;
    }
    freeReplyObject(a);
    return st;
}

static int32_t r_ping(cpex__state_backend *b, int64_t deadline, cpex__state_err *e)
{
    const char *argv[] = {"PING"};
    redisReply *r;
    int32_t st = run_one((redis_backend *)b, 1, argv, NULL, deadline, &r, e);
    if (st != CPEX_HOST_OK)
        return st;
    if (r->type != REDIS_REPLY_STATUS)
        st = unexpected(r, e);
    freeReplyObject(r);
    return st;
}

static void r_free(cpex__state_backend *b)
{
    redis_backend *rb = (redis_backend *)b;
    for (size_t i = 0; rb->pool && i < rb->pool_size; i++)
        cpex__rio_close(&rb->pool[i]);
    cpex__free(rb->pool);
    cpex__redis_url_cleanup(&rb->url);
    pthread_cond_destroy(&rb->freed);
    pthread_mutex_destroy(&rb->lock);
    cpex__state_base_cleanup(b);
    cpex__free(rb);
}

static const cpex__state_ops redis_ops = {
    r_get, r_set, r_incr, r_del, r_set_add, r_set_members, r_ping, NULL, r_free,
};

int cpex__state_redis_new(const cpex_state_options *o, const cpex__log_sink *log,
                          cpex__state_backend **out, char *why, size_t why_cap)
{
    char reason[200];
    if (!o->url || !o->url[0]) {
        snprintf(why, why_cap,
                 "the redis state backend needs a url (e.g. redis://127.0.0.1:6379/0)");
        return CPEX_E_INVALID;
    }
    if (o->connect_timeout_ms > CPEX__STATE_TIMEOUT_MAX_MS ||
        o->command_timeout_ms > CPEX__STATE_TIMEOUT_MAX_MS) {
        snprintf(why, why_cap, "connect_timeout_ms and command_timeout_ms are 1 to %u",
                 CPEX__STATE_TIMEOUT_MAX_MS);
        return CPEX_E_INVALID;
    }
    if (o->pool_size > CPEX__STATE_POOL_MAX) {
        snprintf(why, why_cap, "pool_size is 1 to %u (got %u)", CPEX__STATE_POOL_MAX, o->pool_size);
        return CPEX_E_INVALID;
    }
    if (o->prefix && !cpex__state_prefix_valid(o->prefix, reason, sizeof reason)) {
        snprintf(why, why_cap, "%s", reason);
        return CPEX_E_INVALID;
    }
    redis_backend *rb = cpex__calloc(1, sizeof *rb);
    if (!rb) {
        snprintf(why, why_cap, "out of memory");
        return CPEX_E_NOMEM;
    }
    pthread_mutex_init(&rb->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&rb->freed, &ca);
    pthread_condattr_destroy(&ca);
    rb->backoff = BACKOFF_MIN_NS;
    bool ok = cpex__state_base_init(&rb->base, &redis_ops, o, log);
    int url_rc = ok ? cpex__redis_url_parse(o->url, &rb->url, reason, sizeof reason) : 0;
    if (url_rc != CPEX__URL_OK) {
        snprintf(why, why_cap, "state url '%.200s': %s", o->url, reason);
        r_free(&rb->base);
        return url_rc == CPEX__URL_NOMEM ? CPEX_E_NOMEM : CPEX_E_INVALID;
    }
    rb->password = rb->base.opts.password ? rb->base.opts.password : rb->url.password;
    rb->connect_ns = (int64_t)o->connect_timeout_ms * 1000000;
    rb->command_ns = (int64_t)o->command_timeout_ms * 1000000;
    rb->pool_size = o->pool_size;
    rb->pool = ok ? cpex__calloc(rb->pool_size, sizeof *rb->pool) : NULL;
    for (size_t i = 0; rb->pool && i < rb->pool_size; i++)
        rb->pool[i].fd = -1;
    bool v6 = rb->url.host && strchr(rb->url.host, ':');
    rb->base.description =
        ok ? cpex__asprintf("redis %s%s%s:%d db %d%s%s, prefix '%s'", v6 ? "[" : "", rb->url.host,
                            v6 ? "]" : "", rb->url.port, rb->url.db, rb->url.user ? ", user " : "",
                            rb->url.user ? rb->url.user : "", rb->base.opts.prefix)
           : NULL;
    if (!ok || !rb->pool || !rb->base.description) {
        r_free(&rb->base);
        snprintf(why, why_cap, "out of memory");
        return CPEX_E_NOMEM;
    }
    rb->base.key_prefix = rb->base.opts.prefix;
    rb->base.key_prefix_len = strlen(rb->base.opts.prefix);
    *out = &rb->base;
    return CPEX_OK;
}
