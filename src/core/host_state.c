/*
 * host_state.c — the state slots of the host table (abi.h, since 1.1).
 *
 * Each slot checks the call and the plugin's key, joins
 * `<prefix><namespace>:<key>` (the namespace is the plugin's own, fixed
 * when it was registered, and holds no ':', so no key can reach another
 * namespace), hands the deadline of the call to the manager's backend and
 * counts the outcome (core/state.h). The slots touch nothing of the call
 * state but what never changes during a call, so a handler may call them
 * from several threads at once.
 */
#include <string.h>

#include "core/call.h"
#include "core/core.h"
#include "core/host_state.h"
#include "core/state.h"
#include "util/clock.h"

typedef struct sreq {
    cpex__state_backend *b;
    const cpex__plugin *plugin;
    int64_t deadline;
    size_t klen;
    char key[CPEX__STATE_PREFIX_MAX + CPEX__STATE_NS_MAX + 1 + CPEX_STATE_KEY_MAX + 1];
} sreq;

/* Check the call and the key; fill *r. Anything but CPEX_HOST_OK ends the slot. */
static int32_t begin(const cpex_call *call, const char *key, sreq *r)
{
    cpex__call_state *cs = cpex__call_state_of(call);
    if (!cs || !key)
        return CPEX_HOST_EINVAL;
    size_t n = strnlen(key, CPEX_STATE_KEY_MAX + 1);
    if (n == 0 || n > CPEX_STATE_KEY_MAX)
        return CPEX_HOST_EINVAL;
    for (size_t i = 0; i < n; i++)
        if (!cpex__state_key_byte((unsigned char)key[i]))
            return CPEX_HOST_EINVAL;
    const cpex__plugin *p = cs->plugin;
    if (!p->state_ns)
        return CPEX_HOST_EINVAL; /* a name too long for a namespace: see plugin_build.c */
    r->b = atomic_load_explicit(&cs->hub->state, memory_order_acquire);
    r->plugin = p;
    r->deadline = cs->call.deadline_ns;
    if (cpex__clock_ns(false) >= r->deadline)
        return CPEX_HOST_ETIMEOUT; /* the backend is not asked, so nothing is counted */
    char *w = r->key;
    memcpy(w, r->b->key_prefix, r->b->key_prefix_len);
    w += r->b->key_prefix_len;
    memcpy(w, p->state_ns, p->state_ns_len);
    w += p->state_ns_len;
    *w++ = ':';
    memcpy(w, key, n);
    w += n;
    *w = '\0';
    r->klen = (size_t)(w - r->key);
    return CPEX_HOST_OK;
}

static int32_t done(const sreq *r, int32_t status, const cpex__state_err *e)
{
    cpex__state_note(r->b, status, e, r->plugin->name);
    return status;
}

static bool ttl_ok(int64_t ttl_ms) { return ttl_ms >= 0 && ttl_ms <= CPEX_STATE_TTL_MAX_MS; }

int32_t cpex__h_state_get(const cpex_call *call, const char *key, cpex_str *value)
{
    if (value) {
        value->ptr = NULL;
        value->len = 0;
    }
    sreq r;
    int32_t st = begin(call, key, &r);
    if (st != CPEX_HOST_OK)
        return st;
    if (!value)
        return CPEX_HOST_EINVAL;
    cpex__state_err e = {""};
    char *v = NULL;
    size_t len = 0;
    st = done(&r, r.b->ops->get(r.b, r.key, r.klen, r.deadline, &v, &len, &e), &e);
    if (st == CPEX_HOST_OK) {
        value->ptr = v;
        value->len = len;
    }
    return st;
}

int32_t cpex__h_state_set(const cpex_call *call, const char *key, const void *value, size_t len,
                          int64_t ttl_ms)
{
    sreq r;
    int32_t st = begin(call, key, &r);
    if (st != CPEX_HOST_OK)
        return st;
    if ((!value && len) || len > CPEX_STATE_VALUE_MAX || !ttl_ok(ttl_ms))
        return CPEX_HOST_EINVAL;
    cpex__state_err e = {""};
    return done(
        &r, r.b->ops->set(r.b, r.key, r.klen, value ? value : "", len, ttl_ms, r.deadline, &e), &e);
}

int32_t cpex__h_state_incr(const cpex_call *call, const char *key, int64_t delta, int64_t ttl_ms,
                           int64_t *value, int64_t *ttl_left_ms)
{
    sreq r;
    int32_t st = begin(call, key, &r);
    if (st != CPEX_HOST_OK)
        return st;
    if (!ttl_ok(ttl_ms))
        return CPEX_HOST_EINVAL;
    cpex__state_err e = {""};
    return done(
        &r, r.b->ops->incr(r.b, r.key, r.klen, delta, ttl_ms, r.deadline, value, ttl_left_ms, &e),
        &e);
}

int32_t cpex__h_state_delete(const cpex_call *call, const char *key)
{
    sreq r;
    int32_t st = begin(call, key, &r);
    if (st != CPEX_HOST_OK)
        return st;
    cpex__state_err e = {""};
    return done(&r, r.b->ops->del(r.b, r.key, r.klen, r.deadline, &e), &e);
}

int32_t cpex__h_state_set_add(const cpex_call *call, const char *key, const void *member,
                              size_t len, int64_t ttl_ms)
{
    sreq r;
    int32_t st = begin(call, key, &r);
    if (st != CPEX_HOST_OK)
        return st;
    if ((!member && len) || len > CPEX_STATE_MEMBER_MAX || !ttl_ok(ttl_ms))
        return CPEX_HOST_EINVAL;
    cpex__state_err e = {""};
    return done(
        &r,
        r.b->ops->set_add(r.b, r.key, r.klen, member ? member : "", len, ttl_ms, r.deadline, &e),
        &e);
}

int32_t cpex__h_state_set_members(const cpex_call *call, const char *key, cpex_str **members,
                                  size_t *count)
{
    if (members)
        *members = NULL;
    if (count)
        *count = 0;
    sreq r;
    int32_t st = begin(call, key, &r);
    if (st != CPEX_HOST_OK)
        return st;
    if (!members || !count)
        return CPEX_HOST_EINVAL;
    cpex__state_err e = {""};
    return done(&r, r.b->ops->set_members(r.b, r.key, r.klen, r.deadline, members, count, &e), &e);
}
