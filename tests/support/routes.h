/*
 * routes.h — a plugin kind for routing and reload tests, configured from
 * YAML without a shared library.
 *
 * Header-only (static inline): include it after test_support.h.
 *
 * rt_manager() makes a manager with the exact kind "test/rec" registered.
 * A plugin of that kind serves the hooks it lists (any of RT_HOOKS). Its
 * config:
 *   label: the name it records (default: the operator's plugin name)
 *   deny: true      deny with code "denied"
 *   fail: true      fail (a handler error)
 *   value: <int>    recorded with the label, so that tests can tell an
 *                   override's instance from the base one ("label=value")
 *   header: <name>  set that request header to the label (a write to the
 *                   extensions: needs capabilities [write_headers])
 * Each call appends "label" (or "label=value" when value is set) to the
 * calling thread's trace (rt_trace(): sequential plugins run on the
 * invoking thread), counts the instance's calls and reports the count in
 * the result metadata under "<label>.count" (state that survives a reload
 * only if the instance does). Creates, initializes, shutdowns and destroys
 * are counted per label (rt_stat).
 */
#ifndef CPEX_TEST_ROUTES_H
#define CPEX_TEST_ROUTES_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cpex/cpex.h"

#define RT_KIND "test/rec"

static const char *const RT_HOOKS[] = {
    "cmf.tool_pre_invoke",  "cmf.tool_post_invoke", "cmf.resource_pre_fetch",
    "cmf.prompt_pre_fetch", "cmf.llm_input",
};
#define RT_HOOK_COUNT (sizeof RT_HOOKS / sizeof RT_HOOKS[0])

/* Per-label counters. */
typedef struct rt_stat {
    char label[64];
    atomic_int creates, inits, shutdowns, destroys;
    atomic_int bad_shutdowns; /* an instance shut down while its handler ran, or called after */
} rt_stat;

#define RT_MAX_STATS 64
static rt_stat rt_stats[RT_MAX_STATS];
static pthread_mutex_t rt_stats_lock = PTHREAD_MUTEX_INITIALIZER;

static inline rt_stat *rt_stat_of(const char *label)
{
    pthread_mutex_lock(&rt_stats_lock);
    rt_stat *s = NULL;
    for (int i = 0; i < RT_MAX_STATS && !s; i++) {
        if (!rt_stats[i].label[0]) {
            snprintf(rt_stats[i].label, sizeof rt_stats[i].label, "%s", label);
            s = &rt_stats[i];
        } else if (strcmp(rt_stats[i].label, label) == 0) {
            s = &rt_stats[i];
        }
    }
    pthread_mutex_unlock(&rt_stats_lock);
    if (!s)
        abort();
    return s;
}

static inline void rt_stats_reset(void)
{
    pthread_mutex_lock(&rt_stats_lock);
    memset(rt_stats, 0, sizeof rt_stats);
    pthread_mutex_unlock(&rt_stats_lock);
}

/* The invoking thread's trace: "a,b=2,c". */
static _Thread_local char rt_trace_buf[2048];

static inline const char *rt_trace(void) { return rt_trace_buf; }
static inline void rt_trace_reset(void) { rt_trace_buf[0] = '\0'; }

typedef struct rt_plugin {
    char label[64];
    bool deny, fail, has_value;
    long long value;
    char header[64];    /* "" : writes nothing */
    atomic_llong count; /* invokes on many threads call one instance */
    atomic_bool shut;
    atomic_int live; /* its handlers running now (never during shutdown) */
    rt_stat *stat;
    cpex_handler_reg handlers[RT_HOOK_COUNT];
    size_t handler_count;
} rt_plugin;

static inline int32_t rt_handler(void *instance, const cpex_call *call)
{
    rt_plugin *p = instance;
    atomic_fetch_add(&p->live, 1);
    if (atomic_load(&p->shut))
        atomic_fetch_add(&p->stat->bad_shutdowns, 1);
    const cpex_host_api *h = cpex_host_api_get();
    size_t len = strlen(rt_trace_buf);
    if (p->has_value)
        snprintf(rt_trace_buf + len, sizeof rt_trace_buf - len, "%s%s=%lld", len ? "," : "",
                 p->label, p->value);
    else
        snprintf(rt_trace_buf + len, sizeof rt_trace_buf - len, "%s%s", len ? "," : "", p->label);
    long long n = atomic_fetch_add(&p->count, 1) + 1;
    char key[96];
    snprintf(key, sizeof key, "%s.count", p->label);
    h->set_metadata(call, key, h->json_new_integer(n));
    if (p->header[0])
        h->ext_set_header(call, CPEX_HEADERS_REQUEST, p->header, p->label);
    int32_t rc = CPEX_ALLOW;
    if (p->deny) {
        h->deny(call, "denied", p->label, NULL, NULL);
        rc = CPEX_DENY;
    } else if (p->fail) {
        h->set_error(call, "failing on purpose");
        rc = CPEX_ERROR;
    }
    atomic_fetch_sub(&p->live, 1);
    return rc;
}

static inline int32_t rt_init(void *instance, char *err, size_t cap)
{
    (void)err;
    (void)cap;
    rt_plugin *p = instance;
    atomic_fetch_add(&p->stat->inits, 1);
    return 0;
}

static inline void rt_shutdown(void *instance)
{
    rt_plugin *p = instance;
    if (atomic_load(&p->live) > 0)
        atomic_fetch_add(&p->stat->bad_shutdowns, 1);
    atomic_store(&p->shut, true);
    atomic_fetch_add(&p->stat->shutdowns, 1);
}

static inline void rt_destroy(void *instance)
{
    rt_plugin *p = instance;
    atomic_fetch_add(&p->stat->destroys, 1);
    free(p);
}

static inline cpex_status rt_create(void *data, const cpex_factory_request *req,
                                    cpex_factory_product *out, cpex_error *err)
{
    (void)data;
    (void)err;
    rt_plugin *p = calloc(1, sizeof *p);
    if (!p)
        return CPEX_E_NOMEM;
    const json_t *c = req->config_block;
    const char *label = json_string_value(json_object_get(c, "label"));
    snprintf(p->label, sizeof p->label, "%.*s",
             label ? (int)strlen(label) : (int)req->config->name.len,
             label ? label : req->config->name.ptr);
    p->deny = json_is_true(json_object_get(c, "deny"));
    p->fail = json_is_true(json_object_get(c, "fail"));
    p->has_value = json_is_integer(json_object_get(c, "value"));
    p->value = json_integer_value(json_object_get(c, "value"));
    const char *header = json_string_value(json_object_get(c, "header"));
    snprintf(p->header, sizeof p->header, "%s", header ? header : "");
    p->stat = rt_stat_of(p->label);
    atomic_fetch_add(&p->stat->creates, 1);
    for (size_t i = 0; i < RT_HOOK_COUNT; i++) {
        p->handlers[i].hook = RT_HOOKS[i];
        p->handlers[i].fn = rt_handler;
        p->handlers[i].payload_type = "cmf";
    }
    p->handler_count = RT_HOOK_COUNT;
    out->registration.instance = p;
    out->registration.name = "rec";
    out->registration.version = "1";
    out->registration.handlers = p->handlers;
    out->registration.handler_count = p->handler_count;
    out->registration.handler_size = (uint32_t)sizeof(cpex_handler_reg);
    out->registration.initialize = rt_init;
    out->registration.shutdown = rt_shutdown;
    out->registration.destroy = rt_destroy;
    out->registration.abi_version = CPEX_ABI_VERSION;
    return CPEX_OK;
}

static inline void rt_quiet(void *user, uint32_t level, const char *plugin, const char *message)
{
    (void)user;
    (void)level;
    (void)plugin;
    (void)message;
}

/** A manager (quiet log) with "test/rec" and the lib: loader registered. */
/** A manager with options `o` (its log set quiet), serving RT_KIND and lib:. */
static inline cpex_manager *rt_manager_with(cpex_manager_options o)
{
    o.log = rt_quiet;
    cpex_manager *m = NULL;
    cpex_error err = CPEX_ERROR_INIT;
    if (cpex_manager_new(&o, &m, &err) != CPEX_OK)
        abort();
    cpex_factory f;
    memset(&f, 0, sizeof f);
    f.struct_size = (uint32_t)sizeof f;
    f.create = rt_create;
    if (cpex_manager_register_factory(m, RT_KIND, &f, &err) != CPEX_OK ||
        cpex_loader_register(m, &err) != CPEX_OK)
        abort();
    return m;
}

static inline cpex_manager *rt_manager(void)
{
    cpex_manager_options o;
    cpex_manager_options_init(&o);
    return rt_manager_with(o);
}

/** Load `yaml`: CPEX_OK, or the status with the message in *msg (malloc'd) when msg. */
static inline cpex_status rt_load(cpex_manager *m, const char *yaml, char **msg)
{
    cpex_error err = CPEX_ERROR_INIT;
    cpex_status st = cpex_manager_load_string(m, yaml, strlen(yaml), "routes.yaml", NULL, &err);
    if (msg)
        *msg = st == CPEX_OK ? NULL : strdup(cpex_error_message(&err));
    else if (st != CPEX_OK)
        fprintf(stderr, "load failed:\n%s\n", cpex_error_message(&err));
    cpex_error_cleanup(&err);
    return st;
}

/** Reload `yaml` (as a string source "routes.yaml"). */
static inline cpex_status rt_reload(cpex_manager *m, const char *yaml, char **msg)
{
    cpex_error err = CPEX_ERROR_INIT;
    cpex_status st = cpex_manager_reload_string(m, yaml, strlen(yaml), "routes.yaml", NULL, &err);
    if (msg)
        *msg = st == CPEX_OK ? NULL : strdup(cpex_error_message(&err));
    else if (st != CPEX_OK)
        fprintf(stderr, "reload failed:\n%s\n", cpex_error_message(&err));
    cpex_error_cleanup(&err);
    return st;
}

/** Extensions with an entity (scope may be NULL) and tags (NULL-terminated, may be NULL). */
static inline cpex_extensions *rt_entity(const char *type, const char *name, const char *scope,
                                         const char *const *tags)
{
    cpex_extensions *e = cpex_extensions_new();
    if (!e)
        abort();
    if (type)
        cpex_extensions_set(e, CPEX_EXT_ENTITY_TYPE, type);
    if (name)
        cpex_extensions_set(e, CPEX_EXT_ENTITY_NAME, name);
    if (scope)
        cpex_extensions_set(e, CPEX_EXT_SCOPE, scope);
    for (size_t i = 0; tags && tags[i]; i++)
        cpex_extensions_add(e, CPEX_EXT_TAGS, tags[i]);
    return e;
}

/**
 * Invoke `hook` with `ext` (may be NULL) and return the trace of plugins
 * that ran ("" when none), copied into a static buffer of this thread.
 * *allowed (when given) receives the decision; *generation the generation.
 */
static inline const char *rt_run(cpex_manager *m, const char *hook, const cpex_extensions *ext,
                                 bool *allowed, uint64_t *generation)
{
    rt_trace_reset();
    cpex_cmf_message *msg = test_text_message("hi");
    cpex_payload p = cpex_payload_cmf(msg);
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    cpex_manager_invoke(m, hook, &p, ext, NULL, &res);
    cpex_cmf_free(msg);
    if (allowed)
        *allowed = res.continue_processing;
    if (generation)
        *generation = res.generation;
    cpex_pipeline_result_cleanup(&res);
    static _Thread_local char copy[2048];
    snprintf(copy, sizeof copy, "%s", rt_trace());
    return copy;
}

/** rt_run for an entity given inline. */
static inline const char *rt_run_entity(cpex_manager *m, const char *hook, const char *type,
                                        const char *name, const char *scope,
                                        const char *const *tags, bool *allowed)
{
    cpex_extensions *e = rt_entity(type, name, scope, tags);
    const char *t = rt_run(m, hook, e, allowed, NULL);
    cpex_extensions_unref(e);
    return t;
}

/** The metadata counter "<label>.count" of one invoke of `hook` with `ext`. */
static inline long long rt_count(cpex_manager *m, const char *hook, const cpex_extensions *ext,
                                 const char *label)
{
    cpex_cmf_message *msg = test_text_message("hi");
    cpex_payload p = cpex_payload_cmf(msg);
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    cpex_manager_invoke(m, hook, &p, ext, NULL, &res);
    cpex_cmf_free(msg);
    char key[96];
    snprintf(key, sizeof key, "%s.count", label);
    long long n = json_integer_value(json_object_get(res.metadata, key));
    cpex_pipeline_result_cleanup(&res);
    return n;
}

#endif
