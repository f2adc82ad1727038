/*
 * serve.c — one CALL: the request read as the plugin's call (payload and
 * extensions as views into the request area: no copy), the handler run,
 * the reply finished. A VERDICT is the same call with a verdict after it
 * (wire_verdict.h), handed to the plugin's verdict handler instead. Each
 * channel has its own thread and call state, so calls on different
 * channels run at once, as they would in process.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cpex/manager.h"
#include "isolation/proto.h"
#include "isolation/wire_cmf.h"
#include "isolation/wire_verdict.h"
#include "worker/worker.h"

static void reply_badreq(cpex__iso_chan *ch, uint32_t seq, const char *why)
{
    cpex__iso_wr w;
    cpex__iso_wr_init(&w, ch->rep, ISO_AREA_SIZE);
    cpex__iso_wr_u8(&w, ISO_REP_BADREQ);
    cpex__iso_wr_cstr(&w, why);
    cpex__iso_chan_reply(ch, seq, (uint32_t)w.len);
}

/* Arm (or, with 0, disarm) this thread's CPU time limit. */
static void cpu_limit(wchan *c, int64_t ns)
{
    if (!c->has_timer)
        return;
    struct itimerspec its;
    memset(&its, 0, sizeof its);
    its.it_value.tv_sec = (time_t)(ns / 1000000000);
    its.it_value.tv_nsec = (long)(ns % 1000000000);
    timer_settime(c->cpu_timer, 0, &its, NULL);
}

/* The test hook of docs/testing.md: corrupt the reply to a call of hook
   "test.garble", in the way CPEX_WORKER_TEST_GARBLE names, so tests can
   prove the host refuses it. Never set outside tests. */
static size_t garble(const char *mode, uint8_t *rep, size_t len)
{
    if (strcmp(mode, "trailing") == 0) {
        rep[len] = 0x5a;
        return len + 1;
    }
    if (strcmp(mode, "truncate") == 0)
        return len > 3 ? len - 3 : 0;
    if (strcmp(mode, "status") == 0) {
        rep[0] = 0x77;
        return len;
    }
    if (strcmp(mode, "op") == 0 || strcmp(mode, "utf8") == 0 || strcmp(mode, "count") == 0) {
        /* Replace the ops with one bad one (header: u8 status, i32, u32 count). */
        uint32_t one = strcmp(mode, "count") == 0 ? 0x7fffffffu : 1;
        memcpy(rep + 5, &one, 4);
        size_t n = 9;
        if (strcmp(mode, "op") == 0) {
            rep[n++] = 0xee;
        } else if (strcmp(mode, "utf8") == 0) {
            static const uint8_t bad[] = {ISO_OP_SET_ERROR, 3, 0, 0, 0, 0xff, 0xfe, 'x', 0};
            memcpy(rep + n, bad, sizeof bad);
            n += sizeof bad;
        }
        return n;
    }
    if (strcmp(mode, "length") == 0)
        return ISO_AREA_SIZE + 4096u; /* rep_len past the area */
    return len;
}

void wk_serve_call(wchan *c, const uint8_t *req, size_t len)
{
    cpex__iso_chan *ch = &c->ch;
    uint32_t seq = atomic_load_explicit(&ch->ctl->req_seq, memory_order_acquire);
    wcall *wc = &c->call;
    cpex__iso_rd r;
    cpex__iso_rd_init(&r, req, len);
    r.trusted = true; /* the host's text: a request costs no UTF-8 scan */
    bool verdict = cpex__iso_rd_u8(&r) == ISO_REQ_VERDICT; /* else CALL */
    uint32_t handler = cpex__iso_rd_u32(&r);
    uint32_t mode = cpex__iso_rd_u32(&r);
    int64_t deadline = cpex__iso_rd_i64(&r);
    uint32_t caps = cpex__iso_rd_u32(&r);
    cpex_str hook = cpex__iso_rd_str(&r, ISO_S_TEXT, "hook");
    cpex_str name = cpex__iso_rd_str(&r, ISO_S_TEXT, "plugin name");
    uint8_t kind = cpex__iso_rd_u8(&r);
    memset(&wc->payload, 0, sizeof wc->payload);
    wc->payload_kind = 0;
    if (kind == CPEX_PAYLOAD_CMF) {
        const cpex_cmf_message *m = cpex__iso_rd_cmf(&r, &c->arena);
        wc->payload.data = m;
        wc->payload.type_name.ptr = "cmf";
        wc->payload.type_name.len = 3;
    } else if (kind == CPEX_PAYLOAD_JSON) {
        wc->json_payload = cpex__iso_rd_json(&r, "payload");
        wc->payload.data = wc->json_payload;
        wc->payload.type_name.ptr = "json";
        wc->payload.type_name.len = 4;
    } else if (kind != 0) {
        cpex__iso_rd_fail(&r, "payload kind %u", kind);
    }
    if (kind) {
        wc->payload.struct_size = (uint32_t)sizeof wc->payload;
        wc->payload.kind = kind;
        wc->payload_kind = kind;
    }
    cpex__iso_rd_ext(&r, &c->arena, &wc->ext);
    cpex__iso_rd_ctx(&r, &wc->ctx_raw[CPEX_CTX_LOCAL], &wc->ctx_len[CPEX_CTX_LOCAL]);
    cpex__iso_rd_ctx(&r, &wc->ctx_raw[CPEX_CTX_GLOBAL], &wc->ctx_len[CPEX_CTX_GLOBAL]);
    if (verdict)
        cpex__iso_rd_verdict(&r, &c->arena, &wc->verdict);
    const cpex_plugin_registration *reg = &wk.plugin.registration;
    if (!r.bad && verdict && !wk_has_verdict())
        cpex__iso_rd_fail(&r, "a verdict for a plugin without a verdict handler");
    else if (!r.bad && !verdict && handler >= reg->handler_count)
        cpex__iso_rd_fail(&r, "handler %u of %zu", handler, reg->handler_count);
    if (r.bad || !wk.loaded) {
        char why[256];
        snprintf(why, sizeof why, "the worker could not read the call: %s",
                 r.bad ? r.why : "no plugin is loaded");
        json_decref(wc->json_payload);
        wc->json_payload = NULL;
        cpex__iso_arena_reset(&c->arena);
        reply_badreq(ch, seq, why);
        return;
    }

    memset(&wc->call, 0, sizeof wc->call);
    wc->call.struct_size = (uint32_t)sizeof wc->call;
    wc->call.mode = mode;
    wc->call.hook = hook;
    wc->call.plugin_name = name;
    wc->call.payload = kind ? &wc->payload : NULL;
    wc->call.deadline_ns = deadline;
    wc->caps = caps;
    wc->can_modify = mode == CPEX_MODE_SEQUENTIAL || mode == CPEX_MODE_TRANSFORM;

    cpex__iso_wr w;
    /* The end of the reply area is the upcalls' (proto.h). */
    cpex__iso_wr_init(&w, ch->rep, ISO_AREA_SIZE - ISO_UP_ROOM);
    cpex__iso_wr_u8(&w, ISO_REP_OK);
    cpex__iso_wr_i32(&w, 0);
    cpex__iso_wr_u32(&w, 0);
    wk_call_begin(wc, &w);
    if (wk.cpu_limit_ns)
        cpu_limit(c, wk.cpu_limit_ns);
    int32_t decision;
    if (verdict) {
        /* As in process, the verdict's payload is the call's. */
        wc->verdict.payload = wc->call.payload;
        decision = reg->verdict(reg->instance, &wc->call, &wc->verdict);
    } else {
        decision = reg->handlers[handler].fn(reg->instance, &wc->call);
    }
    if (wk.cpu_limit_ns)
        cpu_limit(c, 0);
    wk_call_end(wc);
    memcpy(w.buf + 1, &decision, 4);
    memcpy(w.buf + 5, &wc->ops, 4);
    size_t n = w.len;
    if (wk.garble && hook.len == 11 && memcmp(hook.ptr, "test.garble", 11) == 0)
        n = garble(wk.garble, w.buf, n);
    cpex__iso_arena_reset(&c->arena);
    cpex__iso_chan_reply(ch, seq, (uint32_t)n);
}

bool wk_has_verdict(void)
{
    const cpex_plugin_registration *reg = &wk.plugin.registration;
    return reg->struct_size >= CPEX_REGISTRATION_SIZE_VERDICT && reg->verdict != NULL;
}

void *wk_serve_thread(void *arg)
{
    wchan *c = arg;
    for (;;) {
        cpex__iso_chan_wait_request(&c->ch);
        uint32_t len = c->ch.ctl->req_len;
        if (len == 0 || len > ISO_AREA_SIZE) {
            uint32_t seq = atomic_load(&c->ch.ctl->req_seq);
            reply_badreq(&c->ch, seq, "a request of impossible length");
            continue;
        }
        if (c->ch.req[0] == ISO_REQ_CALL || c->ch.req[0] == ISO_REQ_VERDICT) {
            wk_serve_call(c, c->ch.req, len);
        } else {
            uint32_t seq = atomic_load(&c->ch.ctl->req_seq);
            reply_badreq(&c->ch, seq, "control requests go to channel 0");
        }
    }
    return NULL;
}
