/*
 * iso.h — what the isolation tests (tests/e2e/test_isolation*.c) share:
 * a manager whose plugin "probe" (tests/plugins/iso_probe.c) runs in a
 * worker process, calls that tell the probe what to do, and the checks
 * that the host still serves afterwards.
 *
 * Header-only (static inline), like e2e.h.
 */
#ifndef CPEX_TEST_ISO_H
#define CPEX_TEST_ISO_H

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "e2e.h"

#define ISO_WORKER CPEX_BINARY_DIR "/cpex-worker"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define ISO_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define ISO_SANITIZED 1
#endif
#endif
#ifndef ISO_SANITIZED
#define ISO_SANITIZED 0
#endif

/** Whether this build (and so its worker) runs under a sanitizer. */
static inline int test_sanitized(void) { return ISO_SANITIZED; }
#define ISO_PROBE E2E_LIB("iso_probe")

static inline double iso_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static inline void iso_quiet(void *user, uint32_t level, const char *plugin, const char *message)
{
    (void)user;
    (void)level;
    (void)plugin;
    (void)message;
}

/** A manager that finds the worker of this build; log lines go nowhere. */
static inline cpex_manager *iso_manager_new(void)
{
    cpex_manager_options o;
    cpex_manager_options_init(&o);
    o.worker_path = ISO_WORKER;
    o.log = iso_quiet;
    return e2e_manager_new(&o);
}

/**
 * A manager with plugin "probe" isolated, initialized. `extra` is YAML
 * under the plugin's entry (4 spaces in), e.g. "    timeout: 0.5\n".
 */
static inline cpex_manager *iso_probe_manager(const char *extra)
{
    cpex_manager *m = iso_manager_new();
    char *yaml = NULL;
    assert_true(asprintf(&yaml,
                         "plugins:\n"
                         "  - name: probe\n"
                         "    kind: \"lib:%s\"\n"
                         "    hooks: [cmf.tool_pre_invoke, test.garble]\n"
                         "    isolation: process\n"
                         "%s",
                         ISO_PROBE, extra ? extra : "") > 0);
    e2e_load_ok(m, yaml, "iso.yaml");
    free(yaml);
    e2e_initialize_ok(m);
    return m;
}

/** Invoke the probe with `text` (ctx consumed; may be NULL). */
static inline void iso_call(cpex_manager *m, const char *text, const cpex_extensions *ext,
                            cpex_context_table *ctx, e2e_outcome *o)
{
    o->msg = test_text_message(text);
    e2e_invoke_cmf(m, E2E_PRE, o->msg, ext, ctx, &o->r);
}

/** Metadata key `key` of a result as an integer (-1 when absent). */
static inline long long iso_meta_int(const cpex_pipeline_result *r, const char *key)
{
    const json_t *v = r->metadata ? json_object_get(r->metadata, key) : NULL;
    return json_is_integer(v) ? (long long)json_integer_value(v) : -1;
}

static inline const char *iso_meta_str(const cpex_pipeline_result *r, const char *key)
{
    const json_t *v = r->metadata ? json_object_get(r->metadata, key) : NULL;
    return json_string_value(v);
}

/**
 * The host still serves: a plain call is answered by the probe (allowed,
 * the text echoed). Returns the worker's pid.
 */
static inline long long iso_expect_serving(cpex_manager *m)
{
    e2e_outcome o;
    iso_call(m, "still there?", NULL, NULL, &o);
    assert_allowed(&o.r);
    const char *echo = iso_meta_str(&o.r, "probe.echo");
    if (!echo || strcmp(echo, "still there?") != 0) {
        tp_print_result(&o.r);
        fail_msg("the probe did not answer the plain call");
    }
    long long pid = iso_meta_int(&o.r, "probe.pid");
    assert_true(pid > 0 && pid != (long long)getpid());
    e2e_outcome_cleanup(&o);
    return pid;
}

/** Assert a deny with `code` whose reason contains `text` (NULL: unchecked). */
static inline void iso_expect_denied(const cpex_pipeline_result *r, const char *code,
                                     const char *text)
{
    assert_denied(r, code, "probe");
    if (text && !strstr(r->violation->reason, text)) {
        tp_print_result(r);
        fail_msg("the reason does not say '%s'", text);
    }
}

/** The worker's pid the probe reports, from a fresh plain call. */
static inline long long iso_worker_pid(cpex_manager *m) { return iso_expect_serving(m); }

/** Whether process `pid` is gone (reaped). */
static inline int iso_pid_gone(long long pid) { return kill((pid_t)pid, 0) != 0; }

#endif
