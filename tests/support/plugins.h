/*
 * plugins.h — recording test plugins for the end-to-end pipeline tests.
 *
 * Header-only (static inline): include it after test_support.h.
 *
 * A tp_plugin is one plugin instance registered from code with
 * cpex_manager_register. Its one handler (served on every hook it lists)
 * appends its name to a shared trace, remembers what it saw (thread,
 * deadline, payload text, extension view, context values) and then does
 * what the test told it: sleep, write context, write extensions, set
 * metadata, modify the payload, deny, fail, or return any decision. It
 * reaches the host only through cpex_host_api_get(), the table dynamic
 * plugins get.
 *
 * Instances are never freed by the manager (destroy only counts), so tests
 * can read the counters after cpex_manager_free; tp_free_all() releases
 * every instance made by tp_new.
 *
 * A test file starts with TP_FIXTURE (its `trace`, setup and teardown) and
 * lists its tests with TP_TEST, or TP_CASE for the cases of a table-driven
 * test.
 */
#ifndef CPEX_TEST_PLUGINS_H
#define CPEX_TEST_PLUGINS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "cpex/cpex.h"

/* ------------------------------------------------------------------ */
/* Small utilities                                                     */
/* ------------------------------------------------------------------ */

static inline int64_t tp_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static inline void tp_sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

/** A shared, thread-safe trace of plugin names: "a,b,c". */
typedef struct tp_trace {
    pthread_mutex_t lock;
    char buf[8192];
} tp_trace;

static inline void tp_trace_init(tp_trace *t)
{
    pthread_mutex_init(&t->lock, NULL);
    t->buf[0] = '\0';
}

static inline void tp_trace_reset(tp_trace *t)
{
    pthread_mutex_lock(&t->lock);
    t->buf[0] = '\0';
    pthread_mutex_unlock(&t->lock);
}

static inline void tp_trace_add(tp_trace *t, const char *name)
{
    pthread_mutex_lock(&t->lock);
    size_t len = strlen(t->buf);
    snprintf(t->buf + len, sizeof t->buf - len, "%s%s", len ? "," : "", name);
    pthread_mutex_unlock(&t->lock);
}

/** Copy of the trace (valid until the next call). */
static inline const char *tp_trace_get(tp_trace *t)
{
    static char copy[8192];
    pthread_mutex_lock(&t->lock);
    memcpy(copy, t->buf, sizeof copy);
    pthread_mutex_unlock(&t->lock);
    return copy;
}

/* ------------------------------------------------------------------ */
/* The test plugin                                                     */
/* ------------------------------------------------------------------ */

#define TP_MAX_HOOKS 4
#define TP_MAX_CAPS 12

typedef struct tp_plugin tp_plugin;
/** A custom step, run after the built-in ones and before the decision. */
typedef int32_t (*tp_custom_fn)(tp_plugin *p, const cpex_call *call);

struct tp_plugin {
    /* --- configuration (set before tp_reg) --- */
    char name[64];             /* operator's name (spec.name) */
    const char *reported_name; /* registration.name; NULL: "tp" */
    uint32_t mode;
    int32_t priority;
    int on_error;   /* -1: the manager's default */
    double timeout; /* 0: the manager's */
    const char *caps[TP_MAX_CAPS];
    const char *hooks[TP_MAX_HOOKS]; /* NULL-terminated; default cmf.tool_pre_invoke */
    const char *payload_type;        /* declared payload type of every handler (NULL: any) */
    const char *config;              /* the config block as JSON text (NULL: none) */
    int init_rc;                     /* what initialize returns */
    const char *init_msg;            /* written into initialize's err */

    /* --- behaviour (read by the handler) --- */
    tp_trace *trace;       /* NULL: no trace */
    int32_t decision;      /* returned by the handler */
    long sleep_ms;         /* before the other steps */
    long sleep_after_ms;   /* after the other steps, before returning */
    const char *deny_code; /* call host->deny with these */
    const char *deny_reason;
    const char *deny_description;
    const char *deny_details;  /* JSON text or NULL */
    const char *error_message; /* host->set_error */
    const char *append_text;   /* payload := clone with part 0 text + append_text */
    const char *meta_key;      /* host->set_metadata(meta_key, meta_value JSON) */
    const char *meta_value;
    const char *ctx_local_key, *ctx_local_value;    /* ctx_set LOCAL (JSON text) */
    const char *ctx_global_key, *ctx_global_value;  /* ctx_set GLOBAL (JSON text) */
    const char *read_local_key;                     /* ctx_get LOCAL into seen_local */
    const char *read_global_key;                    /* ctx_get GLOBAL into seen_global */
    const char *set_header_name, *set_header_value; /* request header */
    const char *read_header;                        /* request header into seen_header */
    const char *add_label;
    const char *remove_label;
    tp_custom_fn custom;
    void *user;

    /* --- observations (under lock) --- */
    pthread_mutex_t lock;
    atomic_int calls;
    atomic_int init_calls, shutdown_calls, destroy_calls;
    int order_shutdown;   /* value of tp_order_counter at shutdown */
    pthread_t thread;     /* thread of the last call */
    int64_t deadline_ns;  /* call->deadline_ns of the last call */
    int64_t called_at_ns; /* tp_now_ns() at the start of the last call */
    uint32_t seen_mode;
    char seen_hook[64];
    char seen_text[256];  /* part 0 text of the payload seen ("" if none) */
    char seen_local[256]; /* JSON dump or "(null)" */
    char seen_global[256];
    char seen_header[256]; /* value or "(none)" */
    char view[512];        /* tp_describe_view output */
    int32_t rc_payload;    /* status of set_payload_cmf (-1: not tried) */
    int32_t rc_header, rc_label, rc_remove_label, rc_ctx_local, rc_ctx_global;

    struct tp_plugin *next_all;
    cpex_handler_reg handlers[TP_MAX_HOOKS];
};

static tp_plugin *tp_all_head;
static atomic_int tp_order_counter;

/* Managers made by tp_manager_with and not yet freed with tp_manager_free:
 * tp_free_all frees them first, so a test that fails half-way does not
 * leave worker threads calling into freed plugins. */
#define TP_MAX_MANAGERS 16
static cpex_manager *tp_live_managers[TP_MAX_MANAGERS];

static inline void tp_track_manager(cpex_manager *m)
{
    for (int i = 0; i < TP_MAX_MANAGERS; i++)
        if (!tp_live_managers[i]) {
            tp_live_managers[i] = m;
            return;
        }
}

/** Free a manager made by tp_manager / tp_manager_with. */
static inline void tp_manager_free(cpex_manager *m)
{
    for (int i = 0; i < TP_MAX_MANAGERS; i++)
        if (tp_live_managers[i] == m)
            tp_live_managers[i] = NULL;
    cpex_manager_free(m);
}

static inline const cpex_host_api *tp_host(void) { return cpex_host_api_get(); }

#define TP_DEFAULT_PRIORITY 100

/** A new plugin with defaults: sequential, priority 100, manager on_error, allow. */
static inline tp_plugin *tp_new(const char *name, tp_trace *trace)
{
    tp_plugin *p = calloc(1, sizeof *p);
    if (!p)
        abort();
    snprintf(p->name, sizeof p->name, "%s", name);
    p->mode = CPEX_MODE_SEQUENTIAL;
    p->priority = TP_DEFAULT_PRIORITY;
    p->on_error = -1;
    p->trace = trace;
    p->decision = CPEX_ALLOW;
    p->rc_payload = p->rc_header = p->rc_label = p->rc_remove_label = -1;
    p->rc_ctx_local = p->rc_ctx_global = -1;
    pthread_mutex_init(&p->lock, NULL);
    snprintf(p->seen_local, sizeof p->seen_local, "(unset)");
    snprintf(p->seen_global, sizeof p->seen_global, "(unset)");
    snprintf(p->seen_header, sizeof p->seen_header, "(unset)");
    p->next_all = tp_all_head;
    tp_all_head = p;
    return p;
}

/** tp_new in `mode` at `priority` (TP_DEFAULT_PRIORITY: the default). */
static inline tp_plugin *tp_new_in(const char *name, tp_trace *trace, uint32_t mode,
                                   int32_t priority)
{
    tp_plugin *p = tp_new(name, trace);
    p->mode = mode;
    p->priority = priority;
    return p;
}

/** Make `p` deny with a violation `code` (NULL: no host->deny call) and `reason`. */
static inline tp_plugin *tp_denying(tp_plugin *p, const char *code, const char *reason)
{
    p->decision = CPEX_DENY;
    p->deny_code = code;
    p->deny_reason = reason;
    return p;
}

/** Make `p` fail (return CPEX_ERROR) with `message` (may be NULL) under `on_error`. */
static inline tp_plugin *tp_failing(tp_plugin *p, int on_error, const char *message)
{
    p->decision = CPEX_ERROR;
    p->on_error = on_error;
    p->error_message = message;
    return p;
}

/** Make `p` serve two hooks. */
static inline tp_plugin *tp_on_hooks(tp_plugin *p, const char *hook, const char *other)
{
    p->hooks[0] = hook;
    p->hooks[1] = other;
    return p;
}

static inline void tp_free_all(void)
{
    for (int i = 0; i < TP_MAX_MANAGERS; i++) {
        if (tp_live_managers[i]) {
            cpex_manager_free(tp_live_managers[i]);
            tp_live_managers[i] = NULL;
        }
    }
    while (tp_all_head) {
        tp_plugin *p = tp_all_head;
        tp_all_head = p->next_all;
        pthread_mutex_destroy(&p->lock);
        free(p);
    }
}

static inline int tp_calls(tp_plugin *p) { return atomic_load(&p->calls); }

/** The text of part 0 of a CMF message, or "". */
static inline const char *tp_msg_text(const cpex_cmf_message *m)
{
    if (!m || m->part_count == 0 || !m->parts[0].text.ptr)
        return "";
    return m->parts[0].text.ptr;
}

static inline void tp_copy_str(char *dst, size_t cap, cpex_str s, const char *absent)
{
    if (!s.ptr)
        snprintf(dst, cap, "%s", absent);
    else
        snprintf(dst, cap, "%.*s", (int)s.len, s.ptr);
}

static inline void tp_dump_json(char *dst, size_t cap, const cpex_json *v)
{
    if (!v) {
        snprintf(dst, cap, "(null)");
        return;
    }
    char *s = tp_host()->json_dump(v);
    snprintf(dst, cap, "%s", s ? s : "(dump failed)");
    tp_host()->free(s);
}

/**
 * What a plugin sees of the extensions, as one line:
 * "etype=.. ename=.. tags=a|b sid=.. stype=.. roles=a|b labels=a|b cls=..
 *  rid=.. tid=.. env=.. hdr=N x-req=.. custom=.." with "-" for hidden/unset.
 */
static inline void tp_describe_view(const cpex_call *call, char *out, size_t cap)
{
    const cpex_host_api *h = tp_host();
    size_t pos = 0;
#define TP_APPEND(...)                                                                             \
    do {                                                                                           \
        if (pos < cap)                                                                             \
            pos += (size_t)snprintf(out + pos, cap - pos, __VA_ARGS__);                            \
    } while (0)
    static const struct {
        const char *label;
        uint32_t field;
        int list;
    } fields[] = {
        {"etype", CPEX_EXT_ENTITY_TYPE, 0},  {"ename", CPEX_EXT_ENTITY_NAME, 0},
        {"tags", CPEX_EXT_TAGS, 1},          {"sid", CPEX_EXT_SUBJECT_ID, 0},
        {"stype", CPEX_EXT_SUBJECT_TYPE, 0}, {"roles", CPEX_EXT_ROLES, 1},
        {"labels", CPEX_EXT_LABELS, 1},      {"cls", CPEX_EXT_CLASSIFICATION, 0},
        {"rid", CPEX_EXT_REQUEST_ID, 0},     {"tid", CPEX_EXT_TRACE_ID, 0},
        {"env", CPEX_EXT_ENVIRONMENT, 0},
    };
    out[0] = '\0';
    for (size_t i = 0; i < CPEX__COUNT(fields); i++) {
        TP_APPEND("%s%s=", i ? " " : "", fields[i].label);
        if (fields[i].list) {
            size_t n = h->ext_count(call, fields[i].field);
            if (n == 0)
                TP_APPEND("-");
            for (size_t k = 0; k < n; k++) {
                cpex_str s = {NULL, 0};
                if (h->ext_item(call, fields[i].field, k, &s) == CPEX_HOST_OK)
                    TP_APPEND("%s%.*s", k ? "|" : "", (int)s.len, s.ptr);
                else
                    TP_APPEND("%s?", k ? "|" : "");
            }
        } else {
            cpex_str s = {NULL, 0};
            if (h->ext_get(call, fields[i].field, &s) == CPEX_HOST_OK)
                TP_APPEND("%.*s", (int)s.len, s.ptr);
            else
                TP_APPEND("-");
        }
    }
    TP_APPEND(" hdr=%zu", h->ext_header_count(call, CPEX_HEADERS_REQUEST));
    cpex_str hv = {NULL, 0};
    if (h->ext_header(call, CPEX_HEADERS_REQUEST, "x-req", &hv) == CPEX_HOST_OK)
        TP_APPEND(" x-req=%.*s", (int)hv.len, hv.ptr);
    else
        TP_APPEND(" x-req=-");
    const cpex_json *c = h->ext_custom(call, "k");
    if (c && h->json_type(c) == CPEX_JSON_STRING)
        TP_APPEND(" custom=%s", h->json_string(c, NULL));
    else
        TP_APPEND(" custom=-");
#undef TP_APPEND
}

static inline cpex_json *tp_parse_json(const char *text)
{
    return text ? tp_host()->json_parse(text, strlen(text)) : NULL;
}

/** Replace the payload with a clone whose part 0 text has `suffix` appended. */
static inline int32_t tp_append_to_payload(const cpex_call *call, const char *suffix)
{
    const cpex_host_api *h = tp_host();
    if (!call->payload || call->payload->kind != CPEX_PAYLOAD_CMF)
        return CPEX_HOST_EINVAL;
    const cpex_cmf_message *m = call->payload->data;
    cpex_cmf_message *copy = h->cmf_clone(m);
    if (!copy)
        return CPEX_HOST_ENOMEM;
    char buf[512];
    snprintf(buf, sizeof buf, "%s%s", tp_msg_text(m), suffix);
    int32_t rc = h->cmf_set_text(copy, 0, buf, strlen(buf));
    if (rc != CPEX_HOST_OK) {
        h->cmf_free(copy);
        return rc;
    }
    return h->set_payload_cmf(call, copy);
}

static inline int32_t tp_handler(void *instance, const cpex_call *call)
{
    tp_plugin *p = instance;
    const cpex_host_api *h = tp_host();
    int64_t now = tp_now_ns();
    atomic_fetch_add(&p->calls, 1);
    if (p->trace)
        tp_trace_add(p->trace, p->name);
    pthread_mutex_lock(&p->lock);
    p->thread = pthread_self();
    p->deadline_ns = call->deadline_ns;
    p->called_at_ns = now;
    p->seen_mode = call->mode;
    tp_copy_str(p->seen_hook, sizeof p->seen_hook, call->hook, "");
    if (call->payload && call->payload->kind == CPEX_PAYLOAD_CMF)
        snprintf(p->seen_text, sizeof p->seen_text, "%s",
                 tp_msg_text((const cpex_cmf_message *)call->payload->data));
    else
        p->seen_text[0] = '\0';
    tp_describe_view(call, p->view, sizeof p->view);
    pthread_mutex_unlock(&p->lock);

    if (p->sleep_ms)
        tp_sleep_ms(p->sleep_ms);
    if (p->read_local_key) {
        pthread_mutex_lock(&p->lock);
        tp_dump_json(p->seen_local, sizeof p->seen_local,
                     h->ctx_get(call, CPEX_CTX_LOCAL, p->read_local_key));
        pthread_mutex_unlock(&p->lock);
    }
    if (p->read_global_key) {
        pthread_mutex_lock(&p->lock);
        tp_dump_json(p->seen_global, sizeof p->seen_global,
                     h->ctx_get(call, CPEX_CTX_GLOBAL, p->read_global_key));
        pthread_mutex_unlock(&p->lock);
    }
    int32_t rc;
#define TP_STORE(field, value)                                                                     \
    do {                                                                                           \
        rc = (value);                                                                              \
        pthread_mutex_lock(&p->lock);                                                              \
        p->field = rc;                                                                             \
        pthread_mutex_unlock(&p->lock);                                                            \
    } while (0)
    if (p->ctx_local_key)
        TP_STORE(rc_ctx_local, h->ctx_set(call, CPEX_CTX_LOCAL, p->ctx_local_key,
                                          tp_parse_json(p->ctx_local_value)));
    if (p->ctx_global_key)
        TP_STORE(rc_ctx_global, h->ctx_set(call, CPEX_CTX_GLOBAL, p->ctx_global_key,
                                           tp_parse_json(p->ctx_global_value)));
    if (p->read_header) {
        cpex_str v = {NULL, 0};
        rc = h->ext_header(call, CPEX_HEADERS_REQUEST, p->read_header, &v);
        pthread_mutex_lock(&p->lock);
        if (rc == CPEX_HOST_OK)
            tp_copy_str(p->seen_header, sizeof p->seen_header, v, "(none)");
        else
            snprintf(p->seen_header, sizeof p->seen_header, "(none)");
        pthread_mutex_unlock(&p->lock);
    }
    if (p->set_header_name)
        TP_STORE(rc_header, h->ext_set_header(call, CPEX_HEADERS_REQUEST, p->set_header_name,
                                              p->set_header_value));
    if (p->add_label)
        TP_STORE(rc_label, h->ext_append_label(call, p->add_label));
    if (p->remove_label)
        TP_STORE(rc_remove_label, h->ext_remove_label(call, p->remove_label));
    if (p->meta_key)
        h->set_metadata(call, p->meta_key, tp_parse_json(p->meta_value));
    if (p->append_text)
        TP_STORE(rc_payload, tp_append_to_payload(call, p->append_text));
#undef TP_STORE
    if (p->deny_code)
        h->deny(call, p->deny_code, p->deny_reason ? p->deny_reason : "denied", p->deny_description,
                tp_parse_json(p->deny_details));
    if (p->error_message)
        h->set_error(call, p->error_message);
    int32_t decision = p->decision;
    if (p->custom)
        decision = p->custom(p, call);
    if (p->sleep_after_ms)
        tp_sleep_ms(p->sleep_after_ms);
    return decision;
}

static inline int32_t tp_initialize(void *instance, char *err, size_t err_cap)
{
    tp_plugin *p = instance;
    atomic_fetch_add(&p->init_calls, 1);
    if (p->init_rc && p->init_msg)
        snprintf(err, err_cap, "%s", p->init_msg);
    return p->init_rc;
}

static inline void tp_shutdown(void *instance)
{
    tp_plugin *p = instance;
    atomic_fetch_add(&p->shutdown_calls, 1);
    p->order_shutdown = atomic_fetch_add(&tp_order_counter, 1);
}

static inline void tp_destroy(void *instance)
{
    tp_plugin *p = instance;
    atomic_fetch_add(&p->destroy_calls, 1);
}

/** Fill the spec and registration of `p` (arrays point into `p` and `caps`). */
static inline void tp_fill(tp_plugin *p, cpex_plugin_spec *spec, cpex_plugin_registration *reg)
{
    cpex_plugin_spec_init(spec);
    spec->name = p->name;
    spec->kind = "test";
    spec->mode = p->mode;
    spec->priority = p->priority;
    if (p->on_error >= 0)
        spec->on_error = (cpex_on_error)p->on_error;
    spec->timeout = p->timeout;
    size_t ncaps = 0;
    while (ncaps < TP_MAX_CAPS && p->caps[ncaps])
        ncaps++;
    spec->capabilities = ncaps ? p->caps : NULL;
    spec->capability_count = ncaps;

    if (!p->hooks[0])
        p->hooks[0] = "cmf.tool_pre_invoke";
    size_t nh = 0;
    while (nh < TP_MAX_HOOKS && p->hooks[nh]) {
        p->handlers[nh].hook = p->hooks[nh];
        p->handlers[nh].fn = tp_handler;
        p->handlers[nh].payload_type = p->payload_type;
        nh++;
    }
    memset(reg, 0, sizeof *reg);
    reg->struct_size = (uint32_t)sizeof *reg;
    reg->abi_version = CPEX_ABI_VERSION;
    reg->name = p->reported_name ? p->reported_name : "tp";
    reg->version = "1.0";
    reg->instance = p;
    reg->initialize = tp_initialize;
    reg->shutdown = tp_shutdown;
    reg->destroy = tp_destroy;
    reg->handler_count = nh;
    reg->handlers = p->handlers;
}

/** Register `p`; returns the status and fills `err` (may be NULL). */
static inline cpex_status tp_reg_err(cpex_manager *m, tp_plugin *p, cpex_error *err)
{
    cpex_plugin_spec spec;
    cpex_plugin_registration reg;
    tp_fill(p, &spec, &reg);
    json_t *config = p->config ? json_loads(p->config, 0, NULL) : NULL;
    spec.config = config;
    cpex_status st = cpex_manager_register(m, &spec, &reg, err);
    json_decref(config);
    return st;
}

/** Register `p` and fail the test if it is refused. */
#define tp_reg(m, p)                                                                               \
    do {                                                                                           \
        cpex_error tp_err_ = CPEX_ERROR_INIT;                                                      \
        cpex_status tp_st_ = tp_reg_err((m), (p), &tp_err_);                                       \
        if (tp_st_ != CPEX_OK)                                                                     \
            print_error("register '%s' failed: %s\n", (p)->name, cpex_error_message(&tp_err_));    \
        cpex_error_cleanup(&tp_err_);                                                              \
        assert_int_equal(tp_st_, CPEX_OK);                                                         \
    } while (0)

/* ------------------------------------------------------------------ */
/* Managers, payloads, results                                         */
/* ------------------------------------------------------------------ */

static atomic_int tp_log_count;

static inline void tp_quiet_log(void *user, uint32_t level, const char *plugin, const char *message)
{
    (void)user;
    (void)level;
    (void)plugin;
    (void)message;
    atomic_fetch_add(&tp_log_count, 1);
}

/** A manager with quiet logging; `opts` may be NULL. */
static inline cpex_manager *tp_manager_with(cpex_manager_options *opts)
{
    cpex_manager_options o;
    if (!opts) {
        cpex_manager_options_init(&o);
        opts = &o;
    }
    if (!opts->log)
        opts->log = tp_quiet_log;
    cpex_manager *m = NULL;
    cpex_error err = CPEX_ERROR_INIT;
    cpex_status st = cpex_manager_new(opts, &m, &err);
    if (st != CPEX_OK)
        print_error("cpex_manager_new: %s\n", cpex_error_message(&err));
    cpex_error_cleanup(&err);
    assert_int_equal(st, CPEX_OK);
    assert_non_null(m);
    tp_track_manager(m);
    return m;
}

static inline cpex_manager *tp_manager(void) { return tp_manager_with(NULL); }

/** A manager with quiet logging and `workers` worker threads. */
static inline cpex_manager *tp_manager_workers(uint32_t workers)
{
    cpex_manager_options o;
    cpex_manager_options_init(&o);
    o.worker_threads = workers;
    return tp_manager_with(&o);
}

/** Initialize and fail the test on error. */
#define tp_init(m)                                                                                 \
    do {                                                                                           \
        cpex_error tp_ierr_ = CPEX_ERROR_INIT;                                                     \
        cpex_status tp_ist_ = cpex_manager_initialize((m), &tp_ierr_);                             \
        if (tp_ist_ != CPEX_OK)                                                                    \
            print_error("initialize failed: %s\n", cpex_error_message(&tp_ierr_));                 \
        cpex_error_cleanup(&tp_ierr_);                                                             \
        assert_int_equal(tp_ist_, CPEX_OK);                                                        \
    } while (0)

/** Register every plugin listed, in this order (failing the test on a refusal), then
 * initialize. */
#define tp_start(m, ...)                                                                           \
    do {                                                                                           \
        tp_plugin *tp_list_[] = {__VA_ARGS__};                                                     \
        for (size_t tp_i_ = 0; tp_i_ < CPEX__COUNT(tp_list_); tp_i_++)                             \
            tp_reg((m), tp_list_[tp_i_]);                                                          \
        tp_init(m);                                                                                \
    } while (0)

/** Invoke `hook` with a CMF message (ext and ctx may be NULL). */
static inline void tp_invoke(cpex_manager *m, const char *hook, const cpex_cmf_message *msg,
                             const cpex_extensions *ext, cpex_context_table *ctx,
                             cpex_pipeline_result *res)
{
    cpex_payload p = cpex_payload_cmf(msg);
    cpex_manager_invoke(m, hook, msg ? &p : NULL, ext, ctx, res);
}

/**
 * Invoke `hook` with a fresh user message `text` that lives only during the
 * invoke (the result and background work must not refer to it afterwards);
 * ext and ctx may be NULL (ctx is consumed). Fails the test if the message
 * was modified in place.
 */
static inline void tp_invoke_text(cpex_manager *m, const char *hook, const char *text,
                                  const cpex_extensions *ext, cpex_context_table *ctx,
                                  cpex_pipeline_result *res)
{
    cpex_cmf_message *msg = test_text_message(text);
    tp_invoke(m, hook, msg, ext, ctx, res);
    assert_string_equal(tp_msg_text(msg), text);
    cpex_cmf_free(msg);
}

/** Invoke `hook` on a fresh "hello" (tp_invoke_text, without extensions or context). */
static inline void tp_run(cpex_manager *m, const char *hook, cpex_pipeline_result *res)
{
    tp_invoke_text(m, hook, "hello", NULL, NULL, res);
}

/** Clean up the result of the last invoke and free the manager. */
static inline void tp_finish(cpex_manager *m, cpex_pipeline_result *res)
{
    cpex_pipeline_result_cleanup(res);
    tp_manager_free(m);
}

/** The final text of a result (modified payload, else the original). */
static inline const char *tp_final_text(const cpex_pipeline_result *r,
                                        const cpex_cmf_message *original)
{
    return tp_msg_text(cpex_pipeline_result_cmf(r, original));
}

/** The first record of `plugin` with `code` (either may be NULL: any). */
static inline const cpex_error_record *tp_find_record_in(const cpex_error_record *recs, size_t n,
                                                         const char *plugin, const char *code)
{
    for (size_t i = 0; i < n; i++) {
        if (plugin && strcmp(recs[i].plugin_name, plugin) != 0)
            continue;
        if (code && strcmp(recs[i].code, code) != 0)
            continue;
        return &recs[i];
    }
    return NULL;
}

static inline const cpex_error_record *tp_find_record(const cpex_pipeline_result *r,
                                                      const char *plugin, const char *code)
{
    return tp_find_record_in(r->errors, r->error_count, plugin, code);
}

/** Print the records of a result (for failing tests). */
static inline void tp_print_result(const cpex_pipeline_result *r)
{
    json_t *j = cpex_pipeline_result_to_json(r);
    char *s = j ? json_dumps(j, JSON_INDENT(1)) : NULL;
    print_message("result: %s\n", s ? s : "(null)");
    free(s);
    json_decref(j);
}

/** Assert that a record exists, printing the result when it does not. */
#define assert_record(res_, plugin_, code_)                                                        \
    do {                                                                                           \
        if (!tp_find_record((res_), (plugin_), (code_))) {                                         \
            tp_print_result(res_);                                                                 \
            fail_msg("no error record for plugin '%s' with code '%s'", (plugin_), (code_));        \
        }                                                                                          \
    } while (0)

#define assert_no_record(res_, plugin_, code_)                                                     \
    do {                                                                                           \
        if (tp_find_record((res_), (plugin_), (code_))) {                                          \
            tp_print_result(res_);                                                                 \
            fail_msg("unexpected error record for plugin '%s' with code '%s'",                     \
                     (plugin_) ? (plugin_) : "*", (code_) ? (code_) : "*");                        \
        }                                                                                          \
    } while (0)

/** Assert a denied result with violation `code` naming `plugin` (NULL: unchecked). */
#define assert_denied(res_, code_, plugin_)                                                        \
    do {                                                                                           \
        if ((res_)->continue_processing || !(res_)->violation) {                                   \
            tp_print_result(res_);                                                                 \
            fail_msg("expected a deny with code '%s'", (code_));                                   \
        }                                                                                          \
        assert_string_equal((res_)->violation->code, (code_));                                     \
        if ((const char *)(plugin_) != NULL) {                                                     \
            assert_non_null((res_)->violation->plugin_name);                                       \
            assert_string_equal((res_)->violation->plugin_name, (plugin_));                        \
        }                                                                                          \
    } while (0)

#define assert_allowed(res_)                                                                       \
    do {                                                                                           \
        if (!(res_)->continue_processing || (res_)->violation) {                                   \
            tp_print_result(res_);                                                                 \
            fail_msg("expected the pipeline to allow");                                            \
        }                                                                                          \
    } while (0)

/** Whether plugin `name` is disabled; copies its reason into buf. */
static inline bool tp_is_disabled(cpex_manager *m, const char *name, char *reason, size_t cap)
{
    cpex_plugin_info info = CPEX_PLUGIN_INFO_INIT;
    if (cpex_manager_plugin_info(m, name, &info) != CPEX_OK)
        return false;
    bool d = info.disabled;
    if (reason && cap)
        snprintf(reason, cap, "%s", info.reason ? info.reason : "");
    cpex_plugin_info_cleanup(&info);
    return d;
}

/** Take the manager's background errors; fail unless exactly `n` were logged. */
static inline void tp_expect_background_errors(cpex_manager *m, size_t n)
{
    cpex_error_record *recs = NULL;
    size_t got = cpex_manager_take_background_errors(m, &recs);
    for (size_t i = 0; i < got && got != n; i++)
        print_error("background error: [%s] %s: %s\n", recs[i].code, recs[i].plugin_name,
                    recs[i].message);
    cpex_error_records_free(recs, got);
    assert_int_equal(got, n);
}

/* ------------------------------------------------------------------ */
/* Fixture                                                             */
/* ------------------------------------------------------------------ */

/**
 * The file's shared `trace`, and its per-test setup (a fresh trace) and
 * teardown (frees every manager and plugin the test made, even when it
 * failed half-way). Once per test file, at file scope.
 */
#define TP_FIXTURE                                                                                 \
    static tp_trace trace;                                                                         \
    static int setup(void **state)                                                                 \
    {                                                                                              \
        (void)state;                                                                               \
        tp_trace_init(&trace);                                                                     \
        return 0;                                                                                  \
    }                                                                                              \
    static int teardown(void **state)                                                              \
    {                                                                                              \
        (void)state;                                                                               \
        tp_free_all();                                                                             \
        return 0;                                                                                  \
    }                                                                                              \
    typedef int tp_fixture_defined_ /* swallows the semicolon after TP_FIXTURE */

/** A test with the fixture's setup and teardown. */
#define TP_TEST(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

/**
 * One case of a table-driven test: cmocka runs `fn` under the test name
 * `name` (a string: what a failure report names) with *state = the last
 * argument, a pointer (e.g. a compound literal's address).
 */
#define TP_CASE(name_, fn, ...)                                                                    \
    {                                                                                              \
        .name = (name_), .test_func = (fn), .setup_func = setup, .teardown_func = teardown,        \
        .initial_state = (void *)(__VA_ARGS__)                                                     \
    }

#endif /* CPEX_TEST_PLUGINS_H */
