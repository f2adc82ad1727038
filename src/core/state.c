/*
 * state.c — what every state backend shares: options and their defaults,
 * creating a backend, the health counters and the once-per-outage log,
 * namespaces and Redis URLs.
 */
#include "core/state.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"
#include "util/clock.h"

#define DEFAULT_PREFIX "cpex:"
#define DEFAULT_CONNECT_MS 1000u
#define DEFAULT_COMMAND_MS 500u
#define DEFAULT_POOL 8u
#define DEFAULT_MAX_KEYS 1000000u
#define DEFAULT_MAX_BYTES (256u * 1024u * 1024u)

void cpex_state_options_init(cpex_state_options *o)
{
    if (!o)
        return;
    memset(o, 0, sizeof *o);
    o->struct_size = (uint32_t)sizeof *o;
    cpex__state_options_defaults(o);
}

void cpex__state_options_defaults(cpex_state_options *o)
{
    if (!o->connect_timeout_ms)
        o->connect_timeout_ms = DEFAULT_CONNECT_MS;
    if (!o->command_timeout_ms)
        o->command_timeout_ms = DEFAULT_COMMAND_MS;
    if (!o->pool_size)
        o->pool_size = DEFAULT_POOL;
    if (!o->max_keys)
        o->max_keys = DEFAULT_MAX_KEYS;
    if (!o->max_bytes)
        o->max_bytes = DEFAULT_MAX_BYTES;
}

const char *cpex_state_backend_name(uint32_t backend)
{
    switch (backend) {
    case CPEX_STATE_MEMORY: return "memory";
    case CPEX_STATE_REDIS: return "redis";
    default: return "unknown";
    }
}

static bool same_str(const char *a, const char *b)
{
    if (!a || !b)
        return a == b;
    return strcmp(a, b) == 0;
}

bool cpex__state_options_same(const cpex_state_options *a, const cpex_state_options *b)
{
    if (a->backend != b->backend)
        return false;
    if (a->backend == CPEX_STATE_MEMORY)
        return a->max_keys == b->max_keys && a->max_bytes == b->max_bytes;
    const char *pa = a->prefix ? a->prefix : DEFAULT_PREFIX;
    const char *pb = b->prefix ? b->prefix : DEFAULT_PREFIX;
    return same_str(a->url, b->url) && strcmp(pa, pb) == 0 && same_str(a->password, b->password) &&
           a->connect_timeout_ms == b->connect_timeout_ms &&
           a->command_timeout_ms == b->command_timeout_ms && a->pool_size == b->pool_size;
}

/* ------------------------------------------------------------------ */
/* Creating                                                            */
/* ------------------------------------------------------------------ */

int cpex__state_new(const cpex_state_options *o, const cpex__log_sink *log,
                    cpex__state_backend **out, char *why, size_t why_cap)
{
    cpex_state_options opts;
    cpex_state_options_init(&opts);
    *out = NULL;
    if (o) {
        if (o->struct_size < offsetof(cpex_state_options, url) || o->struct_size > sizeof opts) {
            snprintf(why, why_cap,
                     "state options: struct_size %u is not one this library knows (expected "
                     "%zu); call cpex_state_options_init",
                     o->struct_size, sizeof opts);
            return CPEX_E_INVALID;
        }
        memcpy(&opts, o, o->struct_size);
        opts.struct_size = (uint32_t)sizeof opts;
        cpex__state_options_defaults(&opts);
    }
    switch (opts.backend) {
    case CPEX_STATE_MEMORY: return cpex__state_memory_new(&opts, log, out, why, why_cap);
    case CPEX_STATE_REDIS: return cpex__state_redis_new(&opts, log, out, why, why_cap);
    default:
        snprintf(why, why_cap, "state backend %u is not one this library knows (memory or redis)",
                 opts.backend);
        return CPEX_E_INVALID;
    }
}

void cpex__state_free(cpex__state_backend *b)
{
    if (b)
        b->ops->free(b);
}

bool cpex__state_base_init(cpex__state_backend *b, const cpex__state_ops *ops,
                           const cpex_state_options *o, const cpex__log_sink *log)
{
    b->ops = ops;
    b->opts = *o;
    b->opts.url = o->url ? cpex__strdup(o->url) : NULL;
    b->opts.prefix = cpex__strdup(o->prefix ? o->prefix : DEFAULT_PREFIX);
    b->opts.password = o->password ? cpex__strdup(o->password) : NULL;
    b->log = log;
    b->key_prefix = "";
    b->key_prefix_len = 0;
    atomic_init(&b->calls, 0);
    atomic_init(&b->failures, 0);
    atomic_init(&b->unavailable, 0);
    atomic_init(&b->timeouts, 0);
    atomic_init(&b->outages, 0);
    atomic_init(&b->failing, false);
    pthread_mutex_init(&b->health_lock, NULL);
    return (!o->url || b->opts.url) && b->opts.prefix && (!o->password || b->opts.password);
}

void cpex__state_base_cleanup(cpex__state_backend *b)
{
    cpex__free((char *)b->opts.url);
    cpex__free((char *)b->opts.prefix);
    if (b->opts.password) {
        /* Do not leave the secret in freed memory. */
        volatile char *p = (volatile char *)b->opts.password;
        while (*p)
            *p++ = 0;
        cpex__free((char *)b->opts.password);
    }
    cpex__free(b->description);
    cpex__free(b->origin);
    pthread_mutex_destroy(&b->health_lock);
}

/* ------------------------------------------------------------------ */
/* Health                                                              */
/* ------------------------------------------------------------------ */

void cpex__state_note(cpex__state_backend *b, int32_t status, const cpex__state_err *e,
                      const char *plugin)
{
    atomic_fetch_add_explicit(&b->calls, 1, memory_order_relaxed);
    bool failed = status == CPEX_HOST_EUNAVAILABLE || status == CPEX_HOST_ETIMEOUT;
    if (!failed) {
        /* The common case: one relaxed load, no lock. */
        if (!atomic_load_explicit(&b->failing, memory_order_relaxed))
            return;
        pthread_mutex_lock(&b->health_lock);
        if (atomic_load(&b->failing)) {
            atomic_store(&b->failing, false);
            uint64_t n = atomic_load(&b->failures) - b->failures_at_start;
            double secs = (double)(cpex__now_ns() - b->failing_since) / 1e9;
            cpex__log(b->log, CPEX_LOG_WARN, NULL,
                      "state backend %s answers again, after %llu failed state call%s in %.1f s",
                      b->description, (unsigned long long)n, n == 1 ? "" : "s", secs);
        }
        pthread_mutex_unlock(&b->health_lock);
        return;
    }
    atomic_fetch_add_explicit(&b->failures, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(status == CPEX_HOST_ETIMEOUT ? &b->timeouts : &b->unavailable, 1,
                              memory_order_relaxed);
    if (atomic_load_explicit(&b->failing, memory_order_relaxed))
        return;
    pthread_mutex_lock(&b->health_lock);
    if (!atomic_load(&b->failing)) {
        atomic_store(&b->failing, true);
        atomic_fetch_add(&b->outages, 1);
        b->failing_since = cpex__now_ns();
        b->failures_at_start = atomic_load(&b->failures) - 1;
        cpex__log(b->log, CPEX_LOG_WARN, NULL,
                  "state backend %s %s (%s; first seen by plugin '%s'); state slots return %s "
                  "and each plugin decides, until it answers again (logged once per outage)",
                  b->description,
                  status == CPEX_HOST_ETIMEOUT ? "did not answer in time" : "is unavailable",
                  e && e->text[0] ? e->text : "no detail", plugin ? plugin : "(none)",
                  status == CPEX_HOST_ETIMEOUT ? "CPEX_HOST_ETIMEOUT" : "CPEX_HOST_EUNAVAILABLE");
    }
    pthread_mutex_unlock(&b->health_lock);
}

/* ------------------------------------------------------------------ */
/* Namespaces and prefixes                                             */
/* ------------------------------------------------------------------ */

static bool ns_byte(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == '-';
}

bool cpex__state_namespace_valid(const char *ns, char *why, size_t why_cap)
{
    size_t n = ns ? strlen(ns) : 0;
    if (n == 0 || n > CPEX__STATE_NS_MAX) {
        snprintf(why, why_cap, "a state namespace is 1 to %u bytes long (got %zu)",
                 CPEX__STATE_NS_MAX, n);
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (!ns_byte((unsigned char)ns[i])) {
            snprintf(why, why_cap,
                     "a state namespace holds only letters, digits, '_', '.' and '-' (byte %zu "
                     "is 0x%02x)",
                     i + 1, (unsigned)(unsigned char)ns[i]);
            return false;
        }
    }
    return true;
}

char *cpex__state_namespace_of(const char *name)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        n += ns_byte(*p) ? 1 : 3;
    if (n == 0 || n > CPEX__STATE_NS_MAX)
        return NULL;
    char *out = cpex__malloc(n + 1), *w = out;
    if (!out)
        return NULL;
    for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
        if (ns_byte(*p)) {
            *w++ = (char)*p;
        } else {
            *w++ = '%';
            *w++ = hex[*p >> 4];
            *w++ = hex[*p & 15];
        }
    }
    *w = '\0';
    return out;
}

bool cpex__state_prefix_valid(const char *prefix, char *why, size_t why_cap)
{
    size_t n = strlen(prefix);
    if (n > CPEX__STATE_PREFIX_MAX) {
        snprintf(why, why_cap, "the key prefix is at most %u bytes (got %zu)",
                 CPEX__STATE_PREFIX_MAX, n);
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (!cpex__state_key_byte((unsigned char)prefix[i])) {
            snprintf(why, why_cap,
                     "the key prefix may not hold control bytes, spaces or DEL (byte %zu is "
                     "0x%02x)",
                     i + 1, (unsigned)(unsigned char)prefix[i]);
            return false;
        }
    }
    return true;
}

/* ------------------------------------------------------------------ */
/* Redis URLs                                                          */
/* ------------------------------------------------------------------ */

void cpex__redis_url_cleanup(cpex__redis_url *u)
{
    cpex__free(u->host);
    cpex__free(u->user);
    if (u->password) {
        memset(u->password, 0, strlen(u->password));
        cpex__free(u->password);
    }
    memset(u, 0, sizeof *u);
}

/* A decimal number of at most 6 digits in [s, end), within [lo, hi]; -1 otherwise. */
static long small_number(const char *s, const char *end, long lo, long hi)
{
    long v = 0;
    if (s == end || end - s > 6)
        return -1;
    for (; s < end; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        v = v * 10 + (*s - '0');
    }
    return v >= lo && v <= hi ? v : -1;
}

int cpex__redis_url_parse(const char *url, cpex__redis_url *u, char *why, size_t why_cap)
{
    static const char scheme[] = "redis://";
    memset(u, 0, sizeof *u);
    u->port = 6379;
    if (!url || strncmp(url, scheme, sizeof scheme - 1) != 0) {
        snprintf(why, why_cap, "the URL must start with redis:// (e.g. redis://127.0.0.1:6379/0)");
        return CPEX__URL_BAD;
    }
    for (const char *c = url; *c; c++) {
        if ((unsigned char)*c <= 0x20 || *c == 0x7f) {
            snprintf(why, why_cap, "the URL may not hold spaces or control bytes");
            return CPEX__URL_BAD;
        }
    }
    const char *s = url + sizeof scheme - 1;
    const char *slash = strchr(s, '/');
    const char *end = slash ? slash : s + strlen(s);
    /* user info: everything before the last '@' of the authority */
    const char *at = NULL;
    for (const char *c = s; c < end; c++)
        if (*c == '@')
            at = c;
    if (at) {
        const char *colon = memchr(s, ':', (size_t)(at - s));
        if (!colon) {
            snprintf(why, why_cap,
                     "the URL's user part needs a password: redis://:PASSWORD@host or "
                     "redis://USER:PASSWORD@host");
            return CPEX__URL_BAD;
        }
        if (colon > s && !(u->user = cpex__strndup(s, (size_t)(colon - s))))
            goto oom;
        if (!(u->password = cpex__strndup(colon + 1, (size_t)(at - colon - 1))))
            goto oom;
        s = at + 1;
    }
    const char *host_end, *port_at = NULL;
    if (*s == '[') {
        host_end = memchr(s, ']', (size_t)(end - s));
        if (!host_end) {
            snprintf(why, why_cap, "the URL's IPv6 address has no closing ']'");
            goto bad;
        }
        if (!(u->host = cpex__strndup(s + 1, (size_t)(host_end - s - 1))))
            goto oom;
        if (host_end + 1 < end) {
            if (host_end[1] != ':') {
                snprintf(why, why_cap, "expected ':PORT' after the IPv6 address");
                goto bad;
            }
            port_at = host_end + 2;
        }
    } else {
        const char *colon = memchr(s, ':', (size_t)(end - s));
        host_end = colon ? colon : end;
        if (!(u->host = cpex__strndup(s, (size_t)(host_end - s))))
            goto oom;
        port_at = colon ? colon + 1 : NULL;
    }
    if (!u->host[0]) {
        snprintf(why, why_cap, "the URL has no host (e.g. redis://127.0.0.1:6379)");
        goto bad;
    }
    if (port_at) {
        long port = small_number(port_at, end, 1, 65535);
        if (port < 0) {
            snprintf(why, why_cap, "the port must be a number from 1 to 65535 (got '%.*s')",
                     (int)(end - port_at > 20 ? 20 : end - port_at), port_at);
            goto bad;
        }
        u->port = (int)port;
    }
    if (slash && slash[1]) {
        long db = small_number(slash + 1, slash + strlen(slash), 0, 100000);
        if (db < 0) {
            snprintf(why, why_cap,
                     "the database after '/' must be a number from 0 to 100000 "
                     "(got '%.20s')",
                     slash + 1);
            goto bad;
        }
        u->db = (int)db;
    }
    return CPEX__URL_OK;
oom:
    snprintf(why, why_cap, "out of memory");
    cpex__redis_url_cleanup(u);
    return CPEX__URL_NOMEM;
bad:
    cpex__redis_url_cleanup(u);
    return CPEX__URL_BAD;
}
