/*
 * state.c — the state slots of the worker's host table.
 *
 * The state backend is the host's (the same counters as the plugins that
 * run in process, and a sandboxed worker may have no network for Redis),
 * so each slot is an upcall (proto.h): the request goes into the end of
 * the reply area, the handler's thread waits, the host runs the slot
 * against the real call (its deadline, the plugin's namespace, its
 * counting of outages) and the answer comes back in the request area.
 * The checks made here are the ones that need nothing of the host; the
 * host makes them all again.
 */
#include <string.h>

#include "isolation/proto.h"
#include "util/alloc.h"
#include "worker/worker.h"

typedef struct upcall {
    wchan *c;
    cpex__iso_wr w;
    cpex__iso_rd ans;
} upcall;

/* Start an upcall of `op` for `key`: CPEX_HOST_OK with the channel's upcall
   lock held (up_end releases it), else nothing to release. */
static int32_t up_begin(const cpex_call *call, uint8_t op, const char *key, upcall *u)
{
    wcall *wc = call ? call->host_private : NULL;
    if (!wc || wc->magic != WCALL_MAGIC || &wc->call != call || !key)
        return CPEX_HOST_EINVAL;
    size_t n = strnlen(key, CPEX_STATE_KEY_MAX + 1);
    if (n == 0 || n > CPEX_STATE_KEY_MAX)
        return CPEX_HOST_EINVAL;
    u->c = wk_chan_of(wc);
    pthread_mutex_lock(&u->c->up_lock);
    if (!wc->active) { /* the handler returned: as in process, a call not in progress */
        pthread_mutex_unlock(&u->c->up_lock);
        return CPEX_HOST_EINVAL;
    }
    cpex__iso_wr_init(&u->w, u->c->ch.rep + ISO_AREA_SIZE - ISO_UP_ROOM, ISO_UP_ROOM);
    cpex__iso_wr_u8(&u->w, op);
    cpex__iso_wr_strn(&u->w, key, n);
    return CPEX_HOST_OK;
}

/* Post it, wait for the answer; its status (u->ans then reads the rest). */
static int32_t up_send(upcall *u)
{
    if (u->w.over)
        return CPEX_HOST_EINVAL; /* only a value past the slot's own limit gets here */
    uint32_t off = 0, len = 0;
    cpex__iso_chan_upcall(&u->c->ch, (uint32_t)u->w.len, &off, &len);
    if (off > ISO_AREA_SIZE || len > ISO_AREA_SIZE - off)
        len = 0;
    cpex__iso_rd_init(&u->ans, u->c->ch.req + off, len);
    u->ans.trusted = true;
    int32_t st = cpex__iso_rd_i32(&u->ans);
    return u->ans.bad ? CPEX_HOST_ENOMEM : st;
}

static int32_t up_end(upcall *u, int32_t st)
{
    pthread_mutex_unlock(&u->c->up_lock);
    return st;
}

/* A NUL-terminated copy of `s`, for the plugin to release with `free`. */
static char *copy_out(cpex_str s)
{
    char *p = cpex__malloc(s.len + 1);
    if (p) {
        if (s.len)
            memcpy(p, s.ptr, s.len);
        p[s.len] = '\0';
    }
    return p;
}

static int32_t w_state_get(const cpex_call *call, const char *key, cpex_str *value)
{
    if (value) {
        value->ptr = NULL;
        value->len = 0;
    }
    upcall u;
    int32_t st = up_begin(call, ISO_UP_STATE_GET, key, &u);
    if (st != CPEX_HOST_OK)
        return st;
    if (!value)
        return up_end(&u, CPEX_HOST_EINVAL);
    st = up_send(&u);
    if (st == CPEX_HOST_OK) {
        cpex_str v = cpex__iso_rd_str(&u.ans, ISO_S_BYTES, "value");
        char *p = u.ans.bad ? NULL : copy_out(v);
        if (!p)
            return up_end(&u, CPEX_HOST_ENOMEM);
        value->ptr = p;
        value->len = v.len;
    }
    return up_end(&u, st);
}

/* A slot that sends bytes and a TTL (set, set_add) and gets a status back. */
static int32_t send_bytes(const cpex_call *call, uint8_t op, const char *key, const void *bytes,
                          size_t len, size_t max, int64_t ttl_ms)
{
    if ((!bytes && len) || len > max)
        return CPEX_HOST_EINVAL;
    upcall u;
    int32_t st = up_begin(call, op, key, &u);
    if (st != CPEX_HOST_OK)
        return st;
    cpex__iso_wr_strn(&u.w, bytes, len);
    cpex__iso_wr_i64(&u.w, ttl_ms);
    return up_end(&u, up_send(&u));
}

static int32_t w_state_set(const cpex_call *call, const char *key, const void *value, size_t len,
                           int64_t ttl_ms)
{
    return send_bytes(call, ISO_UP_STATE_SET, key, value, len, CPEX_STATE_VALUE_MAX, ttl_ms);
}

static int32_t w_state_incr(const cpex_call *call, const char *key, int64_t delta, int64_t ttl_ms,
                            int64_t *value, int64_t *ttl_left_ms)
{
    upcall u;
    int32_t st = up_begin(call, ISO_UP_STATE_INCR, key, &u);
    if (st != CPEX_HOST_OK)
        return st;
    cpex__iso_wr_i64(&u.w, delta);
    cpex__iso_wr_i64(&u.w, ttl_ms);
    st = up_send(&u);
    if (st == CPEX_HOST_OK) {
        int64_t v = cpex__iso_rd_i64(&u.ans), left = cpex__iso_rd_i64(&u.ans);
        if (u.ans.bad)
            return up_end(&u, CPEX_HOST_ENOMEM);
        if (value)
            *value = v;
        if (ttl_left_ms)
            *ttl_left_ms = left;
    }
    return up_end(&u, st);
}

static int32_t w_state_delete(const cpex_call *call, const char *key)
{
    upcall u;
    int32_t st = up_begin(call, ISO_UP_STATE_DELETE, key, &u);
    if (st != CPEX_HOST_OK)
        return st;
    return up_end(&u, up_send(&u));
}

static int32_t w_state_set_add(const cpex_call *call, const char *key, const void *member,
                               size_t len, int64_t ttl_ms)
{
    return send_bytes(call, ISO_UP_STATE_SET_ADD, key, member, len, CPEX_STATE_MEMBER_MAX, ttl_ms);
}

/* The members as one block: the array, then each member's bytes and NUL. */
static int32_t members_out(cpex__iso_rd *r, cpex_str **members, size_t *count)
{
    uint32_t n = cpex__iso_rd_count(r, 5, "members");
    cpex__iso_rd scan = *r;
    size_t bytes = 0;
    for (uint32_t i = 0; i < n; i++)
        bytes += cpex__iso_rd_str(&scan, ISO_S_BYTES, "member").len + 1;
    if (r->bad || scan.bad)
        return CPEX_HOST_ENOMEM;
    if (n == 0)
        return CPEX_HOST_OK;
    cpex_str *out = cpex__malloc((size_t)n * sizeof *out + bytes);
    if (!out)
        return CPEX_HOST_ENOMEM;
    char *text = (char *)(out + n);
    for (uint32_t i = 0; i < n; i++) {
        cpex_str m = cpex__iso_rd_str(r, ISO_S_BYTES, "member");
        if (m.len)
            memcpy(text, m.ptr, m.len);
        text[m.len] = '\0';
        out[i].ptr = text;
        out[i].len = m.len;
        text += m.len + 1;
    }
    *members = out;
    *count = n;
    return CPEX_HOST_OK;
}

static int32_t w_state_set_members(const cpex_call *call, const char *key, cpex_str **members,
                                   size_t *count)
{
    if (members)
        *members = NULL;
    if (count)
        *count = 0;
    upcall u;
    int32_t st = up_begin(call, ISO_UP_STATE_SET_MEMBERS, key, &u);
    if (st != CPEX_HOST_OK)
        return st;
    if (!members || !count)
        return up_end(&u, CPEX_HOST_EINVAL);
    st = up_send(&u);
    if (st == CPEX_HOST_OK)
        st = members_out(&u.ans, members, count);
    return up_end(&u, st);
}

void wk_state_slots(cpex_host_api *t)
{
    t->state_get = w_state_get;
    t->state_set = w_state_set;
    t->state_incr = w_state_incr;
    t->state_delete = w_state_delete;
    t->state_set_add = w_state_set_add;
    t->state_set_members = w_state_set_members;
}
