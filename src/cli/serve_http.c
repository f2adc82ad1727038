/*
 * serve_http.c — `cpex serve` on libmicrohttpd: the daemon, its limits,
 * the callbacks that follow a request from its request line to its end,
 * routing, and answering.
 *
 * The daemon runs a pool of --threads threads, each polling with epoll its
 * share of the connections (libmicrohttpd's thread pool mode): a request is
 * handled on the thread that reads it, so an invoke holds that thread (and
 * the other connections it serves) while the plugins run. The limits:
 *   - request line + headers: libmicrohttpd's per-connection memory pool
 *     (it answers 431 when they do not fit), and our own exact checks of
 *     --max-header-bytes and --max-headers (431);
 *   - body: --max-body (413: at once when Content-Length says so, else the
 *     connection is closed when the body passes the limit);
 *   - time: --idle-timeout (libmicrohttpd: silence), --read-timeout (ours,
 *     serve_conns.c: a whole request), --max-connections.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "output.h"
#include "serve.h"

/* ---- answering ---- */

enum MHD_Result serve_respond(serve_request *r, struct MHD_Connection *c, unsigned status,
                              const char *content_type, char *body, size_t len,
                              const char *const *headers)
{
    serve_server *s = r->server;
    struct MHD_Response *resp =
        body ? MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE)
             : MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    if (!resp) {
        free(body);
        serve_log(s, SERVE_ERROR, "out of memory answering a request");
        return MHD_NO;
    }
    if (content_type)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    for (size_t i = 0; headers && headers[i] && headers[i + 1]; i += 2) {
        if (MHD_add_response_header(resp, headers[i], headers[i + 1]) != MHD_YES)
            serve_log(s, SERVE_WARN, "could not add the response header '%s'", headers[i]);
    }
    /* During shutdown, tell kept-alive clients to go elsewhere. */
    if (atomic_load(&s->phase) == SERVE_STOPPING)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    enum MHD_Result rc = MHD_queue_response(c, status, resp);
    MHD_destroy_response(resp);
    r->answered = true;
    r->status = status;
    serve_metrics_request(&s->metrics, r->endpoint, status, cli_now() - r->t0);
    return rc;
}

/* A growing buffer for json_dump_callback: one pass over the document. */
typedef struct dump_buf {
    char *data;
    size_t len, cap;
} dump_buf;

static int dump_append(const char *chunk, size_t size, void *data)
{
    dump_buf *b = data;
    if (b->len + size + 2 > b->cap) { /* room for the newline and a NUL */
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < b->len + size + 2)
            cap *= 2;
        char *n = realloc(b->data, cap);
        if (!n)
            return -1;
        b->data = n;
        b->cap = cap;
    }
    memcpy(b->data + b->len, chunk, size);
    b->len += size;
    return 0;
}

enum MHD_Result serve_respond_json(serve_request *r, struct MHD_Connection *c, unsigned status,
                                   json_t *doc, const char *const *headers)
{
    /* The value `cpex run --json` prints, compact; not its terminal-safe
       spelling (cli_json_safe): a program reads this, and JSON escapes or
       not, the strings are the same. One line, newline-terminated. */
    dump_buf b = {NULL, 0, 0};
    int rc = doc ? json_dump_callback(doc, dump_append, &b, JSON_COMPACT | JSON_ENCODE_ANY) : -1;
    json_decref(doc);
    if (rc != 0 || !b.data) {
        free(b.data);
        serve_log(r->server, SERVE_ERROR, "out of memory answering a request");
        return MHD_NO;
    }
    b.data[b.len] = '\n';
    return serve_respond(r, c, status, "application/json", b.data, b.len + 1, headers);
}

enum MHD_Result serve_respond_error(serve_request *r, struct MHD_Connection *c, unsigned status,
                                    const char *message)
{
    /* One line per error answered: the target and the message may quote
       the client's bytes, serve_log escapes them. */
    serve_log(r->server, status >= 500 ? SERVE_ERROR : SERVE_WARN, "%s %s: %u: %s",
              r->method ? r->method : "?", r->uri, status, message ? message : "out of memory");
    return serve_respond_json(r, c, status, cli_error_json(0, message), NULL);
}

/* ---- routing ---- */

/* The path of the raw request target (up to '?'), compared to `path`. */
static bool path_is(const char *uri, const char *path)
{
    size_t n = strlen(path);
    return strncmp(uri, path, n) == 0 && (uri[n] == '\0' || uri[n] == '?');
}

static serve_endpoint route(const serve_server *s, const char *uri)
{
    if (path_is(uri, "/v1/invoke"))
        return EP_INVOKE;
    /* /v1/authz itself (nginx, Traefik) and everything below it (Envoy's
       path_prefix): serve_authz.c tells the two apart. */
    if (path_is(uri, "/v1/authz") || strncmp(uri, "/v1/authz/", 10) == 0)
        return EP_AUTHZ;
    if (path_is(uri, "/healthz"))
        return EP_HEALTHZ;
    if (path_is(uri, "/metrics"))
        return EP_METRICS;
    if (s->opts->null_endpoint && path_is(uri, "/v1/null"))
        return EP_NULL;
    return EP_OTHER;
}

static bool method_is(const char *method, const char *want) { return strcmp(method, want) == 0; }

/* Which methods an endpoint takes; NULL: any. */
static const char *allowed_methods(serve_endpoint ep)
{
    switch (ep) {
    case EP_INVOKE: return "POST";
    case EP_HEALTHZ:
    case EP_METRICS: return "GET, HEAD";
    default: return NULL;
    }
}

static bool method_allowed(serve_endpoint ep, const char *method)
{
    switch (ep) {
    case EP_INVOKE: return method_is(method, "POST");
    case EP_HEALTHZ:
    case EP_METRICS: return method_is(method, "GET") || method_is(method, "HEAD");
    default: return true;
    }
}

/* ---- the request's life ---- */

/* The request line has arrived (libmicrohttpd's URI callback): the
   request's own state starts here, with the target exactly as sent. */
static void *on_request_line(void *cls, const char *uri, struct MHD_Connection *c)
{
    serve_server *s = cls;
    serve_conns_request_starts(s, c);
    serve_request *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->server = s;
    r->uri = strdup(uri ? uri : "");
    r->t0 = cli_now();
    if (!r->uri) {
        free(r);
        return NULL;
    }
    atomic_fetch_add(&s->in_flight, 1);
    return r;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
    serve_server *s = cls;
    serve_request *r = *req_cls;
    (void)c;
    if (!r)
        return;
    if (!r->answered)
        atomic_fetch_add(&s->metrics.incomplete, 1);
    (void)toe;
    free(r->uri);
    free(r->body);
    free(r);
    *req_cls = NULL;
    atomic_fetch_sub(&s->in_flight, 1);
}

/* Header lines and their bytes, for the limits. */
typedef struct header_tally {
    size_t count, bytes;
} header_tally;

static enum MHD_Result tally_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                    size_t key_size, const char *value, size_t value_size)
{
    header_tally *t = cls;
    (void)kind;
    (void)key;
    (void)value;
    t->count++;
    t->bytes += key_size + value_size + 4; /* ": " and CRLF */
    return MHD_YES;
}

/* The first call of a request: its headers are complete. Checks what can
   be checked before the body; answers at once when something is wrong. */
static enum MHD_Result on_headers(serve_server *s, serve_request *r, struct MHD_Connection *c,
                                  const char *method)
{
    const serve_opts *o = s->opts;
    r->started = true;
    r->method = method;
    r->t0 = cli_now();
    r->endpoint = route(s, r->uri);
    header_tally t = {0, strlen(method) + strlen(r->uri) + 12};
    MHD_get_connection_values_n(c, MHD_HEADER_KIND, tally_header, &t);
    if (t.count > o->max_headers || t.bytes > o->max_header_bytes) {
        char msg[160];
        snprintf(msg, sizeof msg,
                 t.count > o->max_headers
                     ? "the request has %zu header lines; at most %zu are accepted"
                     : "the request line and headers take %zu bytes; at most %zu are accepted",
                 t.count > o->max_headers ? t.count : t.bytes,
                 t.count > o->max_headers ? o->max_headers : o->max_header_bytes);
        serve_conns_request_read(s, c);
        return serve_respond_error(r, c, MHD_HTTP_REQUEST_HEADER_FIELDS_TOO_LARGE, msg);
    }
    const char *cl =
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl && MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING)) {
        /* Two lengths: a proxy in front that believes the other one would
           see a different next request on this connection (smuggling).
           Refused, and the connection closed. */
        static const char msg[] = "the request has both Content-Length and Transfer-Encoding";
        const char *hdr[] = {MHD_HTTP_HEADER_CONNECTION, "close", NULL};
        serve_conns_request_read(s, c);
        serve_log(s, SERVE_WARN, "%s %s: 400: %s", method, r->uri, msg);
        return serve_respond_json(r, c, MHD_HTTP_BAD_REQUEST, cli_error_json(0, msg), hdr);
    }
    if (cl) {
        errno = 0;
        char *end = NULL;
        unsigned long long n = strtoull(cl, &end, 10);
        if (errno == 0 && end && *end == '\0' && n > o->max_body) {
            char msg[160];
            snprintf(msg, sizeof msg,
                     "the body has %llu bytes; at most %zu are accepted "
                     "(--max-body)",
                     n, o->max_body);
            serve_conns_request_read(s, c);
            return serve_respond_error(r, c, MHD_HTTP_CONTENT_TOO_LARGE, msg);
        }
    }
    if (!method_allowed(r->endpoint, method)) {
        char msg[160];
        snprintf(msg, sizeof msg, "%s takes %s",
                 r->endpoint == EP_INVOKE    ? "/v1/invoke"
                 : r->endpoint == EP_HEALTHZ ? "/healthz"
                                             : "/metrics",
                 allowed_methods(r->endpoint));
        const char *hdr[] = {MHD_HTTP_HEADER_ALLOW, allowed_methods(r->endpoint), NULL};
        serve_conns_request_read(s, c);
        serve_log(s, SERVE_WARN, "%s %s: 405: %s", method, r->uri, msg);
        return serve_respond_json(r, c, MHD_HTTP_METHOD_NOT_ALLOWED, cli_error_json(0, msg), hdr);
    }
    return MHD_YES;
}

/* A piece of the body. False when the body passes --max-body (or memory
   runs out): the connection is then closed. */
static bool add_body(serve_request *r, const char *data, size_t len)
{
    size_t max = r->server->opts->max_body;
    if (len > max || r->body_len > max - len) {
        r->too_large = true;
        return false;
    }
    if (r->body_len + len + 1 > r->body_cap) {
        size_t cap = r->body_cap ? r->body_cap : 1024;
        while (cap < r->body_len + len + 1)
            cap *= 2;
        char *b = realloc(r->body, cap);
        if (!b)
            return false;
        r->body = b;
        r->body_cap = cap;
    }
    memcpy(r->body + r->body_len, data, len);
    r->body_len += len;
    r->body[r->body_len] = '\0';
    return true;
}

/* The whole request has arrived: answer it. */
static enum MHD_Result dispatch(serve_server *s, serve_request *r, struct MHD_Connection *c,
                                const char *method)
{
    switch (r->endpoint) {
    case EP_HEALTHZ: return serve_healthz(r, c);
    case EP_METRICS: return serve_metrics_endpoint(r, c);
    case EP_NULL: return serve_null(r, c);
    case EP_OTHER:
        return serve_respond_error(r, c, MHD_HTTP_NOT_FOUND,
                                   "no such endpoint; there are /v1/invoke, /v1/authz, /healthz "
                                   "and /metrics");
    default: break;
    }
    if (atomic_load(&s->phase) != SERVE_READY)
        return serve_respond_error(r, c, MHD_HTTP_SERVICE_UNAVAILABLE,
                                   atomic_load(&s->phase) == SERVE_STARTING
                                       ? "the configuration is still being loaded"
                                       : "the server is shutting down");
    if (r->endpoint == EP_INVOKE)
        return serve_invoke(r, c);
    return serve_authz(r, c, method);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **req_cls)
{
    serve_server *s = cls;
    serve_request *r = *req_cls;
    (void)url;
    (void)version;
    if (!r) {
        serve_log(s, SERVE_ERROR, "out of memory receiving a request; closing its connection");
        return MHD_NO;
    }
    if (!r->started)
        return on_headers(s, r, c, method);
    if (r->answered) { /* answered early: what else comes is not read */
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (*upload_data_size) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (!add_body(r, upload_data, n)) {
            if (r->too_large)
                serve_log(s, SERVE_WARN,
                          "%s %s: the body passed %zu bytes (--max-body); "
                          "closing the connection",
                          method, r->uri, s->opts->max_body);
            else
                serve_log(s, SERVE_ERROR,
                          "out of memory reading a request body; closing the "
                          "connection");
            return MHD_NO;
        }
        return MHD_YES;
    }
    serve_conns_request_read(s, c);
    return dispatch(s, r, c, method);
}

/* libmicrohttpd's own messages (a malformed request, a failed accept): one
   line each, escaped, through our log. */
static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    serve_server *s = cls;
    char text[512];
    vsnprintf(text, sizeof text, fmt, ap);
    size_t n = strlen(text);
    while (n && (text[n - 1] == '\n' || text[n - 1] == ' '))
        text[--n] = '\0';
    /* Said after each connection the handler closes, which has logged why. */
    if (strncmp(text, "Application reported internal error", 35) == 0)
        return;
    serve_log(s, SERVE_WARN, "http: %s", text);
}

bool serve_http_start(serve_server *s)
{
    const serve_opts *o = s->opts;
    /* A connection's memory pool must hold the request line and headers,
       the read buffer and the response's header: the header limit plus
       16 KiB. */
    size_t memory = o->max_header_bytes + 16384;
    unsigned flags =
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ITC | MHD_USE_ERROR_LOG;
    /* One thread is the daemon's own polling thread: libmicrohttpd warns
       about a pool of one, so the pool size is given only for more. */
    struct MHD_OptionItem threads[] = {
        {o->threads > 1 ? MHD_OPTION_THREAD_POOL_SIZE : MHD_OPTION_END, (intptr_t)o->threads, NULL},
        {MHD_OPTION_END, 0, NULL},
    };
    s->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, s, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log,
        s, /* first: it covers the options' messages */
        MHD_OPTION_LISTEN_SOCKET, (MHD_socket)s->listen_fd, MHD_OPTION_ARRAY, threads,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned int)o->max_connections,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)o->idle_timeout,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, memory, MHD_OPTION_URI_LOG_CALLBACK, on_request_line, s,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_NOTIFY_CONNECTION,
        serve_conns_notify, s, MHD_OPTION_STRICT_FOR_CLIENT, (int)1,
        MHD_OPTION_SIGPIPE_HANDLED_BY_APP, (int)1, MHD_OPTION_END);
    if (!s->daemon) {
        serve_log(s, SERVE_ERROR, "cannot start the HTTP server on %s (see the line above)",
                  s->address);
        return false;
    }
    return true;
}

void serve_http_quiesce(serve_server *s)
{
    if (!s->daemon)
        return;
    MHD_socket fd = MHD_quiesce_daemon(s->daemon);
    if (fd != MHD_INVALID_SOCKET)
        close(fd);
    s->listen_fd = -1;
}

void serve_http_stop(serve_server *s)
{
    if (s->daemon)
        MHD_stop_daemon(s->daemon);
    s->daemon = NULL;
}
