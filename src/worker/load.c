/*
 * load.c — the control requests: LOAD (sandbox, then the loader's own
 * cpex__lib_create with this worker's host table), INIT, SHUTDOWN and
 * DESTROY; and the log lines a plugin writes outside any call.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cpex/manager.h"
#include "isolation/proto.h"
#include "loader/lib_factory.h"
#include "util/alloc.h"
#include "util/errors.h"
#include "worker/worker.h"

/* ------------------------------------------------------------------ */
/* Log lines outside calls                                             */
/* ------------------------------------------------------------------ */

#define MAX_CONTROL_LOGS 256

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static bool log_collect;
static struct {
    uint32_t level;
    char *text;
} logs[MAX_CONTROL_LOGS];
static size_t log_count, log_lost;

void wk_log_control(uint32_t level, const char *text)
{
    pthread_mutex_lock(&log_lock);
    if (log_collect) {
        char *copy = log_count < MAX_CONTROL_LOGS ? cpex__strdup(text) : NULL;
        if (copy) {
            logs[log_count].level = level;
            logs[log_count++].text = copy;
        } else {
            log_lost++;
        }
    } else {
        /* A plugin's own thread, between requests: nobody to hand it to. */
        fprintf(stderr, "cpex-worker[%s]: %s: %s\n", wk.plugin_name,
                level >= CPEX_LOG_ERROR  ? "error"
                : level >= CPEX_LOG_WARN ? "warn"
                                         : "info",
                text);
    }
    pthread_mutex_unlock(&log_lock);
}

void wk_logs_begin(void)
{
    pthread_mutex_lock(&log_lock);
    log_collect = true;
    pthread_mutex_unlock(&log_lock);
}

void wk_logs_write(cpex__iso_wr *w)
{
    pthread_mutex_lock(&log_lock);
    size_t n = log_count + (log_lost ? 1 : 0);
    cpex__iso_wr_u32(w, (uint32_t)n);
    for (size_t i = 0; i < log_count; i++) {
        cpex__iso_wr_u32(w, logs[i].level);
        char *fixed = cpex__iso_text_fix(logs[i].text, strlen(logs[i].text));
        cpex__iso_wr_cstr(w, fixed ? fixed : "(out of memory)");
        if (fixed != logs[i].text)
            cpex__free(fixed);
        cpex__free(logs[i].text);
    }
    if (log_lost) {
        char line[96];
        snprintf(line, sizeof line, "%zu more log lines were dropped", log_lost);
        cpex__iso_wr_u32(w, CPEX_LOG_WARN);
        cpex__iso_wr_cstr(w, line);
    }
    log_count = log_lost = 0;
    log_collect = false;
    pthread_mutex_unlock(&log_lock);
}

static void factory_log(void *ctx, uint32_t level, const char *message)
{
    (void)ctx;
    if (message)
        wk_log_control(level, message);
}

/* ------------------------------------------------------------------ */
/* LOAD                                                                */
/* ------------------------------------------------------------------ */

static const char **read_paths(cpex__iso_rd *r, size_t *count)
{
    uint32_t n = cpex__iso_rd_count(r, 5, "paths");
    *count = 0;
    const char **v = cpex__calloc(n + 1, sizeof *v);
    if (!v) {
        cpex__iso_rd_fail(r, "out of memory");
        return NULL;
    }
    for (uint32_t i = 0; i < n && !r->bad; i++)
        v[i] = cpex__iso_rd_str(r, ISO_S_TEXT, "path").ptr;
    *count = r->bad ? 0 : n;
    return v;
}

/* A thread CPU clock timer per channel, for cpu_seconds_per_call: SIGXCPU
   (whose default action ends the process) when a handler overruns. */
static void make_cpu_timer(wchan *c, pid_t tid)
{
    struct sigevent sev;
    memset(&sev, 0, sizeof sev);
    sev.sigev_notify = SIGEV_THREAD_ID;
    sev.sigev_signo = SIGXCPU;
    sev._sigev_un._tid = tid;
    c->has_timer = timer_create(CLOCK_THREAD_CPUTIME_ID, &sev, &c->cpu_timer) == 0;
}

static void *channel_thread(void *arg)
{
    wchan *c = arg;
    if (wk.cpu_limit_ns)
        make_cpu_timer(c, gettid());
    return wk_serve_thread(arg);
}

static void reply_load(cpex__iso_chan *ch, uint32_t seq, const wk_sandbox_res *sb)
{
    const cpex_plugin_registration *reg = &wk.plugin.registration;
    cpex__iso_wr w;
    cpex__iso_wr_init(&w, ch->rep, ISO_AREA_SIZE);
    cpex__iso_wr_u8(&w, ISO_REP_OK);
    cpex__iso_wr_cstr(&w, wk.plugin.origin ? wk.plugin.origin : "");
    cpex__iso_wr_cstr(&w, reg->name);
    cpex__iso_wr_cstr(&w, reg->version);
    cpex__iso_wr_u8(&w, reg->initialize != NULL);
    cpex__iso_wr_u8(&w, reg->shutdown != NULL);
    cpex__iso_wr_u8(&w, wk_has_verdict());
    cpex__iso_wr_u32(&w, (uint32_t)reg->handler_count);
    for (size_t i = 0; i < reg->handler_count; i++) {
        cpex__iso_wr_cstr(&w, reg->handlers[i].hook);
        cpex__iso_wr_cstr(&w, reg->handlers[i].payload_type);
    }
    cpex__iso_wr_u32(&w, sb->bits);
    cpex__iso_wr_cstr(&w, sb->summary);
    cpex__iso_wr_u32(&w, (uint32_t)sb->warning_count);
    for (size_t i = 0; i < sb->warning_count; i++)
        cpex__iso_wr_cstr(&w, sb->warnings[i]);
    wk_logs_write(&w);
    cpex__iso_chan_reply(ch, seq, (uint32_t)w.len);
}

static void reply_load_failed(cpex__iso_chan *ch, uint32_t seq, cpex_error *err)
{
    cpex__iso_wr w;
    cpex__iso_wr_init(&w, ch->rep, ISO_AREA_SIZE);
    cpex__iso_wr_u8(&w, ISO_REP_FAILED);
    cpex__iso_wr_u32(&w, (uint32_t)(err->count ? err->count : 1));
    for (size_t i = 0; i < err->count; i++) {
        cpex__iso_wr_i32(&w, err->items[i].code);
        const char *m = err->items[i].message ? err->items[i].message : "";
        char *fixed = cpex__iso_text_fix(m, strlen(m));
        cpex__iso_wr_cstr(&w, fixed ? fixed : "(out of memory)");
        if (fixed != m)
            cpex__free(fixed);
    }
    if (!err->count) {
        cpex__iso_wr_i32(&w, CPEX_E_LOAD);
        cpex__iso_wr_cstr(&w, "the plugin could not be created (no message)");
    }
    wk_logs_write(&w);
    cpex__iso_chan_reply(ch, seq, (uint32_t)w.len);
}

/* The sandbox, once applied (by PREPARE or by LOAD), and what it reported. */
static bool sandboxed;
static wk_sandbox_res sandbox;

static void reply_prepared(cpex__iso_chan *ch, uint32_t seq)
{
    cpex__iso_wr w;
    cpex__iso_wr_init(&w, ch->rep, ISO_AREA_SIZE);
    cpex__iso_wr_u8(&w, ISO_REP_OK);
    wk_logs_write(&w);
    cpex__iso_chan_reply(ch, seq, (uint32_t)w.len);
}

/* LOAD, or with `prepare` PREPARE: the same request, stopping after the sandbox. */
static void do_load(const uint8_t *req, size_t len, cpex__iso_chan *ch, uint32_t seq, bool prepare)
{
    cpex__iso_rd r;
    cpex__iso_rd_init(&r, req, len);
    cpex__iso_rd_u8(&r);
    wk_sandbox_req sb;
    memset(&sb, 0, sizeof sb);
    sb.network = cpex__iso_rd_u32(&r) != 0;
    sb.require = cpex__iso_rd_u32(&r) != 0;
    sb.memory_mb = cpex__iso_rd_u64(&r);
    sb.open_files = cpex__iso_rd_u32(&r);
    sb.cpu_seconds = cpex__iso_rd_f64(&r);
    sb.read_paths = read_paths(&r, &sb.read_count);
    sb.write_paths = read_paths(&r, &sb.write_count);
    cpex_str kind = cpex__iso_rd_str(&r, ISO_S_TEXT, "kind");
    cpex_str base_dir = cpex__iso_rd_str(&r, ISO_S_TEXT | ISO_S_OPTIONAL, "base_dir");
    cpex_str source = cpex__iso_rd_str(&r, ISO_S_TEXT | ISO_S_OPTIONAL, "source");
    cpex_str name = cpex__iso_rd_str(&r, ISO_S_TEXT, "name");
    uint32_t mode = cpex__iso_rd_u32(&r);
    int32_t priority = cpex__iso_rd_i32(&r);
    uint32_t nhooks = cpex__iso_rd_count(&r, 5, "hooks");
    cpex_str *hooks = cpex__calloc(nhooks + 1, sizeof *hooks);
    for (uint32_t i = 0; hooks && i < nhooks && !r.bad; i++)
        hooks[i] = cpex__iso_rd_str(&r, ISO_S_TEXT, "hook");
    cpex_str config_json = cpex__iso_rd_str(&r, ISO_S_TEXT, "config");
    uint32_t on_error = cpex__iso_rd_u32(&r);
    wk_logs_begin();
    cpex_error err = CPEX_ERROR_INIT;
    json_t *config = NULL;
    char *library = NULL;
    if (r.bad || !hooks || !sb.read_paths || !sb.write_paths) {
        cpex__error_add(&err, CPEX_E_LOAD, NULL, "the worker could not read its LOAD request: %s",
                        r.bad ? r.why : "out of memory");
        goto fail;
    }
    snprintf(wk.plugin_name, sizeof wk.plugin_name, "%s", name.ptr);
    if (cpex__lib_resolve(kind.ptr, base_dir.ptr, &library, &err) != CPEX_OK)
        goto fail;
    config = json_loadb(config_json.ptr, config_json.len, JSON_DECODE_ANY, NULL);
    if (!config) {
        cpex__error_add(&err, CPEX_E_LOAD, NULL, "the worker could not read the config block");
        goto fail;
    }

    /* The sandbox first: the library's constructors, its entry point and
       everything after run inside it. */
    sb.library = library;
    if (!sandboxed) {
        wk_sandbox_apply(&sb, &sandbox);
        if (sandbox.error[0]) {
            cpex__error_add(&err, CPEX_E_LOAD, NULL, "%s", sandbox.error);
            goto fail;
        }
        sandboxed = true;
    }
    wk.cpu_limit_ns = sb.cpu_seconds > 0 ? (int64_t)(sb.cpu_seconds * 1e9) : 0;
    if (prepare) {
        reply_prepared(ch, seq);
        goto done;
    }

    cpex_plugin_config pc;
    memset(&pc, 0, sizeof pc);
    pc.struct_size = (uint32_t)sizeof pc;
    pc.mode = mode;
    pc.name = name;
    pc.kind = kind;
    pc.hook_count = nhooks;
    pc.hooks = hooks;
    pc.config_json = config_json;
    pc.config = (const cpex_json *)config;
    pc.priority = priority;
    cpex_factory_request fr;
    memset(&fr, 0, sizeof fr);
    fr.struct_size = (uint32_t)sizeof fr;
    fr.config = &pc;
    fr.config_block = config;
    fr.source = source.ptr;
    fr.base_dir = base_dir.ptr;
    fr.host = wk_host_table();
    fr.log = factory_log;
    fr.on_error = on_error;
    memset(&wk.plugin, 0, sizeof wk.plugin);
    wk.plugin.registration.struct_size = (uint32_t)sizeof wk.plugin.registration;
    if (cpex__lib_create(NULL, &fr, &wk.plugin, &err) != CPEX_OK)
        goto fail;
    wk.loaded = true;
    if (wk.cpu_limit_ns)
        make_cpu_timer(&wk.chans[0], gettid());
    for (uint32_t i = 1; i < wk.channels; i++)
        wk.chans[i].has_thread =
            pthread_create(&wk.chans[i].thread, NULL, channel_thread, &wk.chans[i]) == 0;
    reply_load(ch, seq, &sandbox);
done:
    json_decref(config);
    cpex__free(library);
    cpex__free(hooks);
    cpex__free(sb.read_paths);
    cpex__free(sb.write_paths);
    return;
fail:
    reply_load_failed(ch, seq, &err);
    cpex_error_cleanup(&err);
    json_decref(config);
    cpex__free(library);
    cpex__free(hooks);
    cpex__free(sb.read_paths);
    cpex__free(sb.write_paths);
}

/* ------------------------------------------------------------------ */
/* The others                                                          */
/* ------------------------------------------------------------------ */

bool wk_control(uint8_t op, const uint8_t *req, size_t len, cpex__iso_chan *ch)
{
    uint32_t seq = atomic_load(&ch->ctl->req_seq);
    if (op == ISO_REQ_LOAD || op == ISO_REQ_PREPARE) {
        if (wk.loaded) {
            cpex__iso_wr w;
            cpex__iso_wr_init(&w, ch->rep, ISO_AREA_SIZE);
            cpex__iso_wr_u8(&w, ISO_REP_BADREQ);
            cpex__iso_wr_cstr(&w, "the plugin is loaded already");
            cpex__iso_chan_reply(ch, seq, (uint32_t)w.len);
            return false;
        }
        do_load(req, len, ch, seq, op == ISO_REQ_PREPARE);
        return false;
    }
    const cpex_plugin_registration *reg = &wk.plugin.registration;
    cpex__iso_wr w;
    cpex__iso_wr_init(&w, ch->rep, ISO_AREA_SIZE);
    wk_logs_begin();
    bool end = false;
    if (!wk.loaded) {
        cpex__iso_wr_u8(&w, ISO_REP_BADREQ);
        cpex__iso_wr_cstr(&w, "no plugin is loaded");
        wk_logs_write(&(cpex__iso_wr){0});
        cpex__iso_chan_reply(ch, seq, (uint32_t)w.len);
        return op == ISO_REQ_DESTROY;
    }
    if (op == ISO_REQ_INIT) {
        char msg[1024] = "";
        int32_t rc = reg->initialize ? reg->initialize(reg->instance, msg, sizeof msg - 1) : 0;
        msg[sizeof msg - 1] = '\0';
        if (rc == 0) {
            cpex__iso_wr_u8(&w, ISO_REP_OK);
        } else {
            cpex__iso_wr_u8(&w, ISO_REP_FAILED);
            char *fixed = cpex__iso_text_fix(msg, strlen(msg));
            cpex__iso_wr_cstr(&w, fixed ? fixed : "(out of memory)");
            if (fixed != msg)
                cpex__free(fixed);
        }
    } else if (op == ISO_REQ_SHUTDOWN) {
        if (reg->shutdown && !wk.shut_down)
            reg->shutdown(reg->instance);
        wk.shut_down = true;
        cpex__iso_wr_u8(&w, ISO_REP_OK);
    } else if (op == ISO_REQ_DESTROY) {
        if (reg->destroy)
            reg->destroy(reg->instance);
        if (wk.plugin.release)
            wk.plugin.release(wk.plugin.release_data);
        cpex__free(wk.plugin.origin);
        wk.loaded = false;
        cpex__iso_wr_u8(&w, ISO_REP_OK);
        end = true;
    } else {
        cpex__iso_wr_u8(&w, ISO_REP_BADREQ);
        cpex__iso_wr_cstr(&w, "unknown request");
        wk_logs_write(&(cpex__iso_wr){0});
        cpex__iso_chan_reply(ch, seq, (uint32_t)w.len);
        return false;
    }
    wk_logs_write(&w);
    cpex__iso_chan_reply(ch, seq, (uint32_t)w.len);
    return end;
}
