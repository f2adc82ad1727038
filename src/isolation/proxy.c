/*
 * proxy.c — an isolated plugin's handlers and lifecycle, as the manager
 * calls them (see proxy.h).
 *
 * One call, on the caller's thread:
 *   1. take the serving worker (waiting for a restart until the deadline)
 *      and a free channel of it;
 *   2. write the request: the payload, and of the extensions and context
 *      exactly what the plugin could read in process (core/call_view.h,
 *      filtered by its capabilities) — nothing it may not see leaves;
 *   3. post it and wait: spinning first, then on the futex, until the
 *      reply, the worker's death, or the call's deadline;
 *   4. copy the reply out of shared memory, give the channel back, decode
 *      the copy strictly, and replay the plugin's requests through the
 *      host table against this call.
 * Outcomes: a deadline passed is a hard timeout: the worker is killed and
 * the call returns after its deadline, which the executor reports as
 * plugin_timeout. A worker that died, or sent a malformed reply (then it
 * is killed), ends the call as plugin_crashed under the plugin's on_error:
 * where on_error fail halts (sequential, concurrent) the call denies with
 * that code; elsewhere it is the handler error that on_error records or
 * disables for. (The executor has no way yet for a handler error to carry
 * a code of its own; docs/isolation.md.)
 *
 * An audit sink's verdict call takes the same way (a VERDICT request: the
 * call, then the verdict with its records). The call is the audit thread's
 * audit-mode call, so the replay refuses and records the sink's writes as
 * in process, and a crash or a hang is the sink's error or timeout, which
 * the audit thread records under the sink's on_error.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/call_view.h"
#include "cpex/cmf.h"
#include "cpex/codes.h"
#include "cpex/json.h"
#include "cpex/manager.h"
#include "isolation/proto.h"
#include "isolation/proxy.h"
#include "isolation/upcall.h"
#include "isolation/wire_cmf.h"
#include "isolation/wire_ext.h"
#include "isolation/wire_verdict.h"
#include "util/alloc.h"
#include "util/clock.h"
#include "util/text.h"

/* Replies up to this size are copied to the stack, not the heap. */
#define SMALL_REPLY 2048

/* ------------------------------------------------------------------ */
/* Failing a call                                                      */
/* ------------------------------------------------------------------ */

/* A failure with a code of its own (CPEX_CODE_PLUGIN_CRASHED: the worker
   was lost; CPEX_CODE_PLUGIN_TIMEOUT: past cpu_seconds_per_call), under the
   plugin's on_error (see the top of this file). Takes `details`. */
static int32_t fail(cpex__iso_proxy *p, const cpex_call *call, cpex_code which, const char *reason,
                    json_t *details)
{
    const char *code = cpex_code_name(which);
    if (p->on_error == CPEX_ON_ERROR_FAIL &&
        (call->mode == CPEX_MODE_SEQUENTIAL || call->mode == CPEX_MODE_CONCURRENT)) {
        p->host->deny(call, code, reason, NULL, cpex_json_from_jansson(details));
        return CPEX_DENY;
    }
    json_decref(details);
    char msg[1100];
    snprintf(msg, sizeof msg, "%s: %s", code, reason);
    p->host->set_error(call, msg);
    return CPEX_ERROR;
}

static int32_t crashed(cpex__iso_proxy *p, const cpex_call *call, const cpex__iso_inc *inc,
                       const char *what)
{
    char reason[1000];
    snprintf(reason, sizeof reason, "Plugin '%s' crashed: %s", p->name, what);
    json_t *d = json_object();
    if (inc && d) {
        json_object_set_new(d, "worker_pid", json_integer(inc->pid));
        if (inc->death_signal >= 0) {
            const char *abbrev = sigabbrev_np(inc->death_signal);
            char sig[32];
            snprintf(sig, sizeof sig, "SIG%s", abbrev ? abbrev : "?");
            json_object_set_new(d, "signal", json_integer(inc->death_signal));
            json_object_set_new(d, "signal_name", json_string(sig));
        }
        if (inc->death_status >= 0)
            json_object_set_new(d, "exit_status", json_integer(inc->death_status));
    }
    return fail(p, call, CPEX_CODE_PLUGIN_CRASHED, reason, d);
}

/* ------------------------------------------------------------------ */
/* Taking the worker                                                   */
/* ------------------------------------------------------------------ */

enum { TAKE_OK, TAKE_DOWN, TAKE_LATE };

/* The serving worker, one reference; else why not (TAKE_DOWN: it will not
   be back in time; TAKE_LATE: the deadline passed while waiting). */
static int take_worker(cpex__iso_proxy *p, int64_t deadline, cpex__iso_inc **out, char *why,
                       size_t cap)
{
    *out = NULL;
    pthread_mutex_lock(&p->lock);
    int rc = TAKE_LATE;
    for (;;) {
        cpex__iso_inc *inc = p->current;
        if (p->state == ISO_P_READY && inc && !atomic_load(&inc->condemned)) {
            atomic_fetch_add(&inc->refs, 1);
            *out = inc;
            rc = TAKE_OK;
            break;
        }
        int64_t now = cpex__now_ns();
        if (p->state == ISO_P_DISABLED || p->state == ISO_P_STOPPED) {
            snprintf(why, cap, "%s",
                     p->state == ISO_P_STOPPED ? "the plugin is stopped" : p->down_reason);
            rc = TAKE_DOWN;
            break;
        }
        if (p->state == ISO_P_DOWN && p->next_start_ns > deadline) {
            snprintf(why, cap, "no worker is running: %s; the next start is in %lld ms",
                     p->down_reason, (long long)((p->next_start_ns - now) / 1000000));
            rc = TAKE_DOWN;
            break;
        }
        if (now >= deadline) {
            snprintf(why, cap, "no worker was ready before the deadline: %s", p->down_reason);
            break;
        }
        struct timespec ts = {(time_t)(deadline / 1000000000), (long)(deadline % 1000000000)};
        pthread_cond_timedwait(&p->cond, &p->lock, &ts);
    }
    pthread_mutex_unlock(&p->lock);
    return rc;
}

/* Return after the deadline on every clock the executor may time with:
   the coarse one lags the precise one by up to a tick. */
static void sleep_past(int64_t deadline)
{
    for (int i = 0; i < 100 && cpex__clock_ns(true) <= deadline; i++) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
}

/* ------------------------------------------------------------------ */
/* Replaying the plugin's requests                                     */
/* ------------------------------------------------------------------ */

static void replay(cpex__iso_proxy *p, const cpex_call *call, cpex__iso_call_reply *r)
{
    const cpex_host_api *h = p->host;
    for (size_t i = 0; i < r->op_count; i++) {
        cpex__iso_op *op = &r->ops[i];
        json_t *j = op->json;
        op->json = NULL; /* each slot takes the value */
        switch (op->type) {
        case ISO_OP_LOG: h->log(call, op->num, op->a); break;
        case ISO_OP_DENY: h->deny(call, op->a, op->b, op->c, cpex_json_from_jansson(j)); break;
        case ISO_OP_SET_ERROR: h->set_error(call, op->a); break;
        case ISO_OP_METADATA: h->set_metadata(call, op->a, cpex_json_from_jansson(j)); break;
        case ISO_OP_PAYLOAD_CMF:
            /* A refused payload is replayed with a stand-in: the host's slot
               records the refusal exactly as in process. */
            h->set_payload_cmf(call, op->num ? op->cmf : cpex_cmf_new(CPEX_ROLE_USER));
            op->cmf = NULL;
            break;
        case ISO_OP_PAYLOAD_JSON:
            h->set_payload_json(call, cpex_json_from_jansson(op->num ? j : json_null()));
            if (!op->num)
                json_decref(j);
            break;
        case ISO_OP_HEADER: h->ext_set_header(call, op->num, op->a, op->b); break;
        case ISO_OP_LABEL: h->ext_append_label(call, op->a); break;
        case ISO_OP_REMOVE_LABEL: h->ext_remove_label(call, op->a); break;
        case ISO_OP_CUSTOM: h->ext_set_custom(call, op->a, cpex_json_from_jansson(j)); break;
        case ISO_OP_CTX_SET: h->ctx_set(call, op->num, op->a, cpex_json_from_jansson(j)); break;
        case ISO_OP_LOST: {
            char line[200];
            snprintf(line, sizeof line,
                     "%u requests of the plugin to the host (logs, writes) were lost: its reply "
                     "outgrew the transport's %u MiB",
                     op->num, ISO_AREA_SIZE >> 20);
            h->log(call, CPEX_LOG_WARN, line);
            break;
        }
        default: json_decref(j); break;
        }
    }
}

/* ------------------------------------------------------------------ */
/* A call                                                              */
/* ------------------------------------------------------------------ */

/* A CALL of handler `handler`, or with `verdict` a VERDICT (proto.h). */
static bool write_request(cpex__iso_wr *w, const cpex_call *call, uint32_t handler,
                          const cpex__call_view *v, const cpex_verdict *verdict)
{
    const cpex_payload *pl = call->payload;
    cpex__iso_wr_u8(w, verdict ? ISO_REQ_VERDICT : ISO_REQ_CALL);
    cpex__iso_wr_u32(w, handler);
    cpex__iso_wr_u32(w, call->mode);
    cpex__iso_wr_i64(w, call->deadline_ns);
    cpex__iso_wr_u32(w, v->caps);
    cpex__iso_wr_strn(w, call->hook.ptr, call->hook.len);
    cpex__iso_wr_strn(w, call->plugin_name.ptr, call->plugin_name.len);
    if (!pl || !pl->data) {
        cpex__iso_wr_u8(w, 0);
    } else if (pl->kind == CPEX_PAYLOAD_CMF) {
        cpex__iso_wr_u8(w, CPEX_PAYLOAD_CMF);
        cpex__iso_wr_cmf(w, pl->data);
    } else {
        cpex__iso_wr_u8(w, CPEX_PAYLOAD_JSON);
        cpex__iso_wr_json(w, pl->data);
    }
    cpex__iso_wr_ext(w, v->ext, v->caps);
    cpex__iso_wr_ctx(w, v->ctx_local);
    cpex__iso_wr_ctx(w, v->ctx_global);
    if (verdict)
        cpex__iso_wr_verdict(w, verdict);
    return !w->over;
}

static int handler_index(const cpex__iso_proxy *p, cpex_str hook)
{
    for (size_t i = 0; i < p->handler_count; i++) {
        const char *h = p->handlers[i].hook;
        if (strlen(h) == hook.len && memcmp(h, hook.ptr, hook.len) == 0)
            return (int)i;
    }
    return -1;
}

/* Log what happened outside calls (restarts, the disable notice) under
   this call, so it reaches the manager's log with the plugin's name. */
static void flush_notes(cpex__iso_proxy *p, const cpex_call *call)
{
    pthread_mutex_lock(&p->lock);
    size_t n = p->pending_count;
    struct {
        uint32_t level;
        char *text;
    } lines[sizeof p->pending / sizeof *p->pending];
    memcpy(lines, p->pending, n * sizeof *lines);
    p->pending_count = 0;
    pthread_mutex_unlock(&p->lock);
    for (size_t i = 0; i < n; i++) {
        p->host->log(call, lines[i].level, lines[i].text);
        cpex__free(lines[i].text);
    }
}

/* One call of handler `idx`, or with `verdict` of the verdict handler: the
   same request, wait and replay (see the top of this file). */
static int32_t forward(cpex__iso_proxy *p, const cpex_call *call, int idx,
                       const cpex_verdict *verdict)
{
    char why[900];
    if (atomic_load_explicit(&p->pending_count, memory_order_relaxed)) /* news: take the lock */
        flush_notes(p, call);
    cpex__call_view view;
    if (idx < 0 || cpex__call_view_get(call, &view) != 0) {
        p->host->set_error(call, "isolation: a call the proxy cannot place (unknown hook or call)");
        return CPEX_ERROR;
    }
    if (call->payload && call->payload->kind == CPEX_PAYLOAD_CUSTOM) {
        snprintf(why, sizeof why,
                 "the payload is of the host-defined type '%.*s', which cannot "
                 "be sent to a worker process; run this plugin in process (isolation: none)",
                 (int)call->payload->type_name.len,
                 call->payload->type_name.ptr ? call->payload->type_name.ptr : "");
        p->host->set_error(call, why);
        return CPEX_ERROR;
    }
    int64_t deadline = call->deadline_ns;
    cpex__iso_inc *inc = NULL;
    int ch = -1;
    /* A worker that dies while the call waits for a channel hands over to
       the next one; a few times at most. */
    for (int attempt = 0; ch < 0; attempt++) {
        int took = take_worker(p, deadline, &inc, why, sizeof why);
        if (took == TAKE_DOWN)
            return crashed(p, call, NULL, why);
        if (took == TAKE_LATE) {
            sleep_past(deadline);
            p->host->set_error(call, why);
            return CPEX_ERROR;
        }
        ch = cpex__iso_inc_take_channel(inc, false, deadline);
        if (ch >= 0)
            break;
        bool dead = atomic_load(&inc->dead) || atomic_load(&inc->condemned);
        cpex__iso_inc_unref(inc);
        if (!dead || attempt >= 8) {
            sleep_past(deadline);
            snprintf(why, sizeof why,
                     "all %u channels of the worker stayed busy until the "
                     "deadline (raise workers:)",
                     p->channels);
            p->host->set_error(call, why);
            return CPEX_ERROR;
        }
    }
    cpex__iso_chan *c = &inc->chans[ch];
    cpex__iso_wr w;
    cpex__iso_wr_init(&w, c->req, ISO_AREA_SIZE);
    if (!write_request(&w, call, (uint32_t)idx, &view, verdict)) {
        cpex__iso_inc_give_channel(inc, ch);
        cpex__iso_inc_unref(inc);
        snprintf(why, sizeof why,
                 "the call's payload, extensions and context do not fit the "
                 "transport's %u MiB",
                 ISO_AREA_SIZE >> 20);
        p->host->set_error(call, why);
        return CPEX_ERROR;
    }
    cpex__iso_chan_post(c, (uint32_t)w.len);
    int waited;
    while ((waited = cpex__iso_chan_wait_reply(c, &inc->dead, deadline)) == ISO_WAIT_UPCALL)
        cpex__iso_upcall_serve(p->host, call, c, w.len);

    if (waited == ISO_WAIT_TIMEOUT) {
        char text[300];
        snprintf(text, sizeof text, "a call of hook '%.*s' overran its deadline",
                 (int)call->hook.len, call->hook.ptr);
        cpex__iso_inc_condemn(inc, ISO_CONDEMN_TIMEOUT, text);
        cpex__iso_inc_unref(inc);
        snprintf(why, sizeof why,
                 "plugin '%s' overran its timeout: its worker was killed at the "
                 "deadline and a new one is started",
                 p->name);
        p->host->log(call, CPEX_LOG_WARN, why);
        sleep_past(deadline);
        p->host->set_error(call, why);
        return CPEX_ERROR;
    }
    if (waited == ISO_WAIT_DEAD && p->cpu_seconds > 0 && inc->death_signal == SIGXCPU) {
        snprintf(why, sizeof why,
                 "Plugin '%s' used more than its %g s of CPU time for one call "
                 "(sandbox.cpu_seconds_per_call): its worker was killed and a new one is started",
                 p->name, p->cpu_seconds);
        cpex__iso_inc_unref(inc);
        return fail(p, call, CPEX_CODE_PLUGIN_TIMEOUT, why,
                    json_pack("{s:f}", "cpu_seconds_per_call", p->cpu_seconds));
    }
    if (waited == ISO_WAIT_DEAD) {
        snprintf(why, sizeof why, "its worker process %s", inc->death_text);
        int32_t rc = crashed(p, call, inc, why);
        cpex__iso_inc_unref(inc);
        return rc;
    }

    /* The reply: copied out first, never read twice in shared memory. */
    /* Read once: a hostile worker may change it while we look. */
    uint32_t n = *(volatile uint32_t *)&c->ctl->rep_len;
    uint8_t small[SMALL_REPLY];
    uint8_t *copy = n <= sizeof small ? small : n <= ISO_AREA_SIZE ? cpex__malloc(n) : NULL;
    if (copy)
        memcpy(copy, c->rep, n);
    cpex__iso_inc_give_channel(inc, ch);
    cpex__iso_call_reply r;
    char bad[200];
    bool ok = false;
    if (!copy)
        snprintf(bad, sizeof bad,
                 n > ISO_AREA_SIZE ? "its length runs past the reply area" : "out of memory");
    else
        ok = cpex__iso_call_reply_decode(copy, n, &r, bad, sizeof bad);
    if (!ok) {
        char text[300];
        snprintf(text, sizeof text, "it sent a malformed reply (%s)", bad);
        cpex__iso_inc_condemn(inc, ISO_CONDEMN_MALFORMED, text);
        snprintf(why, sizeof why,
                 "its worker sent a malformed reply (%s); the worker was killed "
                 "and a new one is started",
                 bad);
        cpex__iso_inc_unref(inc);
        if (copy != small)
            cpex__free(copy);
        return crashed(p, call, NULL, why);
    }
    atomic_fetch_add_explicit(&inc->served, 1, memory_order_relaxed);
    cpex__iso_inc_unref(inc);
    if (atomic_load_explicit(&p->start_failures, memory_order_relaxed))
        atomic_store(&p->start_failures, 0);
    int32_t decision;
    if (r.status == ISO_REP_BADREQ) {
        snprintf(why, sizeof why, "isolation: %s", r.message);
        p->host->set_error(call, why);
        decision = CPEX_ERROR;
    } else {
        replay(p, call, &r);
        decision = r.decision;
    }
    cpex__iso_call_reply_free(&r);
    if (copy != small)
        cpex__free(copy);
    return decision;
}

int32_t cpex__iso_proxy_handler(void *instance, const cpex_call *call)
{
    cpex__iso_proxy *p = instance;
    return forward(p, call, handler_index(p, call->hook), NULL);
}

int32_t cpex__iso_proxy_verdict(void *instance, const cpex_call *call, const cpex_verdict *verdict)
{
    cpex__iso_proxy *p = instance;
    if (!verdict) {
        p->host->set_error(call, "isolation: a verdict call without a verdict");
        return CPEX_ERROR;
    }
    return forward(p, call, 0, verdict);
}

/* ------------------------------------------------------------------ */
/* Lifecycle                                                           */
/* ------------------------------------------------------------------ */

/* A control request to the serving worker within the load timeout. */
static int control(cpex__iso_proxy *p, uint8_t op, char *why, size_t cap, cpex__iso_ctl_reply *r,
                   uint8_t **buf)
{
    int64_t deadline = cpex__deadline_add(cpex__now_ns(), p->load_timeout_ns);
    cpex__iso_inc *inc = NULL;
    if (take_worker(p, deadline, &inc, why, cap) != TAKE_OK)
        return -1;
    int rc = cpex__iso_inc_control(inc, op, &op, 1, deadline, false, r, buf, why, cap);
    cpex__iso_inc_unref(inc);
    return rc;
}

static void log_replies(cpex__iso_proxy *p, const cpex__iso_ctl_reply *r)
{
    for (size_t i = 0; i < r->log_count; i++)
        p->host->log(NULL, r->logs[i].level, r->logs[i].text);
}

int32_t cpex__iso_proxy_initialize(void *instance, char *err, size_t err_cap)
{
    cpex__iso_proxy *p = instance;
    if (!p->has_initialize) {
        pthread_mutex_lock(&p->lock);
        p->initialized = true;
        pthread_mutex_unlock(&p->lock);
        return 0;
    }
    char why[700];
    cpex__iso_ctl_reply r;
    uint8_t *buf = NULL;
    if (control(p, ISO_REQ_INIT, why, sizeof why, &r, &buf) != 0) {
        snprintf(err, err_cap, "%s", why);
        return 1;
    }
    log_replies(p, &r);
    int32_t rc = 0;
    if (r.status == ISO_REP_OK) {
        pthread_mutex_lock(&p->lock);
        p->initialized = true;
        pthread_mutex_unlock(&p->lock);
    } else {
        snprintf(err, err_cap, "%s", r.message ? r.message : "initialize failed");
        rc = 1;
    }
    cpex__iso_ctl_reply_free(&r);
    cpex__free(buf);
    return rc;
}

void cpex__iso_proxy_shutdown(void *instance)
{
    cpex__iso_proxy *p = instance;
    pthread_mutex_lock(&p->lock);
    bool was = p->initialized;
    p->initialized = false;
    pthread_mutex_unlock(&p->lock);
    if (!was || !p->has_shutdown)
        return;
    char why[700];
    cpex__iso_ctl_reply r;
    uint8_t *buf = NULL;
    if (control(p, ISO_REQ_SHUTDOWN, why, sizeof why, &r, &buf) != 0) {
        char line[800];
        snprintf(line, sizeof line, "plugin '%s': shutdown did not run: %s", p->name, why);
        p->host->log(NULL, CPEX_LOG_WARN, line);
        return;
    }
    log_replies(p, &r);
    cpex__iso_ctl_reply_free(&r);
    cpex__free(buf);
}

void cpex__iso_proxy_destroy(void *instance)
{
    cpex__iso_proxy *p = instance;
    /* DESTROY while the supervisor (the worker's parent thread) still runs:
       its end would kill the worker before its destroy ran. STOPPED first,
       so the worker's exit is not taken for a crash. */
    pthread_mutex_lock(&p->lock);
    cpex__iso_inc *inc = p->state == ISO_P_READY ? p->current : NULL;
    if (inc)
        atomic_fetch_add(&inc->refs, 1);
    p->state = ISO_P_STOPPED;
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->lock);
    if (inc) {
        char why[700];
        cpex__iso_ctl_reply r;
        uint8_t *buf = NULL;
        uint8_t op = ISO_REQ_DESTROY;
        int64_t deadline = cpex__deadline_add(cpex__now_ns(), p->load_timeout_ns);
        if (cpex__iso_inc_control(inc, op, &op, 1, deadline, false, &r, &buf, why, sizeof why) ==
            0) {
            log_replies(p, &r);
            cpex__iso_ctl_reply_free(&r);
            cpex__free(buf);
        }
        cpex__iso_inc_unref(inc);
    }
    cpex__iso_supervisor_stop(p);
    for (size_t i = 0; i < p->handler_count; i++) {
        cpex__free((char *)p->handlers[i].hook);
        cpex__free((char *)p->handlers[i].payload_type);
    }
    cpex__free(p->handlers);
    cpex__free(p->name);
    cpex__free(p->worker_path);
    cpex__free(p->load_req);
    cpex__free(p->reported_name);
    cpex__free(p->reported_version);
    cpex__free(p->origin);
    cpex__free(p->protections);
    for (size_t i = 0; i < p->pending_count; i++)
        cpex__free(p->pending[i].text);
    cpex_error_cleanup(&p->first_err);
    pthread_cond_destroy(&p->cond);
    pthread_mutex_destroy(&p->lock);
    cpex__free(p);
}
