/*
 * serve_metrics.c — GET /metrics: the server's own counters and latency
 * histograms, in the Prometheus text format (version 0.0.4).
 *
 * Counters are atomics bumped by the request threads; a scrape reads them
 * without stopping anyone, so two series of one scrape may be a few
 * requests apart (as with any Prometheus client).
 *
 * The per-plugin metrics of the manager join this page when the
 * observability work lands: render() appends the server's part, then
 * theirs, at the one place marked below.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "serve.h"

/* Upper bounds of the latency buckets, seconds: 50 µs to 10 s; and as the
   le label shows them (plain decimals, as people write them). */
static const double bucket_le[SERVE_BUCKETS] = {0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025,
                                                0.005,   0.01,   0.025,   0.05,   0.1,   0.25,
                                                0.5,     1,      2.5,     5,      10};
static const char *const bucket_label[SERVE_BUCKETS] = {
    "0.00005", "0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025",
    "0.05",    "0.1",    "0.25",    "0.5",    "1",     "2.5",    "5",     "10"};

static const char *const endpoint_names[EP_COUNT] = {"invoke",  "authz", "healthz",
                                                     "metrics", "null",  "other"};

void serve_metrics_request(serve_metrics *m, serve_endpoint ep, unsigned status, double seconds)
{
    if (status >= SERVE_STATUS_MAX)
        status = 0;
    atomic_fetch_add_explicit(&m->requests[ep][status], 1, memory_order_relaxed);
    size_t b = 0;
    while (b < SERVE_BUCKETS && seconds > bucket_le[b])
        b++;
    atomic_fetch_add_explicit(&m->latency[ep][b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&m->latency_ns[ep], (uint_fast64_t)(seconds * 1e9),
                              memory_order_relaxed);
}

void serve_metrics_decision(serve_metrics *m, serve_endpoint ep, bool allowed, size_t soft_errors)
{
    atomic_fetch_add_explicit(&m->decisions[ep][allowed ? 0 : 1], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&m->soft_errors, soft_errors, memory_order_relaxed);
}

/* ---- a growing text buffer ---- */

typedef struct text {
    char *buf;
    size_t len, cap;
    bool failed;
} text;

static void put(text *t, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
static void put(text *t, const char *fmt, ...)
{
    if (t->failed)
        return;
    for (int round = 0; round < 2; round++) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(t->buf ? t->buf + t->len : NULL, t->buf ? t->cap - t->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            t->failed = true;
            return;
        }
        if (t->buf && t->len + (size_t)n < t->cap) {
            t->len += (size_t)n;
            return;
        }
        size_t cap = t->cap ? t->cap : 4096;
        while (cap <= t->len + (size_t)n)
            cap *= 2;
        char *b = realloc(t->buf, cap);
        if (!b) {
            t->failed = true;
            return;
        }
        t->buf = b;
        t->cap = cap;
    }
}

static void head(text *t, const char *name, const char *type, const char *help)
{
    put(t, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static uint64_t load(const atomic_uint_fast64_t *v)
{
    return (uint64_t)atomic_load_explicit(v, memory_order_relaxed);
}

/* ---- the server's own metrics ---- */

static void server_metrics(serve_server *s, text *t)
{
    serve_metrics *m = &s->metrics;
    head(t, "cpex_serve_requests_total", "counter",
         "HTTP requests answered, by endpoint and status code.");
    for (int ep = 0; ep < EP_COUNT; ep++) {
        for (unsigned st = 0; st < SERVE_STATUS_MAX; st++) {
            uint64_t n = load(&m->requests[ep][st]);
            if (n)
                put(t, "cpex_serve_requests_total{endpoint=\"%s\",code=\"%u\"} %llu\n",
                    endpoint_names[ep], st, (unsigned long long)n);
        }
    }
    head(t, "cpex_serve_request_duration_seconds", "histogram",
         "Time from a request's complete headers to its queued answer, by endpoint.");
    for (int ep = 0; ep < EP_COUNT; ep++) {
        if (ep == EP_NULL && !s->opts->null_endpoint)
            continue;
        uint64_t cumulative = 0;
        for (int b = 0; b < SERVE_BUCKETS; b++) {
            cumulative += load(&m->latency[ep][b]);
            put(t, "cpex_serve_request_duration_seconds_bucket{endpoint=\"%s\",le=\"%s\"} %llu\n",
                endpoint_names[ep], bucket_label[b], (unsigned long long)cumulative);
        }
        cumulative += load(&m->latency[ep][SERVE_BUCKETS]);
        put(t, "cpex_serve_request_duration_seconds_bucket{endpoint=\"%s\",le=\"+Inf\"} %llu\n",
            endpoint_names[ep], (unsigned long long)cumulative);
        put(t, "cpex_serve_request_duration_seconds_sum{endpoint=\"%s\"} %.9f\n",
            endpoint_names[ep], (double)load(&m->latency_ns[ep]) / 1e9);
        put(t, "cpex_serve_request_duration_seconds_count{endpoint=\"%s\"} %llu\n",
            endpoint_names[ep], (unsigned long long)cumulative);
    }
    head(t, "cpex_serve_decisions_total", "counter",
         "Pipeline decisions of /v1/invoke and /v1/authz, allow or deny.");
    for (int ep = EP_INVOKE; ep <= EP_AUTHZ; ep++) {
        put(t, "cpex_serve_decisions_total{endpoint=\"%s\",decision=\"allow\"} %llu\n",
            endpoint_names[ep], (unsigned long long)load(&m->decisions[ep][0]));
        put(t, "cpex_serve_decisions_total{endpoint=\"%s\",decision=\"deny\"} %llu\n",
            endpoint_names[ep], (unsigned long long)load(&m->decisions[ep][1]));
    }
    head(t, "cpex_serve_soft_errors_total", "counter",
         "Soft errors the pipeline recorded in answered invokes (plugin errors that did not stop "
         "it).");
    put(t, "cpex_serve_soft_errors_total %llu\n", (unsigned long long)load(&m->soft_errors));
    head(t, "cpex_serve_background_errors_total", "counter",
         "Errors of fire-and-forget handlers, collected after they ran.");
    put(t, "cpex_serve_background_errors_total %llu\n",
        (unsigned long long)load(&m->background_errors));
    head(t, "cpex_serve_incomplete_requests_total", "counter",
         "Requests that ended without an answer from the server (malformed, cut, closed by the "
         "client).");
    put(t, "cpex_serve_incomplete_requests_total %llu\n", (unsigned long long)load(&m->incomplete));
    head(t, "cpex_serve_read_timeouts_total", "counter",
         "Connections closed because a request did not arrive whole within --read-timeout.");
    put(t, "cpex_serve_read_timeouts_total %llu\n", (unsigned long long)load(&m->read_timeouts));
    head(t, "cpex_serve_connections_total", "counter", "Connections accepted.");
    put(t, "cpex_serve_connections_total %llu\n", (unsigned long long)load(&m->connections));
    head(t, "cpex_serve_connections_open", "gauge", "Connections open now.");
    put(t, "cpex_serve_connections_open %zu\n", serve_conns_open(s));
    head(t, "cpex_serve_requests_in_flight", "gauge",
         "Requests between their request line and their end.");
    put(t, "cpex_serve_requests_in_flight %zu\n", atomic_load(&s->in_flight));
    head(t, "cpex_serve_contexts", "gauge",
         "Context ids holding plugin state for a later request.");
    put(t, "cpex_serve_contexts %zu\n", cli_contexts_count(s->contexts));
    head(t, "cpex_serve_contexts_expired_total", "counter",
         "Context ids dropped after --context-ttl seconds unused.");
    put(t, "cpex_serve_contexts_expired_total %zu\n", cli_contexts_expired(s->contexts));
    head(t, "cpex_serve_contexts_evicted_total", "counter",
         "Context ids dropped to stay within --max-contexts.");
    put(t, "cpex_serve_contexts_evicted_total %zu\n", cli_contexts_evicted(s->contexts));
    head(t, "cpex_serve_ready", "gauge",
         "1 when the configuration is loaded and initialized (as /healthz answers 200), else 0.");
    put(t, "cpex_serve_ready %d\n",
        atomic_load(&s->phase) == SERVE_READY && cpex_manager_is_initialized(s->manager));
    head(t, "cpex_serve_plugins", "gauge", "Plugins registered in the manager.");
    put(t, "cpex_serve_plugins %zu\n", cpex_manager_plugin_count(s->manager));
    cpex_reload_status rs;
    cpex_reload_status_init(&rs);
    cpex_manager_reload_status(s->manager, &rs);
    head(t, "cpex_serve_config_generation", "gauge",
         "The generation of the configuration serving (one more per applied load or reload).");
    put(t, "cpex_serve_config_generation %llu\n",
        (unsigned long long)cpex_manager_generation(s->manager));
    head(t, "cpex_serve_reloads_total", "counter",
         "Reloads of CONFIG (file changes and SIGHUP), by outcome.");
    put(t, "cpex_serve_reloads_total{result=\"applied\"} %llu\n", (unsigned long long)rs.successes);
    put(t, "cpex_serve_reloads_total{result=\"failed\"} %llu\n", (unsigned long long)rs.failures);
}

/* The whole page. malloc'd; NULL on OOM. */
static char *render(serve_server *s, size_t *len)
{
    text t = {0};
    server_metrics(s, &t);
    /* The manager's own families (per plugin and hook, the audit queue),
       unless --no-metrics turned its counting off. */
    if (!s->opts->no_metrics) {
        char *plugins = cpex_manager_metrics_text(s->manager);
        if (plugins)
            put(&t, "%s", plugins);
        else
            t.failed = true;
        free(plugins);
    }
    if (t.failed) {
        free(t.buf);
        return NULL;
    }
    *len = t.len;
    return t.buf;
}

enum MHD_Result serve_metrics_endpoint(serve_request *r, struct MHD_Connection *c)
{
    size_t len = 0;
    char *page = render(r->server, &len);
    if (!page)
        return serve_respond_error(r, c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
    return serve_respond(r, c, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", page, len,
                         NULL);
}
