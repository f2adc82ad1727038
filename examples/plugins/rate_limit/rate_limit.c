/*
 * rate_limit.c — a token bucket per (subject, tool).
 *
 *   - name: rate-limit
 *     kind: "lib:../build/plugins/librate_limit.so"
 *     hooks: [cmf.tool_pre_invoke]
 *     mode: sequential
 *     capabilities: [read_subject]     # without it every caller is "anonymous"
 *     config:
 *       max_per_second: 2              # refill rate (a number > 0; 0.5 = one call per 2 s)
 *       burst: 5                       # bucket size: calls allowed at once (default: max(1, rate))
 *       max_keys: 10000                # distinct (subject, tool) pairs kept (default 10000)
 *
 * Each tool_call part of a cmf.tool_pre_invoke message takes one token from
 * the bucket of (subject id, tool name). The subject comes from the
 * security extension (ext_get CPEX_EXT_SUBJECT_ID), which the host shows
 * only with the `read_subject` capability; a hidden or absent subject is
 * "anonymous", so all unidentified callers share one budget. An empty
 * bucket denies with code `rate_limited` and details
 * {subject, tool, retry_after_ms}.
 *
 * On cmf.http_request (`cpex serve`'s /v1/authz: a JSON payload describing
 * an HTTP request) the bucket is (subject, request path), one token per
 * request, and a denial asks for HTTP status 429 with a Retry-After header
 * in seconds (details.http_status and details.http_headers, which
 * `cpex serve` answers with).
 *
 * Thread-safe: invokes may run on many threads at once, so the table of
 * buckets is guarded by one mutex, held only for a lookup and a little
 * arithmetic.
 */
/* clock_gettime, gmtime_r and pthreads are POSIX: ask for them, so the file
   also builds as `cc -std=c11` outside this tree (the build defines _GNU_SOURCE). */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cpex/plugin.h>

typedef struct bucket {
    struct bucket *next; /* hash chain */
    double tokens;
    int64_t updated_ns;  /* CLOCK_MONOTONIC of the last refill */
    size_t key_len;
    char key[];          /* subject '\n' tool */
} bucket;

typedef struct limiter {
    const cpex_host_api *host;
    double rate;         /* tokens per second */
    double burst;        /* capacity */
    size_t max_keys;
    pthread_mutex_t lock;
    size_t count;        /* buckets in the table */
    size_t nslots;
    bucket **slots;
} limiter;

/* ceil() of a positive value, without libm: a plugin links nothing it can
   avoid, and an unresolved ceil would fail the dlopen of a host without libm. */
static int64_t ceil_pos(double x)
{
    int64_t i = (int64_t)x;
    return (double)i < x ? i + 1 : i;
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* FNV-1a: keys are short and chosen by callers, so any decent spread does;
   the table never grows past max_keys, which bounds the chains' length. */
static size_t hash(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ull;
    }
    return (size_t)h;
}

static void refill(const limiter *self, bucket *b, int64_t now)
{
    if (now > b->updated_ns) {
        b->tokens += (double)(now - b->updated_ns) / 1e9 * self->rate;
        if (b->tokens > self->burst)
            b->tokens = self->burst;
    }
    b->updated_ns = now;
}

/*
 * Drop the buckets that have refilled completely: a new bucket starts full,
 * so forgetting them changes nothing. Called with the lock held when the
 * table is full; keeps memory bounded when callers invent subjects.
 */
static void sweep(limiter *self, int64_t now)
{
    for (size_t i = 0; i < self->nslots; i++) {
        bucket **pp = &self->slots[i];
        while (*pp) {
            bucket *b = *pp;
            refill(self, b, now);
            if (b->tokens >= self->burst) {
                *pp = b->next;
                free(b);
                self->count--;
            } else {
                pp = &b->next;
            }
        }
    }
}

/*
 * Take one token for `key`. Returns 1 when taken, 0 when the bucket is
 * empty (with the wait until the next token in *retry_ms), -1 when the
 * table is full of active callers or memory ran out.
 */
static int take(limiter *self, const char *key, size_t key_len, int64_t *retry_ms)
{
    int64_t now = now_ns();
    size_t slot = hash(key, key_len) % self->nslots;
    int rc;
    pthread_mutex_lock(&self->lock);
    bucket *b = self->slots[slot];
    while (b && !(b->key_len == key_len && memcmp(b->key, key, key_len) == 0))
        b = b->next;
    if (!b) {
        if (self->count >= self->max_keys)
            sweep(self, now);
        b = self->count < self->max_keys ? malloc(sizeof *b + key_len + 1) : NULL;
        if (!b) {
            pthread_mutex_unlock(&self->lock);
            *retry_ms = ceil_pos(1000.0 / self->rate);
            return -1;
        }
        b->tokens = self->burst;
        b->updated_ns = now;
        b->key_len = key_len;
        memcpy(b->key, key, key_len);
        b->key[key_len] = '\0';
        b->next = self->slots[slot];
        self->slots[slot] = b;
        self->count++;
    }
    refill(self, b, now);
    if (b->tokens >= 1.0) {
        b->tokens -= 1.0;
        rc = 1;
    } else {
        *retry_ms = ceil_pos((1.0 - b->tokens) / self->rate * 1000.0);
        if (*retry_ms < 1)
            *retry_ms = 1;
        rc = 0;
    }
    pthread_mutex_unlock(&self->lock);
    return rc;
}

/* The caller: the subject id when the host shows it, else "anonymous". */
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
 * Take a token of (subject, what) for `call`. CPEX_ALLOW when there was
 * one; else denies, naming `what` under details.<what_key> (and asking for
 * `http_status` when it is not 0), and returns CPEX_DENY.
 */
static int32_t take_or_deny(limiter *self, const cpex_call *call, cpex_str subject, cpex_str what,
                            const char *what_key, int http_status)
{
    const cpex_host_api *host = self->host;
    /* Subject and tool joined by '\n', which neither can usefully hold,
       so ("a\nb","c") and ("a","b\nc") are the only keys that collide. */
    char key[512];
    int n = snprintf(key, sizeof key, "%.*s\n%.*s", (int)(subject.len > 250 ? 250 : subject.len),
                     subject.ptr, (int)(what.len > 250 ? 250 : what.len), what.ptr);
    if (n < 0)
        return CPEX_ALLOW;
    int64_t retry_ms = 0;
    int rc = take(self, key, (size_t)n < sizeof key ? (size_t)n : sizeof key - 1, &retry_ms);
    if (rc == 1)
        return CPEX_ALLOW;
    char reason[600];
    snprintf(reason, sizeof reason, "rate limit for '%.*s' on %s '%.*s' exceeded; retry in %lld ms",
             (int)(subject.len > 200 ? 200 : subject.len), subject.ptr, what_key,
             (int)(what.len > 200 ? 200 : what.len), what.ptr, (long long)retry_ms);
    cpex_json *details = host->json_new_object();
    if (details) {
        host->json_object_set(details, "subject", host->json_new_string(subject.ptr, subject.len));
        host->json_object_set(details, what_key, host->json_new_string(what.ptr, what.len));
        host->json_object_set(details, "retry_after_ms", host->json_new_integer(retry_ms));
        host->json_object_set(details, "max_per_second", host->json_new_real(self->rate));
        host->json_object_set(details, "burst", host->json_new_real(self->burst));
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
    if (rc == 0)
        snprintf(description, sizeof description,
                 "the caller used up its burst for this %s; tokens refill at max_per_second",
                 what_key);
    else
        snprintf(description, sizeof description,
                 "every tracked (subject, %s) pair is active; raise max_keys", what_key);
    host->deny(call, "rate_limited", rc == 0 ? reason : "rate limiter is tracking too many callers",
               description, details);
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
        if (take_or_deny(self, call, subject, tc->name, "tool", 0) == CPEX_DENY)
            return CPEX_DENY;
    }
    return CPEX_ALLOW;
}

/* cmf.http_request: one token of (subject, path) per request. */
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
    return take_or_deny(self, call, subject_of(host, call), path, "path", 429);
}

static void destroy(void *instance)
{
    limiter *self = instance;
    for (size_t i = 0; i < self->nslots; i++) {
        bucket *b = self->slots[i];
        while (b) {
            bucket *next = b->next;
            free(b);
            b = next;
        }
    }
    free(self->slots);
    pthread_mutex_destroy(&self->lock);
    free(self);
}

static const cpex_handler_reg handlers[] = {
    {"cmf.tool_pre_invoke", on_pre, "cmf"},
    {"cmf.http_request", on_http, "json"},
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

static int32_t create(const cpex_host_api *host, const cpex_plugin_config *config,
                      cpex_plugin_registration *out, char *err, size_t err_cap)
{
    double rate = 0, burst = 0, max_keys = 10000;
    int bad = 0;
    if (!config_number(host, config, "max_per_second", &rate, err, err_cap, &bad)) {
        if (!bad)
            cpex_plugin_errorf(err, err_cap,
                               "config.max_per_second is required: tokens refilled per second, "
                               "e.g. max_per_second: 5");
        return CPEX_PLUGIN_CONFIG_REJECTED;
    }
    if (!(rate > 0) || rate > 1e9) {
        cpex_plugin_errorf(err, err_cap, "config.max_per_second must be above 0 (got %g)", rate);
        return CPEX_PLUGIN_CONFIG_REJECTED;
    }
    if (!config_number(host, config, "burst", &burst, err, err_cap, &bad)) {
        if (bad)
            return CPEX_PLUGIN_CONFIG_REJECTED;
        burst = rate < 1 ? 1 : (double)(int64_t)rate; /* floor */
    }
    if (!(burst >= 1) || burst > 1e9) {
        cpex_plugin_errorf(err, err_cap, "config.burst must be at least 1 (got %g)", burst);
        return CPEX_PLUGIN_CONFIG_REJECTED;
    }
    if (config_number(host, config, "max_keys", &max_keys, err, err_cap, &bad) &&
        (!(max_keys >= 1) || max_keys > 1e8)) {
        cpex_plugin_errorf(err, err_cap, "config.max_keys must be between 1 and 100000000");
        return CPEX_PLUGIN_CONFIG_REJECTED;
    }
    if (bad)
        return CPEX_PLUGIN_CONFIG_REJECTED;

    limiter *self = calloc(1, sizeof *self);
    if (!self) {
        cpex_plugin_errorf(err, err_cap, "out of memory");
        return CPEX_PLUGIN_INIT_FAILED;
    }
    self->host = host;
    self->rate = rate;
    self->burst = burst;
    self->max_keys = (size_t)max_keys;
    self->nslots = self->max_keys < 1024 ? 64 : 1024;
    self->slots = calloc(self->nslots, sizeof *self->slots);
    if (!self->slots || pthread_mutex_init(&self->lock, NULL) != 0) {
        free(self->slots);
        free(self);
        cpex_plugin_errorf(err, err_cap, "out of memory");
        return CPEX_PLUGIN_INIT_FAILED;
    }
    out->name = "rate-limit";
    out->version = "1.0.0";
    out->instance = self;
    out->destroy = destroy;
    out->handler_count = sizeof handlers / sizeof handlers[0];
    out->handlers = handlers;
    return CPEX_PLUGIN_OK;
}

CPEX_PLUGIN(create, "rate-limit", "1.0.0",
            "Token bucket per subject and tool (max_per_second, burst); denies with "
            "retry_after_ms",
            "cmf.tool_pre_invoke", "cmf.http_request")
