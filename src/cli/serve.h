/*
 * serve.h — what the files of `cpex serve` share (docs/serve.md).
 *
 *   cmd_serve.c     options, start, the signal loop, graceful shutdown
 *   serve_http.c    the libmicrohttpd daemon: callbacks, limits, routing
 *   serve_invoke.c  POST /v1/invoke, /healthz, /v1/null
 *   serve_authz.c   /v1/authz: forward auth for nginx, Envoy, Traefik
 *   serve_metrics.c GET /metrics: counters and latency histograms
 *   serve_conns.c   open connections, the read deadline, housekeeping
 *   serve_listen.c  the listening socket (TCP or Unix)
 *
 * The HTTP library stays in these files and in the cpex command: libcpex
 * itself knows nothing of it.
 */
#ifndef CPEX_CLI_SERVE_H
#define CPEX_CLI_SERVE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <microhttpd.h>

#include "cli.h"
#include "contexts.h"

/* ---- options (cmd_serve.c) ---- */

typedef struct serve_opts {
    const char *config;
    const char *listen;    /* "ADDR:PORT"; default 127.0.0.1:8787 */
    const char *unix_path; /* instead of listen */
    unsigned threads;      /* HTTP threads (libmicrohttpd's pool) */
    double context_ttl;    /* seconds an unused context id lives */
    size_t max_contexts;
    size_t max_body;         /* bytes of a request body */
    size_t max_headers;      /* header lines of a request */
    size_t max_header_bytes; /* bytes of the request line and headers */
    double read_timeout;     /* seconds to receive one whole request */
    unsigned idle_timeout;   /* seconds a connection may stay silent */
    unsigned max_connections;
    double drain_timeout; /* seconds to finish requests in flight at shutdown */
    unsigned deny_status; /* 0: the violation's details.http_status, else 403 */
    bool null_endpoint;   /* serve /v1/null (benchmarks) */
    bool verbose;
    bool no_watch;      /* do not reload CONFIG when it changes (SIGHUP still does) */
    size_t debounce_ms; /* the watch's quiet time; 0: the library's default */
    bool no_metrics;    /* no per-plugin metrics in /metrics */
} serve_opts;

/* ---- endpoints, for routing and metrics ---- */

typedef enum serve_endpoint {
    EP_INVOKE,
    EP_AUTHZ,
    EP_HEALTHZ,
    EP_METRICS,
    EP_NULL,
    EP_OTHER,
    EP_COUNT
} serve_endpoint;

/* ---- metrics (serve_metrics.c) ---- */

#define SERVE_BUCKETS 17
#define SERVE_STATUS_MAX 600

typedef struct serve_metrics {
    atomic_uint_fast64_t requests[EP_COUNT][SERVE_STATUS_MAX];
    atomic_uint_fast64_t latency[EP_COUNT][SERVE_BUCKETS + 1]; /* per bucket, last: +Inf */
    atomic_uint_fast64_t latency_ns[EP_COUNT];
    atomic_uint_fast64_t decisions[EP_COUNT][2]; /* allow, deny */
    atomic_uint_fast64_t soft_errors;
    atomic_uint_fast64_t incomplete;    /* requests never answered by us */
    atomic_uint_fast64_t read_timeouts; /* connections cut at the read deadline */
    atomic_uint_fast64_t connections;   /* accepted, ever */
    atomic_uint_fast64_t background_errors;
} serve_metrics;

/* ---- the server ---- */

enum { SERVE_STARTING = 0, SERVE_READY = 1, SERVE_STOPPING = 2 };

typedef struct serve_conns serve_conns;

typedef struct serve_server {
    const serve_opts *opts;
    cli_log log;
    cpex_manager *manager; /* created before listening; loaded once ready */
    atomic_int phase;      /* SERVE_STARTING, READY, STOPPING */
    cli_contexts *contexts;
    serve_metrics metrics;
    serve_conns *conns;
    struct MHD_Daemon *daemon;
    int listen_fd;
    char address[160];       /* what we listen on, for messages */
    atomic_size_t in_flight; /* requests between their request line and their end */
} serve_server;

/* One request, from its request line (libmicrohttpd's URI callback) to
   the end of its response. */
typedef struct serve_request {
    serve_server *server;
    char *uri;          /* the request target as received, raw */
    const char *method; /* libmicrohttpd's, valid until the request ends */
    serve_endpoint endpoint;
    bool started; /* the access handler has seen its headers */
    bool answered;
    bool too_large;
    unsigned status;
    double t0; /* when the headers were complete */
    char *body;
    size_t body_len, body_cap;
} serve_request;

/* ---- logging: one line per event, text from elsewhere escaped ---- */

enum { SERVE_INFO, SERVE_WARN, SERVE_ERROR };
void serve_log(serve_server *s, int level, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/** Log the errors background handlers left, one line each (cmd_serve.c). */
void serve_report_background(serve_server *s);

/* ---- HTTP (serve_http.c) ---- */

/** Start libmicrohttpd on s->listen_fd with the options' limits. False (logged) on failure. */
bool serve_http_start(serve_server *s);
/** Stop accepting: the listening socket is closed; connections open stay. */
void serve_http_quiesce(serve_server *s);
/** Close every connection, join the threads, free the daemon. */
void serve_http_stop(serve_server *s);

/**
 * Answer `r` with `status` and `body` (malloc'd, taken; may be NULL for
 * none) of type `content_type`, plus the header pairs in `headers`
 * (name, value, ..., NULL; may be NULL). Records the request's metrics.
 */
enum MHD_Result serve_respond(serve_request *r, struct MHD_Connection *c, unsigned status,
                              const char *content_type, char *body, size_t len,
                              const char *const *headers);
/**
 * Answer with the JSON error object {"error": message} (the form of
 * `cpex run`), and log one line naming the request and the message.
 */
enum MHD_Result serve_respond_error(serve_request *r, struct MHD_Connection *c, unsigned status,
                                    const char *message);
/** Answer with a JSON document (a new reference, taken); a trailing newline is added. */
enum MHD_Result serve_respond_json(serve_request *r, struct MHD_Connection *c, unsigned status,
                                   json_t *doc, const char *const *headers);

/* ---- endpoints ---- */

enum MHD_Result serve_invoke(serve_request *r, struct MHD_Connection *c);  /* serve_invoke.c */
enum MHD_Result serve_healthz(serve_request *r, struct MHD_Connection *c); /* serve_invoke.c */
enum MHD_Result serve_null(serve_request *r, struct MHD_Connection *c);    /* serve_invoke.c */
enum MHD_Result serve_authz(serve_request *r, struct MHD_Connection *c, const char *method);
enum MHD_Result serve_metrics_endpoint(serve_request *r, struct MHD_Connection *c);

/** Count one answered request of `endpoint` with `status`, `seconds` after its headers. */
void serve_metrics_request(serve_metrics *m, serve_endpoint endpoint, unsigned status,
                           double seconds);
/** Count a decision (allow or deny) of `endpoint`, and its soft errors. */
void serve_metrics_decision(serve_metrics *m, serve_endpoint endpoint, bool allowed,
                            size_t soft_errors);

/* ---- connections (serve_conns.c) ---- */

/** The table of open connections and its housekeeping thread (read deadline, context expiry). */
serve_conns *serve_conns_start(serve_server *s);
/** Stop the thread and free the table (after the daemon is stopped). NULL is allowed. */
void serve_conns_stop(serve_conns *conns);
/** libmicrohttpd's connection callback (MHD_OPTION_NOTIFY_CONNECTION). */
void serve_conns_notify(void *cls, struct MHD_Connection *c, void **socket_context,
                        enum MHD_ConnectionNotificationCode code);
/** A request starts on the connection (its request line arrived): the read clock restarts. */
void serve_conns_request_starts(serve_server *s, struct MHD_Connection *c);
/** The request on the connection has been read whole: no read deadline until the next one. */
void serve_conns_request_read(serve_server *s, struct MHD_Connection *c);
/** Number of open connections. */
size_t serve_conns_open(serve_server *s);

#endif
