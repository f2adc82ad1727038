/*
 * e2e.h — helpers shared by the end-to-end tests (tests/e2e/): plugins from
 * the libraries built into CPEX_PLUGIN_DIR, loaded through YAML into a
 * manager with the `lib:` loader, and invoked with a CMF message.
 *
 * Header-only (static inline); it includes test_support.h and plugins.h,
 * whose result assertions (assert_allowed, assert_denied, assert_record)
 * and tp_print_result serve these tests too.
 */
#ifndef CPEX_TEST_E2E_H
#define CPEX_TEST_E2E_H

#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cpex/cpex.h"
#include "test_support.h"
/* after test_support.h */
#include "plugins.h"

/** The path of test or example plugin library `name` (a string literal). */
#define E2E_LIB(name) CPEX_PLUGIN_DIR "/lib" name ".so"
#define E2E_PRE "cmf.tool_pre_invoke"
#define E2E_POST "cmf.tool_post_invoke"

/** A YAML document of one plugin (string literals); `extra` is indented YAML. */
#define E2E_YAML1(name, kind, hooks, extra)                                                        \
    "plugins:\n"                                                                                   \
    "  - name: " name "\n"                                                                         \
    "    kind: \"" kind "\"\n"                                                                     \
    "    hooks: [" hooks "]\n" extra

/**
 * `fmt` with its one "%s" replaced by this host's ABI version ("1.1"),
 * written into `buf`: for messages that quote the host's version, so that
 * no test hard-codes it.
 */
static inline const char *e2e_abi_fmt(char *buf, size_t cap, const char *fmt)
{
    char version[32];
    snprintf(version, sizeof version, "%u.%u", (unsigned)CPEX_ABI_VERSION_MAJOR,
             (unsigned)CPEX_ABI_VERSION_MINOR);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
    snprintf(buf, cap, fmt, version);
#pragma GCC diagnostic pop
    return buf;
}

/** E2E_YAML1 at run time (malloc'd). */
static inline char *e2e_yaml1(const char *name, const char *kind, const char *hooks,
                              const char *extra)
{
    char *y = NULL;
    int n = asprintf(&y, E2E_YAML1("%s", "%s", "%s", "%s"), name, kind, hooks, extra);
    assert_true(n > 0);
    return y;
}

/** A new manager (options may be NULL) with the lib: loader registered. */
static inline cpex_manager *e2e_manager_new(const cpex_manager_options *options)
{
    cpex_manager *m = NULL;
    cpex_error err = CPEX_ERROR_INIT;
    cpex_status st = cpex_manager_new(options, &m, &err);
    if (st == CPEX_OK)
        st = cpex_loader_register(m, &err);
    if (st != CPEX_OK)
        print_error("%s\n", cpex_error_message(&err));
    assert_int_equal(st, CPEX_OK);
    cpex_error_cleanup(&err);
    return m;
}

/** e2e_manager_new with the log silenced (tp_quiet_log counts the lines). */
static inline cpex_manager *e2e_manager_quiet(void)
{
    cpex_manager_options o;
    cpex_manager_options_init(&o);
    o.log = tp_quiet_log;
    return e2e_manager_new(&o);
}

/** Load `yaml` (named `source` in messages) into `m`; it must succeed. */
static inline void e2e_load_ok(cpex_manager *m, const char *yaml, const char *source)
{
    cpex_error err = CPEX_ERROR_INIT;
    cpex_status st = cpex_manager_load_string(m, yaml, strlen(yaml), source, NULL, &err);
    if (st != CPEX_OK)
        print_error("load failed:\n%s\nYAML:\n%s\n", cpex_error_message(&err), yaml);
    assert_int_equal(st, CPEX_OK);
    cpex_error_cleanup(&err);
}

/** Initialize `m`; it must succeed. */
static inline void e2e_initialize_ok(cpex_manager *m)
{
    cpex_error err = CPEX_ERROR_INIT;
    cpex_status st = cpex_manager_initialize(m, &err);
    if (st != CPEX_OK)
        print_error("initialize failed:\n%s\n", cpex_error_message(&err));
    assert_int_equal(st, CPEX_OK);
    cpex_error_cleanup(&err);
}

/**
 * Load `yaml` (named `source`) into `m`: it must fail, with `code` unless
 * that is CPEX_OK (any failure); the status goes into *got when got is not
 * NULL. Returns the error message (malloc'd).
 */
static inline char *e2e_load_refused(cpex_manager *m, const char *yaml, const char *source,
                                     cpex_status code, cpex_status *got)
{
    cpex_error err = CPEX_ERROR_INIT;
    cpex_status st = cpex_manager_load_string(m, yaml, strlen(yaml), source, NULL, &err);
    if (st == CPEX_OK)
        print_error("load unexpectedly succeeded:\n%s\n", yaml);
    else if (code != CPEX_OK && st != code)
        print_error("expected %s, got %s:\n%s\n", cpex_status_name(code), cpex_status_name(st),
                    cpex_error_message(&err));
    assert_int_not_equal(st, CPEX_OK);
    if (code != CPEX_OK)
        assert_int_equal(st, code);
    if (got)
        *got = st;
    char *msg = strdup(cpex_error_message(&err));
    assert_non_null(msg);
    cpex_error_cleanup(&err);
    return msg;
}

/** A pipeline result and the message it was invoked with. */
typedef struct e2e_outcome {
    cpex_pipeline_result r;
    cpex_cmf_message *msg;
} e2e_outcome;

/** Initializer of an outcome (its result initialized, no message). */
#define E2E_OUTCOME_INIT                                                                           \
    {                                                                                              \
        CPEX_PIPELINE_RESULT_INIT, NULL                                                            \
    }

/** A CMF message from its JSON text (the test fails if it does not parse). */
static inline cpex_cmf_message *e2e_cmf_parse(const char *json)
{
    cpex_error err = CPEX_ERROR_INIT;
    cpex_cmf_message *m = cpex_cmf_parse(json, strlen(json), &err);
    if (!m)
        print_error("bad test message %s: %s\n", json, cpex_error_message(&err));
    assert_non_null(m);
    cpex_error_cleanup(&err);
    return m;
}

/** An assistant message with one tool call `name` and `args` (JSON text). */
static inline cpex_cmf_message *e2e_tool_call_msg(const char *id, const char *name,
                                                  const char *args)
{
    char buf[4096];
    snprintf(buf, sizeof buf,
             "{\"role\":\"assistant\",\"content\":[{\"content_type\":\"tool_call\",\"content\":"
             "{\"tool_call_id\":\"%s\",\"name\":\"%s\",\"arguments\":%s}}]}",
             id, name, args);
    return e2e_cmf_parse(buf);
}

/** Invoke `hook` with a CMF message (ext and ctx may be NULL; ctx is consumed). */
static inline void e2e_invoke_cmf(cpex_manager *m, const char *hook, const cpex_cmf_message *msg,
                                  const cpex_extensions *ext, cpex_context_table *ctx,
                                  cpex_pipeline_result *res)
{
    cpex_payload p = cpex_payload_cmf(msg);
    cpex_pipeline_result_init(res); /* a fresh result: the caller's may be uninitialized */
    cpex_manager_invoke(m, hook, &p, ext, ctx, res);
}

/** Invoke `hook` with a user message "hello"; e2e_outcome_cleanup releases both. */
static inline void e2e_invoke_hello(cpex_manager *m, const char *hook, e2e_outcome *o)
{
    o->msg = test_text_message("hello");
    e2e_invoke_cmf(m, hook, o->msg, NULL, NULL, &o->r);
}

static inline void e2e_outcome_cleanup(e2e_outcome *o)
{
    cpex_pipeline_result_cleanup(&o->r);
    cpex_cmf_free(o->msg);
}

/**
 * Assert that `text` contains each needle of `ap` (a list ending with NULL);
 * a failure names `file`:`line` (the caller's).
 */
static inline void e2e_contains_all(const char *file, int line, const char *text, va_list ap)
{
    for (const char *needle; (needle = va_arg(ap, const char *)) != NULL;)
        test_assert_contains(text, needle, file, line);
}

/** Whether the library at `path` is mapped in this process. */
static inline int e2e_is_loaded(const char *path)
{
    void *h = dlopen(path, RTLD_NOW | RTLD_NOLOAD);
    if (!h)
        return 0;
    dlclose(h); /* RTLD_NOLOAD took a reference too */
    return 1;
}

/** 0 when none of the `n` libraries is mapped; else says which and returns -1. */
static inline int e2e_none_loaded(const char *const *libs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (e2e_is_loaded(libs[i])) {
            print_error("library still loaded after the test: %s\n", libs[i]);
            return -1;
        }
    }
    return 0;
}

#endif /* CPEX_TEST_E2E_H */
