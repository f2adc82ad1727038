/*
 * serve_conns.c — the open connections of `cpex serve`, and the thread that
 * keeps house: it cuts connections past the read deadline, drops expired
 * context ids and logs what background handlers failed at (each second).
 *
 * Why a deadline of our own: libmicrohttpd's connection timeout counts
 * silence, not time, so a client that sends one header byte every few
 * seconds (slowloris) would hold its connection for ever. Here a request
 * must arrive whole — request line, headers and body — within
 * --read-timeout seconds: counted from the connection's start for its
 * first request, from the request line for the next ones on a kept-alive
 * connection (the silence before a request line is the idle timeout's
 * business). A connection past the deadline is shut down (shutdown(2)):
 * libmicrohttpd sees the end of the stream and closes it the usual way.
 *
 * Race-free because libmicrohttpd reports a connection closed (and we
 * drop its entry, under the table's lock) before it closes the socket: the
 * descriptor we shut down is always the connection's own.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "serve.h"

typedef struct conn_entry {
    struct conn_entry *prev, *next;
    int fd;
    bool reading; /* a request is being received */
    bool cut;     /* shut down already */
    double since; /* when the request being read began */
    char peer[64];
} conn_entry;

struct serve_conns {
    serve_server *server;
    pthread_mutex_t lock; /* guards the list, `open` and `stop` */
    pthread_cond_t wake;
    bool stop;
    bool started;
    conn_entry *head;
    size_t open;
    pthread_t thread;
};

/* The peer as text, for log lines: "127.0.0.1:5432", "[::1]:5432", "unix". */
static void describe_peer(struct MHD_Connection *c, char *out, size_t cap)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    const struct sockaddr *sa = ci ? ci->client_addr : NULL;
    char ip[INET6_ADDRSTRLEN] = "";
    if (sa && sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &in->sin_addr, ip, sizeof ip);
        snprintf(out, cap, "%s:%u", ip, (unsigned)ntohs(in->sin_port));
    } else if (sa && sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof ip);
        snprintf(out, cap, "[%s]:%u", ip, (unsigned)ntohs(in6->sin6_port));
    } else {
        snprintf(out, cap, "unix");
    }
}

void serve_conns_notify(void *cls, struct MHD_Connection *c, void **socket_context,
                        enum MHD_ConnectionNotificationCode code)
{
    serve_server *s = cls;
    serve_conns *t = s->conns;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        conn_entry *e = calloc(1, sizeof *e);
        *socket_context = e;
        if (!e)
            return; /* untracked: only the idle timeout bounds it */
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        e->fd = ci ? ci->connect_fd : -1;
        e->reading = true;
        e->since = cli_now();
        describe_peer(c, e->peer, sizeof e->peer);
        atomic_fetch_add(&s->metrics.connections, 1);
        pthread_mutex_lock(&t->lock);
        e->next = t->head;
        if (t->head)
            t->head->prev = e;
        t->head = e;
        t->open++;
        pthread_mutex_unlock(&t->lock);
    } else if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
        conn_entry *e = *socket_context;
        if (!e)
            return;
        pthread_mutex_lock(&t->lock);
        if (e->prev)
            e->prev->next = e->next;
        else
            t->head = e->next;
        if (e->next)
            e->next->prev = e->prev;
        t->open--;
        pthread_mutex_unlock(&t->lock);
        free(e);
        *socket_context = NULL;
    }
}

static conn_entry *entry_of(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

void serve_conns_request_starts(serve_server *s, struct MHD_Connection *c)
{
    conn_entry *e = entry_of(c);
    if (!e)
        return;
    pthread_mutex_lock(&s->conns->lock);
    if (!e->reading) { /* a kept-alive connection's next request */
        e->reading = true;
        e->since = cli_now();
    }
    pthread_mutex_unlock(&s->conns->lock);
}

void serve_conns_request_read(serve_server *s, struct MHD_Connection *c)
{
    conn_entry *e = entry_of(c);
    if (!e)
        return;
    pthread_mutex_lock(&s->conns->lock);
    e->reading = false;
    pthread_mutex_unlock(&s->conns->lock);
}

size_t serve_conns_open(serve_server *s)
{
    pthread_mutex_lock(&s->conns->lock);
    size_t n = s->conns->open;
    pthread_mutex_unlock(&s->conns->lock);
    return n;
}

/* One round: cut the connections past the deadline. Lock held. Names at
   most `cap` peers in `peers` for the log; returns how many were cut. */
static size_t cut_late(serve_conns *t, double now, char (*peers)[64], size_t cap)
{
    size_t n = 0;
    double limit = t->server->opts->read_timeout;
    for (conn_entry *e = t->head; e; e = e->next) {
        if (!e->reading || e->cut || e->fd < 0 || now - e->since <= limit)
            continue;
        shutdown(e->fd, SHUT_RDWR);
        e->cut = true;
        if (n < cap)
            memcpy(peers[n], e->peer, sizeof peers[n]);
        n++;
    }
    return n;
}

static void *housekeeping(void *arg)
{
    serve_conns *t = arg;
    serve_server *s = t->server;
    /* A quarter of the deadline between rounds: a late connection goes at
       most 25% after its deadline; between 50 ms and 1 s. */
    double step = s->opts->read_timeout / 4;
    step = step < 0.05 ? 0.05 : step > 1.0 ? 1.0 : step;
    double next_expiry = cli_now() + 1.0;
    enum { NAMED = 16 };
    char peers[NAMED][64];
    pthread_mutex_lock(&t->lock);
    while (!t->stop) {
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        long ns = (long)(step * 1e9);
        until.tv_sec += ns / 1000000000L;
        until.tv_nsec += ns % 1000000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&t->wake, &t->lock, &until);
        if (t->stop)
            break;
        double now = cli_now();
        size_t cut = cut_late(t, now, peers, NAMED);
        pthread_mutex_unlock(&t->lock);
        /* Log outside the lock: the connection callbacks must not wait on stderr. */
        for (size_t i = 0; i < cut && i < NAMED; i++)
            serve_log(s, SERVE_WARN,
                      "closed the connection from %s: its request did not arrive whole within "
                      "%g s (--read-timeout)",
                      peers[i], s->opts->read_timeout);
        if (cut > NAMED)
            serve_log(s, SERVE_WARN, "closed %zu more connections at the read deadline",
                      cut - NAMED);
        atomic_fetch_add(&s->metrics.read_timeouts, cut);
        if (now >= next_expiry) {
            cli_contexts_expire(s->contexts);
            serve_report_background(s);
            next_expiry = now + 1.0;
        }
        pthread_mutex_lock(&t->lock);
    }
    pthread_mutex_unlock(&t->lock);
    return NULL;
}

serve_conns *serve_conns_start(serve_server *s)
{
    serve_conns *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->server = s;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&t->lock, NULL);
    pthread_cond_init(&t->wake, &ca);
    pthread_condattr_destroy(&ca);
    s->conns = t;
    int rc = pthread_create(&t->thread, NULL, housekeeping, t);
    if (rc != 0) {
        serve_log(s, SERVE_ERROR, "cannot start the housekeeping thread: %s", strerror(rc));
        s->conns = NULL;
        pthread_cond_destroy(&t->wake);
        pthread_mutex_destroy(&t->lock);
        free(t);
        return NULL;
    }
    t->started = true;
    return t;
}

void serve_conns_stop(serve_conns *t)
{
    if (!t)
        return;
    pthread_mutex_lock(&t->lock);
    t->stop = true;
    pthread_cond_signal(&t->wake);
    pthread_mutex_unlock(&t->lock);
    if (t->started)
        pthread_join(t->thread, NULL);
    /* The daemon is stopped: every connection has reported its close. */
    for (conn_entry *e = t->head, *next; e; e = next) {
        next = e->next;
        free(e);
    }
    pthread_cond_destroy(&t->wake);
    pthread_mutex_destroy(&t->lock);
    free(t);
}
