/*
 * rate_limit.c — at most `limit` calls per window per (subject, tool),
 * counted in the host's shared state, so every replica of a gateway that
 * points at one Redis enforces one budget.
 *
 *   - name: rate-limit
 *     kind: "lib:../build/plugins/librate_limit.so"
 *     hooks: [cmf.tool_pre_invoke]
 *     mode: sequential
 *     capabilities: [read_subject]     # without it every caller is "anonymous"
 *     config:
 *       limit: 3                       # calls per window (or max_per_second + burst)
 *       window_seconds: 6              # the window opens at a caller's first call
 *       on_state_error: deny           # deny (default) or allow when the state fails
 *
 * Each tool_call part of a cmf.tool_pre_invoke message counts one call for
 * (subject id, tool name) with the host's state_incr slot: the first call
 * creates the counter with the window as its time to live, in the same
 * atomic step, and every later one adds 1. A count above `limit` denies
 * with code `rate_limited` and details {subject, tool, retry_after_ms,
 * limit, window_seconds}; retry_after_ms is the time the counter has left.
 * Replicas sharing a Redis count into the same key, and an increment is
 * atomic there, so the budget holds exactly across them.
 *
 * When the state fails (CPEX_HOST_EUNAVAILABLE, CPEX_HOST_ETIMEOUT, …) the
 * plugin cannot know the count: `on_state_error: deny` (the default; a
 * security limit fails closed) denies with code `rate_limit_unavailable`,
 * `allow` lets the call through. The host logs the outage once.
 *
 * On a host without state slots (ABI 1.0) the plugin still loads (it claims
 * ABI 1.0 and checks for the slots) and counts in its own memory, per
 * process, with the same windows; it says so in the log when it is
 * created.
 *
 * On cmf.http_request (`cpex serve`'s /v1/authz: a JSON payload describing
 * an HTTP request) the counter is (subject, request path), one call per
 * request, and a denial asks for HTTP status 429 with a Retry-After header
 * in seconds (details.http_status and details.http_headers, which
 * `cpex serve` answers with).
 *
 * Thread-safe: the state slots are; the fallback table is guarded by one
 * mutex, held for a lookup and a little arithmetic.
 */
/* clock_gettime and pthreads are POSIX: ask for them, so the file also
   builds as `cc -std=c11` outside this tree (the build defines _GNU_SOURCE). */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
/* Load on 1.0 hosts too: the state slots are checked for, not assumed. */
#define CPEX_PLUGIN_ABI_MINOR 0u
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cpex/plugin.h>

/* One window of the fallback table (hosts without state slots). */
typedef struct window {
    struct window *next; /* hash chain */
    int64_t start_ns;    /* CLOCK_MONOTONIC when the window opened */
    int64_t count;
    size_t key_len;
    char key[];
} window;

typedef struct limiter {
    const cpex_host_api *host;
    int64_t limit; /* calls per window */
    int64_t window_ms;
    int deny_on_error; /* on_state_error: deny */
    int shared;        /* the host has state slots */
    /* fallback */
    size_t max_keys;
    pthread_mutex_t lock;
    size_t count;
    size_t nslots;
    window **slots;
} limiter;

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* FNV-1a: the fallback table never grows past max_keys, which bounds chains. */
static size_t hash(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ull;
    }
    return (size_t)h;
}

/* Drop the windows that have ended: a new one starts empty, so they carry nothing. */
static void sweep(limiter *self, int64_t now)
{
    for (size_t i = 0; i < self->nslots; i++) {
        window **pp = &self->slots[i];
        while (*pp) {
            window *w = *pp;
            if (now - w->start_ns >= self->window_ms * 1000000) {
                *pp = w->next;
                free(w);
                self->count--;
            } else {
                pp = &w->next;
            }
        }
    }
}

/* Count one call in the fallback table: the new count and the window's time left;
   -1 when the table is full of open windows or memory ran out. */
static int64_t count_local(limiter *self, const char *key, size_t key_len, int64_t *left_ms)
{
    int64_t now = now_ns(), window_ns = self->window_ms * 1000000, n;
    size_t slot = hash(key, key_len) % self->nslots;
    pthread_mutex_lock(&self->lock);
    window *w = self->slots[slot];
    while (w && !(w->key_len == key_len && memcmp(w->key, key, key_len) == 0))
        w = w->next;
    if (!w) {
        if (self->count >= self->max_keys)
            sweep(self, now);
        w = self->count < self->max_keys ? malloc(sizeof *w + key_len) : NULL;
        if (!w) {
            pthread_mutex_unlock(&self->lock);
            *left_ms = self->window_ms;
            return -1;
        }
        w->start_ns = now;
        w->count = 0;
        w->key_len = key_len;
        memcpy(w->key, key, key_len);
        w->next = self->slots[slot];
        self->slots[slot] = w;
        self->count++;
    }
    if (now - w->start_ns >= window_ns) {
        w->start_ns = now;
        w->count = 0;
    }
    n = ++w->count;
    *left_ms = (w->start_ns + window_ns - now + 999999) / 1000000;
    pthread_mutex_unlock(&self->lock);
    return n;
}

/* Append `n` bytes of `s` to the key, each byte outside [A-Za-z0-9._-] as %XX
   (state keys allow no spaces or control bytes; '%' itself is escaped, so
   two different inputs never give one key). */
static size_t put_escaped(char *out, size_t pos, const char *s, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '.' || c == '_' || c == '-') {
            out[pos++] = (char)c;
        } else {
            out[pos++] = '%';
            out[pos++] = hex[c >> 4];
            out[pos++] = hex[c & 15];
        }
    }
    return pos;
}

static const char *status_name(int32_t st)
{
    switch (st) {
    case CPEX_HOST_EUNAVAILABLE: return "unavailable";
    case CPEX_HOST_ETIMEOUT: return "timeout";
    case CPEX_HOST_ENOMEM: return "out of memory";
    case CPEX_HOST_ETYPE: return "the key holds something else";
    case CPEX_HOST_EINVAL: return "invalid argument";
    default: return "error";
    }
}

/* The caller's subject id, or "anonymous". */
static cpex_str subject_of(const cpex_host_api *host, const cpex_call *call)
{
    cpex_str subject = {NULL, 0};
    if (host->ext_get(call, CPEX_EXT_SUBJECT_ID, &subject) != CPEX_HOST_OK || !subject.ptr ||
        subject.len == 0) {
        subject.ptr = "anonymous";
        subject.len = strlen(subject.ptr);
    }
    return subject;
}

/*
 * Count one call of `subject` on `what` (a tool name, or an HTTP path when
 * `what_key` is "path"). CPEX_ALLOW when it is within the limit; else
 * denies, naming `what` under details.<what_key> (and asking for
 * `http_status` with a Retry-After header when it is not 0), and returns
 * CPEX_DENY.
 */
static int32_t count_or_deny(limiter *self, const cpex_call *call, cpex_str subject, cpex_str what,
                             const char *what_key, int http_status)
{
    const cpex_host_api *host = self->host;
    /* "<what>/<subject>", each cut to 150 bytes and escaped: at most 903
       bytes; an HTTP path gets an "http:" prefix so it never meets a tool. */
    size_t wlen = what.len > 150 ? 150 : what.len;
    size_t slen = subject.len > 150 ? 150 : subject.len;
    char key[1024];
    size_t n = 0;
    if (http_status) {
        memcpy(key, "http:", 5);
        n = 5;
    }
    n = put_escaped(key, n, what.ptr, wlen);
    key[n++] = '/';
    n = put_escaped(key, n, subject.ptr, slen);
    key[n] = '\0';

    int64_t count = 0, left_ms = -1;
    int32_t st = CPEX_HOST_OK;
    if (self->shared)
        st = host->state_incr(call, key, 1, self->window_ms, &count, &left_ms);
    else if ((count = count_local(self, key, n, &left_ms)) < 0)
        st = CPEX_HOST_ENOMEM;
    if (st != CPEX_HOST_OK) {
        if (!self->deny_on_error)
            return CPEX_ALLOW; /* on_state_error: allow */
        char reason[300];
        snprintf(reason, sizeof reason,
                 "rate limit state unavailable (%s); the call is denied because "
                 "on_state_error is deny",
                 status_name(st));
        cpex_json *details = host->json_new_object();
        if (details) {
            host->json_object_set(details, what_key, host->json_new_string(what.ptr, wlen));
            host->json_object_set(details, "state_status", host->json_new_integer(st));
            if (http_status)
                host->json_object_set(details, "http_status", host->json_new_integer(503));
        }
        host->deny(call, "rate_limit_unavailable", reason,
                   "the plugin could not count the call; set on_state_error: allow to let "
                   "calls through while the state backend is down",
                   details);
        return CPEX_DENY;
    }
    if (count <= self->limit)
        return CPEX_ALLOW;
    int64_t retry_ms = left_ms > 0 ? left_ms : self->window_ms;
    char reason[600];
    snprintf(reason, sizeof reason, "rate limit for '%.*s' on %s '%.*s' exceeded; retry in %lld ms",
             (int)(subject.len > 200 ? 200 : subject.len), subject.ptr, what_key, (int)wlen,
             what.ptr, (long long)retry_ms);
    cpex_json *details = host->json_new_object();
    if (details) {
        host->json_object_set(details, "subject", host->json_new_string(subject.ptr, slen));
        host->json_object_set(details, what_key, host->json_new_string(what.ptr, wlen));
        host->json_object_set(details, "retry_after_ms", host->json_new_integer(retry_ms));
        host->json_object_set(details, "limit", host->json_new_integer(self->limit));
        host->json_object_set(details, "window_seconds",
                              host->json_new_real((double)self->window_ms / 1000.0));
        if (http_status) {
            /* What `cpex serve` answers a denied HTTP request with. */
            char seconds[32];
            snprintf(seconds, sizeof seconds, "%lld", (long long)((retry_ms + 999) / 1000));
            cpex_json *headers = host->json_new_object();
            if (headers)
                host->json_object_set(headers, "retry-after",
                                      host->json_new_string(seconds, strlen(seconds)));
            host->json_object_set(details, "http_status", host->json_new_integer(http_status));
            host->json_object_set(details, "http_headers", headers);
        }
    }
    char description[160];
    snprintf(description, sizeof description,
             "the caller used up its calls for this %s in the current window", what_key);
    host->deny(call, "rate_limited", reason, description, details);
    return CPEX_DENY;
}

static int32_t on_pre(void *instance, const cpex_call *call)
{
    limiter *self = instance;
    const cpex_cmf_message *msg = cpex_call_cmf(call);
    cpex_str subject = subject_of(self->host, call);
    for (size_t i = 0; msg && i < msg->part_count; i++) {
        const cpex_cmf_tool_call *tc = cpex_part_tool_call(cpex_cmf_part_at(msg, i));
        if (!tc || !tc->name.ptr)
            continue;
        if (count_or_deny(self, call, subject, tc->name, "tool", 0) == CPEX_DENY)
            return CPEX_DENY;
    }
    return CPEX_ALLOW;
}

/* cmf.http_request: one call of (subject, path) per request. */
static int32_t on_http(void *instance, const cpex_call *call)
{
    limiter *self = instance;
    const cpex_host_api *host = self->host;
    const cpex_json *req = cpex_call_json(call);
    const cpex_json *p = req ? host->json_object_get(req, "path") : NULL;
    cpex_str path = {NULL, 0};
    path.ptr = p ? host->json_string(p, &path.len) : NULL;
    if (!path.ptr) {
        path.ptr = "/";
        path.len = 1;
    }
    return count_or_deny(self, call, subject_of(host, call), path, "path", 429);
}

static void destroy(void *instance)
{
    limiter *self = instance;
    for (size_t i = 0; i < self->nslots; i++) {
        window *w = self->slots[i];
        while (w) {
            window *next = w->next;
            free(w);
            w = next;
        }
    }
    free(self->slots);
    pthread_mutex_destroy(&self->lock);
    free(self);
}

static const cpex_handler_reg handlers[] = {
    CPEX_HANDLER("cmf.tool_pre_invoke", on_pre, "cmf"),
    CPEX_HANDLER("cmf.http_request", on_http, "json"),
};

/* A number member of the config: integer or real. Returns 0 if absent. */
static int config_number(const cpex_host_api *host, const cpex_plugin_config *config,
                         const char *key, double *out, char *err, size_t err_cap, int *bad)
{
    const cpex_json *v = cpex_config_get(host, config, key);
    if (!v)
        return 0;
    uint32_t t = host->json_type(v);
    if (t != CPEX_JSON_INTEGER && t != CPEX_JSON_REAL) {
        cpex_plugin_errorf(err, err_cap, "config.%s must be a number", key);
        *bad = 1;
        return 0;
    }
    *out = host->json_real(v);
    return 1;
}

/* limit + window_seconds, or the older max_per_second + burst (burst calls per
   burst / max_per_second seconds: the same average rate). 0 on a bad config. */
static int read_budget(const cpex_host_api *host, const cpex_plugin_config *config, int64_t *limit,
                       int64_t *window_ms, char *err, size_t err_cap)
{
    double lim = 0, win = 0, rate = 0, burst = 0;
    int bad = 0;
    int has_lim = config_number(host, config, "limit", &lim, err, err_cap, &bad);
    int has_win = config_number(host, config, "window_seconds", &win, err, err_cap, &bad);
    int has_rate = config_number(host, config, "max_per_second", &rate, err, err_cap, &bad);
    int has_burst = config_number(host, config, "burst", &burst, err, err_cap, &bad);
    if (bad)
        return 0;
    if ((has_lim || has_win) && (has_rate || has_burst)) {
        cpex_plugin_errorf(err, err_cap,
                           "config: give limit and window_seconds, or "
                           "max_per_second (and burst), not both");
        return 0;
    }
    if (has_lim || has_win) {
        if (!has_lim || !has_win) {
            cpex_plugin_errorf(err, err_cap,
                               "config.limit and config.window_seconds go "
                               "together, e.g. limit: 100, window_seconds: 60");
            return 0;
        }
        if (!(lim >= 1) || lim > 1e12 || lim != (double)(int64_t)lim) {
            cpex_plugin_errorf(err, err_cap,
                               "config.limit must be a whole number of calls, at "
                               "least 1 (got %g)",
                               lim);
            return 0;
        }
        if (!(win >= 0.001) || win > 31536000) {
            cpex_plugin_errorf(err, err_cap,
                               "config.window_seconds must be from 0.001 to "
                               "31536000 (got %g)",
                               win);
            return 0;
        }
        *limit = (int64_t)lim;
        *window_ms = (int64_t)(win * 1000.0 + 0.5);
        return 1;
    }
    if (!has_rate) {
        cpex_plugin_errorf(err, err_cap,
                           "config.max_per_second is required (or limit and window_seconds): "
                           "e.g. limit: 100, window_seconds: 60");
        return 0;
    }
    if (!(rate > 0) || rate > 1e9) {
        cpex_plugin_errorf(err, err_cap, "config.max_per_second must be above 0 (got %g)", rate);
        return 0;
    }
    if (!has_burst)
        burst = rate < 1 ? 1 : (double)(int64_t)rate; /* floor */
    if (!(burst >= 1) || burst > 1e9) {
        cpex_plugin_errorf(err, err_cap, "config.burst must be at least 1 (got %g)", burst);
        return 0;
    }
    *limit = (int64_t)burst;
    double ms = (double)*limit / rate * 1000.0;
    *window_ms = ms < 1 ? 1 : ms > 31536000000.0 ? 31536000000 : (int64_t)(ms + 0.5);
    return 1;
}

static int32_t create(const cpex_host_api *host, const cpex_plugin_config *config,
                      cpex_plugin_registration *out, char *err, size_t err_cap)
{
    int64_t limit = 0, window_ms = 0;
    double max_keys = 10000;
    int bad = 0;
    if (!read_budget(host, config, &limit, &window_ms, err, err_cap))
        return CPEX_CREATE_CONFIG_REJECTED;
    if (config_number(host, config, "max_keys", &max_keys, err, err_cap, &bad) &&
        (!(max_keys >= 1) || max_keys > 1e8)) {
        cpex_plugin_errorf(err, err_cap, "config.max_keys must be between 1 and 100000000");
        return CPEX_CREATE_CONFIG_REJECTED;
    }
    if (bad)
        return CPEX_CREATE_CONFIG_REJECTED;
    const char *on_error = cpex_config_string(host, config, "on_state_error", "deny");
    if (strcmp(on_error, "deny") != 0 && strcmp(on_error, "allow") != 0) {
        cpex_plugin_errorf(err, err_cap,
                           "config.on_state_error must be deny or allow (got '%.50s')", on_error);
        return CPEX_CREATE_CONFIG_REJECTED;
    }

    limiter *self = calloc(1, sizeof *self);
    if (!self) {
        cpex_plugin_errorf(err, err_cap, "out of memory");
        return CPEX_CREATE_INIT_FAILED;
    }
    self->host = host;
    self->limit = limit;
    self->window_ms = window_ms;
    self->deny_on_error = strcmp(on_error, "deny") == 0;
    self->max_keys = (size_t)max_keys;
    char why[256];
    self->shared = cpex_host_has_state(host, why, sizeof why);
    self->nslots = self->shared ? 0 : self->max_keys < 1024 ? 64 : 1024;
    self->slots = self->nslots ? calloc(self->nslots, sizeof *self->slots) : NULL;
    if ((self->nslots && !self->slots) || pthread_mutex_init(&self->lock, NULL) != 0) {
        free(self->slots);
        free(self);
        cpex_plugin_errorf(err, err_cap, "out of memory");
        return CPEX_CREATE_INIT_FAILED;
    }
    if (!self->shared)
        cpex_logf(host, NULL, CPEX_LOG_WARN,
                  "%s; counting in this process only, so each replica enforces its own limit", why);
    out->name = "rate-limit";
    out->version = "2.0.0";
    out->instance = self;
    out->destroy = destroy;
    out->handler_count = sizeof handlers / sizeof handlers[0];
    out->handlers = handlers;
    return CPEX_CREATE_OK;
}

CPEX_PLUGIN(create, "rate-limit", "2.0.0",
            "At most limit calls per window per subject and tool, counted in the host's shared "
            "state (Redis across replicas); denies with retry_after_ms",
            "cmf.tool_pre_invoke", "cmf.http_request")
