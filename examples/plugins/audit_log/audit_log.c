/*
 * audit_log.c — append one JSON line per event to a file.
 *
 *   - name: audit-log
 *     kind: "lib:../build/plugins/libaudit_log.so"
 *     mode: audit                    # without hooks: an audit sink, one line per verdict
 *     capabilities: [read_subject, read_request]   # optional: adds subject and request id
 *     config:
 *       path: /tmp/cpex-gateway-audit.jsonl       # required; opened in append mode
 *       include_payload: false                    # true: the whole CMF message too
 *       max_queue: 10000                          # lines waiting for the writer, at most
 *
 * Configured without hooks (mode: audit), it is an audit sink (ABI 1.1): the
 * host hands it the final verdict of every invoke of every hook, allowed
 * and denied, after the decision, and it writes one line per verdict:
 *
 *   {"time":"2025-01-31T12:00:00.123Z","plugin":"audit-log",
 *    "hook":"cmf.tool_pre_invoke","decision":"deny",
 *    "violation":{"code":"tool_not_allowed","reason":"...","plugin":"tool-allowlist"},
 *    "role":"assistant","tools":["delete_repo"],"subject":"alice","request_id":"r-1",
 *    "executions":[{"plugin":"tool-allowlist","mode":"sequential","status":"completed",
 *                   "effective":"deny","duration_ns":2100,"code":"tool_not_allowed"}]}
 *
 * With hooks listed it is an ordinary handler of those hooks (audit or
 * fire_and_forget mode), which sees only the invocations nobody denied
 * before it ran, one line per event:
 *
 *   {"time":"...","plugin":"audit-log","hook":"cmf.tool_pre_invoke",
 *    "mode":"fire_and_forget","role":"assistant","tools":["search_docs"],
 *    "subject":"alice","request_id":"r-1"}
 *
 * Never blocks the pipeline for long: the handler only formats the line and
 * queues it (a mutex held for a pointer swap); a writer thread of the
 * plugin's own appends the lines to the file. When the queue is full the
 * line is dropped and counted, rather than making the gateway wait for a
 * slow disk; the count of dropped lines is written to the file as a line of
 * its own when the writer catches up. The file is opened once per instance
 * in append mode (O_APPEND), so several instances, or several processes,
 * can share it without tearing each other's lines.
 *
 * As a sink it runs on the host's audit thread; with hooks, in audit mode
 * (on the caller's thread, after the modifying phases) or in
 * fire_and_forget mode (on the host's background workers). It modifies
 * nothing in any mode.
 */
/* clock_gettime, gmtime_r and pthreads are POSIX: ask for them, so the file
   also builds as `cc -std=c11` outside this tree (the build defines _GNU_SOURCE). */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cpex/plugin.h>

typedef struct line {
    struct line *next;
    char *text; /* built by json_dump: freed with host->free */
} line;

typedef struct auditor {
    const cpex_host_api *host;
    char *path;
    FILE *file;
    int include_payload;
    size_t max_queue;

    pthread_mutex_t lock; /* guards everything below */
    pthread_cond_t wake;  /* the writer waits on it */
    line *head, *tail;
    size_t queued;
    uint64_t dropped; /* lines lost to a full queue, not yet reported */
    int stop;
    int running; /* the writer thread exists */
    pthread_t writer;
} auditor;

static const char *mode_name(uint32_t mode)
{
    switch (mode) {
    case CPEX_MODE_SEQUENTIAL: return "sequential";
    case CPEX_MODE_TRANSFORM: return "transform";
    case CPEX_MODE_AUDIT: return "audit";
    case CPEX_MODE_CONCURRENT: return "concurrent";
    case CPEX_MODE_FIRE_AND_FORGET: return "fire_and_forget";
    default: return "unknown";
    }
}

static void set_str(const cpex_host_api *host, cpex_json *obj, const char *key, cpex_str s)
{
    if (s.ptr)
        host->json_object_set(obj, key, host->json_new_string(s.ptr, s.len));
}

/* What a verdict adds to a line: the decision, the violation, and one entry
 * per plugin call (the execution records). */
static void add_verdict(const cpex_host_api *host, cpex_json *ev, const cpex_verdict *v)
{
    const char *decision = v->decision == CPEX_ALLOW ? "allow" : "deny";
    host->json_object_set(ev, "decision", host->json_new_string(decision, strlen(decision)));
    if (v->violation_code.ptr) {
        cpex_json *vio = host->json_new_object();
        set_str(host, vio, "code", v->violation_code);
        set_str(host, vio, "reason", v->violation_reason);
        set_str(host, vio, "plugin", v->violation_plugin);
        host->json_object_set(ev, "violation", vio);
    }
    if (v->payload_modified)
        host->json_object_set(ev, "payload_modified", host->json_new_bool(1));
    cpex_json *execs = host->json_new_array();
    for (size_t i = 0; execs && i < v->record_count; i++) {
        const cpex_execution_record *r = cpex_verdict_record(v, i);
        cpex_json *x = host->json_new_object();
        const char *status = cpex_exec_status_text(r->status);
        const char *mode = mode_name(r->mode);
        const char *effective = r->effective == CPEX_ALLOW ? "allow" : "deny";
        set_str(host, x, "plugin", r->plugin_name);
        host->json_object_set(x, "mode", host->json_new_string(mode, strlen(mode)));
        host->json_object_set(x, "status", host->json_new_string(status, strlen(status)));
        host->json_object_set(x, "effective", host->json_new_string(effective, strlen(effective)));
        host->json_object_set(x, "duration_ns", host->json_new_integer(r->duration_ns));
        set_str(host, x, "code", r->code);
        host->json_array_append(execs, x);
    }
    if (execs)
        host->json_object_set(ev, "executions", execs);
}

/* The event as one line of JSON text (host-allocated), or NULL on OOM.
 * `verdict` is set when the host calls the plugin as an audit sink. */
static char *format_event(const auditor *self, const cpex_call *call, const cpex_verdict *verdict)
{
    const cpex_host_api *host = self->host;
    const cpex_cmf_message *msg = cpex_call_cmf(call);
    static const char *const roles[] = {"system", "developer", "user", "assistant", "tool"};
    struct timespec ts;
    struct tm tm;
    char when[40];
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(when + n, sizeof when - n, ".%03ldZ", ts.tv_nsec / 1000000);

    cpex_json *ev = host->json_new_object();
    if (!ev)
        return NULL;
    host->json_object_set(ev, "time", host->json_new_string(when, strlen(when)));
    set_str(host, ev, "plugin", call->plugin_name);
    set_str(host, ev, "hook", call->hook);
    if (verdict) {
        add_verdict(host, ev, verdict);
    } else {
        const char *mode = mode_name(call->mode);
        host->json_object_set(ev, "mode", host->json_new_string(mode, strlen(mode)));
    }
    if (msg) {
        if (msg->role < sizeof roles / sizeof roles[0])
            host->json_object_set(
                ev, "role", host->json_new_string(roles[msg->role], strlen(roles[msg->role])));
        cpex_json *tools = host->json_new_array();
        for (size_t i = 0; tools && i < msg->part_count; i++) {
            const cpex_cmf_part *part = cpex_cmf_part_at(msg, i);
            const cpex_cmf_tool_call *tc = cpex_part_tool_call(part);
            const cpex_cmf_tool_result *tr = cpex_part_tool_result(part);
            cpex_str name = tc ? tc->name : tr ? tr->tool_name : (cpex_str){NULL, 0};
            if (name.ptr)
                host->json_array_append(tools, host->json_new_string(name.ptr, name.len));
        }
        if (tools)
            host->json_object_set(ev, "tools", tools);
        if (self->include_payload) {
            char *text = host->cmf_to_json(msg);
            cpex_json *payload = text ? host->json_parse(text, strlen(text)) : NULL;
            host->free(text);
            if (payload)
                host->json_object_set(ev, "payload", payload);
        }
    }
    /* Shown only with read_subject / read_request; otherwise simply absent. */
    cpex_str s = {NULL, 0};
    if (host->ext_get(call, CPEX_EXT_SUBJECT_ID, &s) == CPEX_HOST_OK)
        set_str(host, ev, "subject", s);
    if (host->ext_get(call, CPEX_EXT_REQUEST_ID, &s) == CPEX_HOST_OK)
        set_str(host, ev, "request_id", s);
    char *text = host->json_dump(ev);
    host->json_free(ev);
    return text;
}

/* Queue one line for the writer (or count it dropped). */
static int32_t queue_line(auditor *self, char *text);

static int32_t on_event(void *instance, const cpex_call *call)
{
    auditor *self = instance;
    return queue_line(self, format_event(self, call, NULL));
}

/* As an audit sink: one line per verdict, denied ones included. */
static int32_t on_verdict(void *instance, const cpex_call *call, const cpex_verdict *verdict)
{
    auditor *self = instance;
    return queue_line(self, format_event(self, call, verdict));
}

static int32_t queue_line(auditor *self, char *text)
{
    line *l = text ? malloc(sizeof *l) : NULL;
    if (!l) {
        self->host->free(text);
        pthread_mutex_lock(&self->lock);
        self->dropped++;
        pthread_mutex_unlock(&self->lock);
        return CPEX_ALLOW;
    }
    l->next = NULL;
    l->text = text;
    pthread_mutex_lock(&self->lock);
    if (self->queued >= self->max_queue || self->stop) {
        self->dropped++;
        pthread_mutex_unlock(&self->lock);
        self->host->free(text);
        free(l);
        return CPEX_ALLOW;
    }
    if (self->tail)
        self->tail->next = l;
    else
        self->head = l;
    self->tail = l;
    self->queued++;
    pthread_cond_signal(&self->wake);
    pthread_mutex_unlock(&self->lock);
    return CPEX_ALLOW;
}

/* Write a batch taken off the queue (without the lock: the disk may be slow). */
static void write_batch(auditor *self, line *batch, uint64_t dropped)
{
    while (batch) {
        line *next = batch->next;
        fputs(batch->text, self->file);
        fputc('\n', self->file);
        self->host->free(batch->text);
        free(batch);
        batch = next;
    }
    if (dropped)
        fprintf(self->file, "{\"plugin_note\":\"audit-log dropped %llu line(s): queue full\"}\n",
                (unsigned long long)dropped);
    fflush(self->file);
}

static void *writer_main(void *arg)
{
    auditor *self = arg;
    pthread_mutex_lock(&self->lock);
    for (;;) {
        while (!self->head && !self->dropped && !self->stop)
            pthread_cond_wait(&self->wake, &self->lock);
        line *batch = self->head;
        uint64_t dropped = self->dropped;
        self->head = self->tail = NULL;
        self->queued = 0;
        self->dropped = 0;
        int stop = self->stop;
        pthread_mutex_unlock(&self->lock);
        write_batch(self, batch, dropped);
        pthread_mutex_lock(&self->lock);
        /* Drain everything queued before stopping: shutdown loses nothing. */
        if (stop && !self->head && !self->dropped)
            break;
    }
    pthread_mutex_unlock(&self->lock);
    return NULL;
}

static int32_t initialize(void *instance, char *err, size_t err_cap)
{
    auditor *self = instance;
    int rc = pthread_create(&self->writer, NULL, writer_main, self);
    if (rc != 0) {
        cpex_plugin_errorf(err, err_cap, "cannot start the writer thread for '%s': %s", self->path,
                           strerror(rc));
        return 1;
    }
    self->running = 1;
    return 0;
}

/* Stop the writer after it wrote everything queued. */
static void stop_writer(auditor *self)
{
    if (!self->running)
        return;
    pthread_mutex_lock(&self->lock);
    self->stop = 1;
    pthread_cond_signal(&self->wake);
    pthread_mutex_unlock(&self->lock);
    pthread_join(self->writer, NULL);
    self->running = 0;
}

static void shutdown_cb(void *instance) { stop_writer(instance); }

static void destroy(void *instance)
{
    auditor *self = instance;
    stop_writer(self);
    /* Lines queued while no writer ran (none in a well-behaved host). */
    line *l = self->head;
    while (l) {
        line *next = l->next;
        self->host->free(l->text);
        free(l);
        l = next;
    }
    if (self->file)
        fclose(self->file);
    pthread_cond_destroy(&self->wake);
    pthread_mutex_destroy(&self->lock);
    free(self->path);
    free(self);
}

static const cpex_handler_reg handlers[] = {
    CPEX_HANDLER("cmf.tool_pre_invoke", on_event, "cmf"),
    CPEX_HANDLER("cmf.tool_post_invoke", on_event, "cmf"),
    CPEX_HANDLER("cmf.llm_input", on_event, "cmf"),
    CPEX_HANDLER("cmf.llm_output", on_event, "cmf"),
};

static int32_t create(const cpex_host_api *host, const cpex_plugin_config *config,
                      cpex_plugin_registration *out, char *err, size_t err_cap)
{
    const char *path = cpex_config_string(host, config, "path", NULL);
    const cpex_json *inc = cpex_config_get(host, config, "include_payload");
    int64_t max_queue = cpex_config_int(host, config, "max_queue", 10000);
    if (!path || !*path) {
        cpex_plugin_errorf(err, err_cap,
                           "config.path is required: the file to append audit lines to, e.g. "
                           "path: /var/log/cpex-audit.jsonl");
        return CPEX_CREATE_CONFIG_REJECTED;
    }
    if (inc && host->json_type(inc) != CPEX_JSON_BOOL) {
        cpex_plugin_errorf(err, err_cap, "config.include_payload must be true or false");
        return CPEX_CREATE_CONFIG_REJECTED;
    }
    if (max_queue < 1 || max_queue > 10000000) {
        cpex_plugin_errorf(err, err_cap, "config.max_queue must be between 1 and 10000000");
        return CPEX_CREATE_CONFIG_REJECTED;
    }
    if (config->hook_count == 0 && config->mode != CPEX_MODE_AUDIT)
        cpex_logf(host, NULL, CPEX_LOG_WARN,
                  "audit-log '%.*s' has no hooks: it is an audit sink only in mode: audit",
                  (int)config->name.len, config->name.ptr);
    if (config->mode != CPEX_MODE_AUDIT && config->mode != CPEX_MODE_FIRE_AND_FORGET)
        cpex_logf(host, NULL, CPEX_LOG_WARN,
                  "audit-log '%.*s' runs in a serial mode; audit or fire_and_forget logs what "
                  "the pipeline decided",
                  (int)config->name.len, config->name.ptr);
    auditor *self = calloc(1, sizeof *self);
    if (!self) {
        cpex_plugin_errorf(err, err_cap, "out of memory");
        return CPEX_CREATE_INIT_FAILED;
    }
    self->host = host;
    self->include_payload = inc ? host->json_bool(inc) : 0;
    self->max_queue = (size_t)max_queue;
    self->path = malloc(strlen(path) + 1);
    if (!self->path || pthread_mutex_init(&self->lock, NULL) != 0) {
        free(self->path);
        free(self);
        cpex_plugin_errorf(err, err_cap, "out of memory");
        return CPEX_CREATE_INIT_FAILED;
    }
    if (pthread_cond_init(&self->wake, NULL) != 0) {
        pthread_mutex_destroy(&self->lock);
        free(self->path);
        free(self);
        cpex_plugin_errorf(err, err_cap, "out of memory");
        return CPEX_CREATE_INIT_FAILED;
    }
    strcpy(self->path, path);
    /* "a": every write lands at the end, whoever else appends. */
    self->file = fopen(path, "a");
    if (!self->file) {
        int e = errno;
        cpex_plugin_errorf(err, err_cap,
                           "cannot open audit file '%s' for appending: %s; check that the "
                           "directory exists and is writable, or change config.path",
                           path, strerror(e));
        destroy(self);
        return CPEX_CREATE_CONFIG_REJECTED;
    }
    out->name = "audit-log";
    out->version = "1.0.0";
    out->instance = self;
    out->initialize = initialize;
    out->shutdown = shutdown_cb;
    out->destroy = destroy;
    out->handler_count = sizeof handlers / sizeof handlers[0];
    out->handlers = handlers;
    /* Without hooks: a sink for every verdict. With hooks, the handlers
       alone: one line per event, never two for one invocation. */
    if (config->hook_count == 0)
        out->verdict = on_verdict;
    return CPEX_CREATE_OK;
}

CPEX_PLUGIN(create, "audit-log", "1.0.0",
            "Appends one JSON line per verdict (an audit sink, without hooks) or per event",
            "cmf.tool_pre_invoke", "cmf.tool_post_invoke", "cmf.llm_input", "cmf.llm_output")
