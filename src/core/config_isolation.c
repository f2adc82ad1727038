/*
 * config_isolation.c — the `isolation:`, `workers:` and `sandbox:` keys of a
 * plugin entry (see config_isolation.h). The values arrive as JSON
 * converted by the YAML reader; each problem is reported with its dotted
 * key and what to write instead.
 */
#include "core/config_isolation.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/config.h"
#include "util/alloc.h"
#include "util/strv.h"
#include "util/suggest.h"

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* Bounds of the numbers, beyond which a value is a typo rather than a wish. */
#define ISO_MAX_WORKERS 64
#define ISO_MAX_MEMORY_MB (1024u * 1024u) /* 1 TiB */
#define ISO_MAX_OPEN_FILES 65536
#define ISO_MAX_CRASHES 1000000
#define ISO_MAX_SECONDS 86400.0
#define ISO_MAX_PATHS 256

enum {
    S_NETWORK,
    S_READ_PATHS,
    S_WRITE_PATHS,
    S_MEMORY_MB,
    S_CPU_SECONDS,
    S_REQUIRE,
    S_MAX_CRASHES,
    S_LOAD_TIMEOUT,
    S_OPEN_FILES,
    S_COUNT
};
static const char *const sandbox_keys[S_COUNT] = {
    "network",
    "read_paths",
    "write_paths",
    "memory_mb",
    "cpu_seconds_per_call",
    "require",
    "max_crashes_per_minute",
    "load_timeout",
    "open_files",
};

static void reportf(cpex__isolation_report_fn report, void *ctx, const char *key, const char *fmt,
                    ...) __attribute__((format(printf, 4, 5)));
static void reportf(cpex__isolation_report_fn report, void *ctx, const char *key, const char *fmt,
                    ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    report(ctx, key, msg);
}

/* A whole number in [min, max]; false (reported) otherwise. */
static bool want_count(const json_t *v, const char *key, json_int_t min, json_int_t max,
                       json_int_t *out, cpex__isolation_report_fn report, void *ctx)
{
    if (!json_is_integer(v)) {
        reportf(report, ctx, key, "'%s' must be a whole number from %lld to %lld, got %s", key,
                (long long)min, (long long)max, cpex__json_kind(v));
        return false;
    }
    json_int_t n = json_integer_value(v);
    if (n < min || n > max) {
        reportf(report, ctx, key, "'%s' must be from %lld to %lld, got %lld", key, (long long)min,
                (long long)max, (long long)n);
        return false;
    }
    *out = n;
    return true;
}

/* A positive number of seconds (at most a day). */
static bool want_seconds(const json_t *v, const char *key, double *out,
                         cpex__isolation_report_fn report, void *ctx)
{
    double d = json_is_number(v) ? json_number_value(v) : -1;
    if (!json_is_number(v) || !(d > 0) || !isfinite(d) || d > ISO_MAX_SECONDS) {
        reportf(report, ctx, key,
                "'%s' must be a positive number of seconds (at most %.0f), got %s", key,
                ISO_MAX_SECONDS, json_is_number(v) ? "a number out of range" : cpex__json_kind(v));
        return false;
    }
    *out = d;
    return true;
}

static bool want_bool(const json_t *v, const char *key, bool *out, cpex__isolation_report_fn report,
                      void *ctx)
{
    if (!json_is_boolean(v)) {
        reportf(report, ctx, key, "'%s' must be true or false, got %s", key, cpex__json_kind(v));
        return false;
    }
    *out = json_is_true(v);
    return true;
}

/* A list of paths: non-empty strings without NUL. NULL list on error (reported). */
static bool want_paths(const json_t *v, const char *key, char ***out, size_t *count,
                       cpex__isolation_report_fn report, void *ctx)
{
    if (json_is_null(v)) {
        *count = 0;
        return true;
    }
    if (!json_is_array(v)) {
        reportf(report, ctx, key, "'%s' must be a list of paths, got %s; e.g. %s: [/var/lib/x]",
                key, cpex__json_kind(v), key);
        return true;
    }
    size_t n = json_array_size(v);
    if (n > ISO_MAX_PATHS) {
        reportf(report, ctx, key, "'%s' lists %zu paths; at most %d are allowed", key, n,
                ISO_MAX_PATHS);
        return true;
    }
    char **paths = cpex__calloc(n + 1, sizeof *paths);
    if (!paths)
        return false;
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) {
        const json_t *p = json_array_get(v, i);
        const char *s = json_string_value(p);
        if (!s || !*s || strlen(s) != json_string_length(p)) {
            reportf(report, ctx, key, "each entry of '%s' must be a non-empty path, got %s", key,
                    s ? (*s ? "a path with a NUL character" : "an empty string")
                      : cpex__json_kind(p));
            continue;
        }
        if (!(paths[kept++] = cpex__strdup(s))) {
            cpex_strv_free(paths);
            return false;
        }
    }
    cpex_strv_free(*out);
    *out = paths;
    *count = kept;
    return true;
}

static bool check_sandbox(cpex__isolation_cfg *iso, const json_t *v,
                          cpex__isolation_report_fn report, void *ctx)
{
    if (json_is_null(v))
        return true;
    if (!json_is_object(v)) {
        reportf(report, ctx, "sandbox",
                "'sandbox' must be a mapping (network, read_paths, write_paths, memory_mb, ...), "
                "got %s",
                cpex__json_kind(v));
        return true;
    }
    const char *name;
    const json_t *val;
    json_object_foreach((json_t *)v, name, val)
    {
        char key[300];
        snprintf(key, sizeof key, "sandbox.%.200s", name);
        int idx = -1;
        for (int i = 0; i < S_COUNT; i++)
            if (strcmp(name, sandbox_keys[i]) == 0)
                idx = i;
        if (idx < 0) {
            const char *s = cpex__suggest(name, sandbox_keys, S_COUNT);
            if (s)
                reportf(report, ctx, key, "unknown sandbox key '%.200s'; did you mean '%s'?", name,
                        s);
            else
                reportf(report, ctx, key,
                        "unknown sandbox key '%.200s'; valid keys: network, read_paths, "
                        "write_paths, memory_mb, cpu_seconds_per_call, require, "
                        "max_crashes_per_minute, load_timeout, open_files",
                        name);
            continue;
        }
        json_int_t n = 0;
        switch (idx) {
        case S_NETWORK: want_bool(val, key, &iso->network, report, ctx); break;
        case S_REQUIRE: want_bool(val, key, &iso->require, report, ctx); break;
        case S_READ_PATHS:
            if (!want_paths(val, key, &iso->read_paths, &iso->read_path_count, report, ctx))
                return false;
            break;
        case S_WRITE_PATHS:
            if (!want_paths(val, key, &iso->write_paths, &iso->write_path_count, report, ctx))
                return false;
            break;
        case S_MEMORY_MB:
            if (want_count(val, key, 16, ISO_MAX_MEMORY_MB, &n, report, ctx))
                iso->memory_mb = (uint64_t)n;
            break;
        case S_OPEN_FILES:
            if (want_count(val, key, 16, ISO_MAX_OPEN_FILES, &n, report, ctx))
                iso->open_files = (uint32_t)n;
            break;
        case S_MAX_CRASHES:
            if (want_count(val, key, 1, ISO_MAX_CRASHES, &n, report, ctx))
                iso->max_crashes_per_minute = (uint32_t)n;
            break;
        case S_CPU_SECONDS:
            /* null is the documented default: the plugin's timeout governs */
            if (!json_is_null(val))
                want_seconds(val, key, &iso->cpu_seconds_per_call, report, ctx);
            break;
        case S_LOAD_TIMEOUT: want_seconds(val, key, &iso->load_timeout, report, ctx); break;
        }
    }
    return true;
}

bool cpex__isolation_key(cpex__isolation_cfg *iso, const char *key, const json_t *value,
                         cpex__isolation_report_fn report, void *ctx)
{
    if (strcmp(key, "isolation") == 0) {
        const char *s = json_string_value(value);
        static const char *const modes[] = {"none", "process"};
        iso->has_mode = true;
        if (s && strcmp(s, "none") == 0) {
            iso->mode = CPEX_ISOLATION_NONE;
        } else if (s && strcmp(s, "process") == 0) {
            iso->mode = CPEX_ISOLATION_PROCESS;
        } else if (s) {
            const char *sug = cpex__suggest(s, modes, COUNT(modes));
            reportf(report, ctx, key, "unknown isolation '%.200s'; %s%s%s", s,
                    sug ? "did you mean '" : "valid values: none, process", sug ? sug : "",
                    sug ? "'?" : "");
        } else {
            reportf(report, ctx, key, "'isolation' must be none or process, got %s",
                    cpex__json_kind(value));
        }
        return true;
    }
    if (strcmp(key, "workers") == 0) {
        json_int_t n = 0;
        iso->has_workers = true;
        if (want_count(value, key, 1, ISO_MAX_WORKERS, &n, report, ctx))
            iso->workers = (uint32_t)n;
        return true;
    }
    iso->has_sandbox = true;
    return check_sandbox(iso, value, report, ctx);
}

void cpex__isolation_finish(const cpex__isolation_cfg *iso, cpex__isolation_report_fn report,
                            void *ctx)
{
    if (iso->mode == CPEX_ISOLATION_PROCESS)
        return;
    /* The keys of a worker process mean nothing in process: say so rather
       than let an operator believe a sandbox is in force. */
    if (iso->has_sandbox)
        reportf(report, ctx, "sandbox",
                "'sandbox' applies only to a plugin with 'isolation: process'; add that line, "
                "or remove 'sandbox'");
    if (iso->has_workers)
        reportf(report, ctx, "workers",
                "'workers' applies only to a plugin with 'isolation: process'; add that line, "
                "or remove 'workers'");
}

void cpex__isolation_options(const cpex__isolation_cfg *iso, cpex_isolation_options *out)
{
    memset(out, 0, sizeof *out);
    out->struct_size = (uint32_t)sizeof *out;
    out->mode = iso->mode;
    out->workers = iso->workers;
    out->network = iso->network;
    out->read_paths = (const char *const *)iso->read_paths;
    out->read_path_count = iso->read_path_count;
    out->write_paths = (const char *const *)iso->write_paths;
    out->write_path_count = iso->write_path_count;
    out->memory_mb = iso->memory_mb;
    out->cpu_seconds_per_call = iso->cpu_seconds_per_call;
    out->require = iso->require;
    out->max_crashes_per_minute = iso->max_crashes_per_minute;
    out->load_timeout = iso->load_timeout;
    out->open_files = iso->open_files;
}

void cpex__isolation_cleanup(cpex__isolation_cfg *iso)
{
    cpex_strv_free(iso->read_paths);
    cpex_strv_free(iso->write_paths);
    memset(iso, 0, sizeof *iso);
}
