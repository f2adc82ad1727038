/*
 * upcall.c — see upcall.h.
 */
#include "isolation/upcall.h"

#include <string.h>

#include "isolation/proto.h"
#include "isolation/wire.h"
#include "util/alloc.h"

/* What one upcall asked, as read. */
typedef struct up_req {
    uint8_t op;
    cpex_str key;
    cpex_str bytes; /* SET's value, SET_ADD's member */
    int64_t a, b;   /* ttl_ms; INCR: delta, ttl_ms */
} up_req;

static void read_req(cpex__iso_rd *r, up_req *q)
{
    q->op = cpex__iso_rd_u8(r);
    q->key = cpex__iso_rd_str(r, ISO_S_BYTES, "state key");
    switch (q->op) {
    case ISO_UP_STATE_SET:
    case ISO_UP_STATE_SET_ADD:
        q->bytes = cpex__iso_rd_str(r, ISO_S_BYTES, "state value");
        q->a = cpex__iso_rd_i64(r);
        break;
    case ISO_UP_STATE_INCR:
        q->a = cpex__iso_rd_i64(r);
        q->b = cpex__iso_rd_i64(r);
        break;
    case ISO_UP_STATE_GET:
    case ISO_UP_STATE_DELETE:
    case ISO_UP_STATE_SET_MEMBERS: break;
    default: cpex__iso_rd_fail(r, "upcall %u", q->op);
    }
    if (!r->bad && cpex__iso_rd_left(r) != 0)
        cpex__iso_rd_fail(r, "%zu bytes after the upcall", cpex__iso_rd_left(r));
}

void cpex__iso_upcall_run(const cpex_host_api *h, const cpex_call *call, const uint8_t *in,
                          size_t len, cpex__iso_wr *out)
{
    cpex__iso_rd r;
    cpex__iso_rd_init(&r, in, len);
    up_req q;
    memset(&q, 0, sizeof q);
    read_req(&r, &q);
    if (r.bad) {
        cpex__iso_wr_i32(out, CPEX_HOST_EINVAL);
        return;
    }
    const char *key = q.key.ptr;
    int32_t st;
    switch (q.op) {
    case ISO_UP_STATE_GET: {
        cpex_str v = {NULL, 0};
        st = h->state_get(call, key, &v);
        cpex__iso_wr_i32(out, st);
        if (st == CPEX_HOST_OK)
            cpex__iso_wr_strn(out, v.ptr, v.len);
        h->free((void *)(uintptr_t)v.ptr);
        break;
    }
    case ISO_UP_STATE_SET:
        cpex__iso_wr_i32(out, h->state_set(call, key, q.bytes.ptr, q.bytes.len, q.a));
        break;
    case ISO_UP_STATE_INCR: {
        int64_t value = 0, left = 0;
        st = h->state_incr(call, key, q.a, q.b, &value, &left);
        cpex__iso_wr_i32(out, st);
        if (st == CPEX_HOST_OK) {
            cpex__iso_wr_i64(out, value);
            cpex__iso_wr_i64(out, left);
        }
        break;
    }
    case ISO_UP_STATE_DELETE: cpex__iso_wr_i32(out, h->state_delete(call, key)); break;
    case ISO_UP_STATE_SET_ADD:
        cpex__iso_wr_i32(out, h->state_set_add(call, key, q.bytes.ptr, q.bytes.len, q.a));
        break;
    default: { /* ISO_UP_STATE_SET_MEMBERS: read_req let no other op through */
        cpex_str *members = NULL;
        size_t count = 0;
        st = h->state_set_members(call, key, &members, &count);
        cpex__iso_wr_i32(out, st);
        if (st == CPEX_HOST_OK) {
            cpex__iso_wr_u32(out, count > UINT32_MAX ? UINT32_MAX : (uint32_t)count);
            for (size_t i = 0; i < count && i < UINT32_MAX; i++)
                cpex__iso_wr_strn(out, members[i].ptr, members[i].len);
        }
        h->free(members);
        break;
    }
    }
}

void cpex__iso_upcall_serve(const cpex_host_api *h, const cpex_call *call, cpex__iso_chan *c,
                            size_t req_len)
{
    /* Read once: a hostile worker may change it while we look. */
    uint32_t n = *(volatile uint32_t *)&c->ctl->up_len;
    uint8_t *copy = n <= ISO_UP_ROOM ? cpex__malloc(n ? n : 1) : NULL;
    if (copy)
        memcpy(copy, c->rep + ISO_AREA_SIZE - ISO_UP_ROOM, n);
    size_t off = (req_len + 7u) & ~(size_t)7u;
    cpex__iso_wr w;
    cpex__iso_wr_init(&w, c->req + off, off < ISO_AREA_SIZE ? ISO_AREA_SIZE - off : 0);
    if (copy)
        cpex__iso_upcall_run(h, call, copy, n, &w);
    else
        cpex__iso_wr_i32(&w, n > ISO_UP_ROOM ? CPEX_HOST_EINVAL : CPEX_HOST_ENOMEM);
    cpex__free(copy);
    if (w.over) { /* only a status, where even that may not fit */
        cpex__iso_wr_init(&w, c->req + off, off < ISO_AREA_SIZE ? ISO_AREA_SIZE - off : 0);
        cpex__iso_wr_i32(&w, CPEX_HOST_ENOMEM);
    }
    cpex__iso_chan_answer(c, (uint32_t)off, w.over ? 0 : (uint32_t)w.len);
}
