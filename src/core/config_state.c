/*
 * config_state.c — `plugin_settings.state` and a plugin's
 * `state_namespace` (see config.h, docs/configuration.md).
 *
 * The YAML reader hands over the keys of the `state:` mapping with their
 * positions and their values as JSON, so this file knows nothing of the
 * YAML tree: it checks names, types and ranges and says what to write
 * instead, each problem at its own line and column.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/config.h"
#include "core/state.h"
#include "util/alloc.h"
#include "util/suggest.h"

enum {
    K_BACKEND,
    K_URL,
    K_PREFIX,
    K_PASSWORD,
    K_CONNECT_TIMEOUT,
    K_COMMAND_TIMEOUT,
    K_POOL_SIZE,
    K_MAX_KEYS,
    K_MAX_BYTES,
    K_COUNT
};
static const char *const keys[K_COUNT] = {
    "backend",   "url",      "prefix",    "password", "connect_timeout_ms", "command_timeout_ms",
    "pool_size", "max_keys", "max_bytes",
};
/* Which backend a key belongs to (-1: both). */
static const int key_backend[K_COUNT] = {
    -1,
    CPEX_STATE_REDIS,
    CPEX_STATE_REDIS,
    CPEX_STATE_REDIS,
    CPEX_STATE_REDIS,
    CPEX_STATE_REDIS,
    CPEX_STATE_REDIS,
    CPEX_STATE_MEMORY,
    CPEX_STATE_MEMORY,
};
static const char *const backends[] = {"memory", "redis"};

typedef struct sctx {
    cpex__config_report_fn report;
    void *ctx;
    bool nomem;
} sctx;

static void say(sctx *s, cpex__pos pos, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void say(sctx *s, cpex__pos pos, const char *key, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    s->report(s->ctx, pos, key, fmt, ap);
    va_end(ap);
}

const char *cpex__json_kind(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "a mapping";
    case JSON_ARRAY: return "a list";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a float";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    case JSON_NULL: return "an empty value";
    }
    return "a value";
}

/* A non-empty string value, copied into *out; false (reported) otherwise. */
static bool want_text(sctx *s, const cpex__config_item *it, const char *name, char **out)
{
    if (!json_is_string(it->value) || json_string_length(it->value) == 0) {
        say(s, it->value_pos, name, "'%s' must be a non-empty string, got %s", name,
            json_is_string(it->value) ? "an empty string" : cpex__json_kind(it->value));
        return false;
    }
    if (strlen(json_string_value(it->value)) != json_string_length(it->value)) {
        say(s, it->value_pos, name, "'%s' must not contain a NUL character", name);
        return false;
    }
    cpex__free(*out);
    *out = cpex__strdup(json_string_value(it->value));
    if (!*out)
        s->nomem = true;
    return *out != NULL;
}

/* An integer value in [lo, hi]; false (reported) otherwise. */
static bool want_range(sctx *s, const cpex__config_item *it, const char *name, uint64_t lo,
                       uint64_t hi, const char *unit, uint64_t *out)
{
    json_int_t v = json_is_integer(it->value) ? json_integer_value(it->value) : -1;
    if (!json_is_integer(it->value) || v < 0 || (uint64_t)v < lo || (uint64_t)v > hi) {
        char got[64];
        if (json_is_integer(it->value))
            snprintf(got, sizeof got, "%" JSON_INTEGER_FORMAT, v);
        else
            snprintf(got, sizeof got, "%s", cpex__json_kind(it->value));
        say(s, it->value_pos, name,
            "'%s' must be an integer from %" PRIu64 " to %" PRIu64 "%s, got %s", name, lo, hi, unit,
            got);
        return false;
    }
    *out = (uint64_t)v;
    return true;
}

bool cpex__config_state(const cpex__config_item *items, size_t count, cpex__pos at,
                        cpex__config_report_fn report, void *ctx, cpex_state_options *out)
{
    sctx s = {report, ctx, false};
    cpex_state_options_init(out);
    out->struct_size = (uint32_t)sizeof *out;
    int first[K_COUNT] = {0};
    char *url = NULL, *prefix = NULL, *password = NULL;
    char name[64];
    bool has_backend = false;
    /* The backend first: whether the other keys apply depends on it. */
    for (size_t i = 0; i < count; i++) {
        if (strcmp(items[i].key, "backend") != 0)
            continue;
        const cpex__config_item *it = &items[i];
        const char *v = json_is_string(it->value) ? json_string_value(it->value) : NULL;
        has_backend = true;
        if (!v) {
            say(&s, it->value_pos, "plugin_settings.state.backend",
                "'plugin_settings.state.backend' must be memory or redis, got %s",
                cpex__json_kind(it->value));
        } else if (strcmp(v, "memory") == 0 || strcmp(v, "redis") == 0) {
            out->backend = strcmp(v, "redis") == 0 ? CPEX_STATE_REDIS : CPEX_STATE_MEMORY;
        } else {
            const char *sug = cpex__suggest(v, backends, 2);
            say(&s, it->value_pos, "plugin_settings.state.backend",
                "unknown state backend '%.100s'%s%s%s; valid backends: memory, redis", v,
                sug ? "; did you mean '" : "", sug ? sug : "", sug ? "'?" : "");
        }
        break;
    }
    for (size_t i = 0; i < count; i++) {
        const cpex__config_item *it = &items[i];
        int k = -1;
        for (int j = 0; j < K_COUNT; j++)
            if (strcmp(it->key, keys[j]) == 0)
                k = j;
        snprintf(name, sizeof name, "plugin_settings.state.%.30s", it->key);
        if (k < 0) {
            const char *sug = cpex__suggest(it->key, keys, K_COUNT);
            if (sug)
                say(&s, it->key_pos, name,
                    "unknown key '%.100s' in 'plugin_settings.state'; did you mean '%s'?", it->key,
                    sug);
            else
                say(&s, it->key_pos, name,
                    "unknown key '%.100s' in 'plugin_settings.state'; valid keys: backend, url, "
                    "prefix, password, "
                    "connect_timeout_ms, command_timeout_ms, pool_size (redis), max_keys, "
                    "max_bytes (memory)",
                    it->key);
            continue;
        }
        if (first[k]) {
            say(&s, it->key_pos, name, "duplicate key '%s' (first at line %d); keep one", it->key,
                first[k]);
            continue;
        }
        first[k] = it->key_pos.line > 0 ? it->key_pos.line : 1;
        if (key_backend[k] >= 0 && (uint32_t)key_backend[k] != out->backend) {
            say(&s, it->key_pos, name,
                "'%s' applies to the %s backend, but this state backend is %s%s", name,
                cpex_state_backend_name((uint32_t)key_backend[k]),
                cpex_state_backend_name(out->backend),
                out->backend == CPEX_STATE_MEMORY && !has_backend
                    ? " (the default); add backend: redis"
                    : "; remove it");
            continue;
        }
        uint64_t v = 0;
        char why[200];
        switch (k) {
        case K_BACKEND: break;
        case K_URL: {
            if (!want_text(&s, it, name, &url))
                break;
            cpex__redis_url u;
            int rc = cpex__redis_url_parse(url, &u, why, sizeof why);
            if (rc == CPEX__URL_NOMEM)
                s.nomem = true; /* out of memory is no fault of the URL's */
            else if (rc != CPEX__URL_OK)
                say(&s, it->value_pos, name, "'%s' is not a usable redis URL: %s", name, why);
            else
                cpex__redis_url_cleanup(&u);
            break;
        }
        case K_PREFIX:
            /* An empty prefix is allowed: keys then start with the namespace. */
            if (json_is_string(it->value) && json_string_length(it->value) == 0) {
                cpex__free(prefix);
                if (!(prefix = cpex__strdup("")))
                    s.nomem = true;
            } else if (want_text(&s, it, name, &prefix) &&
                       !cpex__state_prefix_valid(prefix, why, sizeof why)) {
                say(&s, it->value_pos, name, "'%s': %s", name, why);
            }
            break;
        case K_PASSWORD: want_text(&s, it, name, &password); break;
        case K_CONNECT_TIMEOUT:
        case K_COMMAND_TIMEOUT:
            if (want_range(&s, it, name, 1, CPEX__STATE_TIMEOUT_MAX_MS, " (milliseconds)", &v)) {
                if (k == K_CONNECT_TIMEOUT)
                    out->connect_timeout_ms = (uint32_t)v;
                else
                    out->command_timeout_ms = (uint32_t)v;
            }
            break;
        case K_POOL_SIZE:
            if (want_range(&s, it, name, 1, CPEX__STATE_POOL_MAX, " (connections)", &v))
                out->pool_size = (uint32_t)v;
            break;
        case K_MAX_KEYS:
            if (want_range(&s, it, name, 1, CPEX__STATE_MAX_KEYS_MAX, "", &v))
                out->max_keys = v;
            break;
        case K_MAX_BYTES:
            if (want_range(&s, it, name, CPEX__STATE_MAX_BYTES_MIN, CPEX__STATE_MAX_BYTES_MAX, "",
                           &v))
                out->max_bytes = v;
            break;
        }
    }
    if (out->backend == CPEX_STATE_REDIS && !first[K_URL])
        say(&s, at, "plugin_settings.state.url",
            "the redis state backend needs a url; add url: \"redis://HOST:PORT/DB\" (e.g. "
            "redis://127.0.0.1:6379/0)");
    out->url = url;
    out->prefix = prefix;
    out->password = password;
    return !s.nomem;
}

void cpex__config_state_cleanup(cpex_state_options *o)
{
    cpex__free((char *)o->url);
    cpex__free((char *)o->prefix);
    if (o->password)
        memset((char *)o->password, 0, strlen(o->password));
    cpex__free((char *)o->password);
    o->url = o->prefix = o->password = NULL;
}

bool cpex__config_state_namespace(const char *ns, char *why, size_t why_cap)
{
    return cpex__state_namespace_valid(ns, why, why_cap);
}
