/*
 * state_ops.h — run state-slot operations inside a real handler call, for
 * the state tests (tests/e2e/test_state*.c).
 *
 * Probe plugins are registered from code, one hook each ("t.<n>"); a test
 * fills an array of `sop`s and runs them inside a call of probe n: the
 * handler performs each operation through the host table, as a plugin
 * would, and writes the outcome back into the sop (status, value, time
 * left, text, members sorted and joined with ','). Header-only.
 */
#ifndef CPEX_TEST_STATE_OPS_H
#define CPEX_TEST_STATE_OPS_H

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cpex/cpex.h"
#include "test_support.h"

enum { SOP_GET, SOP_SET, SOP_INCR, SOP_DEL, SOP_ADD, SOP_MEMBERS, SOP_SLEEP, SOP_FANOUT };

typedef struct sop {
    int kind;
    const char *key;
    const void *val; /* SET, ADD: bytes (len) */
    size_t len;
    int64_t num; /* INCR: delta; SLEEP: ms; FANOUT: increments per thread */
    int64_t ttl;
    int threads; /* FANOUT: threads that each increment `key` num times */
    /* outcome */
    int32_t st;
    int64_t value, left;
    char text[512]; /* GET: the value; MEMBERS: sorted, joined with ',' */
    size_t text_len;
    size_t count; /* MEMBERS */
    int64_t elapsed_ms;
    int64_t fanout_failures;
} sop;

#define SOP_PROBES 8
static const char *const sop_hooks[SOP_PROBES] = {"t.0", "t.1", "t.2", "t.3",
                                                  "t.4", "t.5", "t.6", "t.7"};

typedef struct sop_batch {
    sop *ops;
    size_t n;
} sop_batch;

static sop_batch sop_current[SOP_PROBES];
static cpex_handler_reg sop_regs[SOP_PROBES][1];

static inline int64_t sop_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline void sop_sleep_ms(int64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static inline int sop_cmp(const void *a, const void *b)
{
    const cpex_str *x = a, *y = b;
    int c = memcmp(x->ptr, y->ptr, x->len < y->len ? x->len : y->len);
    return c ? c : (x->len > y->len) - (x->len < y->len);
}

typedef struct sop_fan {
    const cpex_call *call;
    const char *key;
    int64_t count, failures;
} sop_fan;

static inline void *sop_fan_main(void *arg)
{
    sop_fan *f = arg;
    const cpex_host_api *h = cpex_host_api_get();
    for (int64_t i = 0; i < f->count; i++)
        if (h->state_incr(f->call, f->key, 1, 0, NULL, NULL) != CPEX_HOST_OK)
            f->failures++;
    return NULL;
}

static inline void sop_run_one(const cpex_call *call, sop *o)
{
    const cpex_host_api *h = cpex_host_api_get();
    int64_t start = sop_now_ms();
    switch (o->kind) {
    case SOP_GET: {
        cpex_str v = {NULL, 0};
        o->st = h->state_get(call, o->key, &v);
        if (v.ptr) {
            o->text_len = v.len;
            memcpy(o->text, v.ptr, v.len < sizeof o->text ? v.len : sizeof o->text - 1);
            if (v.ptr[v.len] != '\0')
                o->st = 99; /* the host promised a NUL */
            h->free((void *)v.ptr);
        }
        break;
    }
    case SOP_SET: o->st = h->state_set(call, o->key, o->val, o->len, o->ttl); break;
    case SOP_INCR: o->st = h->state_incr(call, o->key, o->num, o->ttl, &o->value, &o->left); break;
    case SOP_DEL: o->st = h->state_delete(call, o->key); break;
    case SOP_ADD: o->st = h->state_set_add(call, o->key, o->val, o->len, o->ttl); break;
    case SOP_MEMBERS: {
        cpex_str *m = NULL;
        size_t n = 0;
        o->st = h->state_set_members(call, o->key, &m, &n);
        o->count = n;
        if (m) {
            qsort(m, n, sizeof *m, sop_cmp);
            size_t pos = 0;
            for (size_t i = 0; i < n && pos + m[i].len + 2 < sizeof o->text; i++) {
                if (i)
                    o->text[pos++] = ',';
                memcpy(o->text + pos, m[i].ptr, m[i].len);
                pos += m[i].len;
            }
            o->text[pos] = '\0';
            h->free(m);
        }
        break;
    }
    case SOP_SLEEP: sop_sleep_ms(o->num); break;
    case SOP_FANOUT: {
        pthread_t t[16];
        sop_fan f[16];
        for (int i = 0; i < o->threads && i < 16; i++) {
            f[i] = (sop_fan){call, o->key, o->num, 0};
            pthread_create(&t[i], NULL, sop_fan_main, &f[i]);
        }
        for (int i = 0; i < o->threads && i < 16; i++) {
            pthread_join(t[i], NULL);
            o->fanout_failures += f[i].failures;
        }
        break;
    }
    }
    o->elapsed_ms = sop_now_ms() - start;
}

static inline int32_t sop_handler(void *instance, const cpex_call *call)
{
    sop_batch *b = instance;
    for (size_t i = 0; i < b->n; i++)
        sop_run_one(call, &b->ops[i]);
    return CPEX_ALLOW;
}

/** Register probe `i` named `name` (namespace `ns`, NULL: its name; timeout 0: the manager's). */
static inline void sop_add_probe(cpex_manager *m, int i, const char *name, const char *ns,
                                 double timeout)
{
    sop_regs[i][0].hook = sop_hooks[i];
    sop_regs[i][0].fn = sop_handler;
    sop_regs[i][0].payload_type = NULL;
    cpex_plugin_spec spec;
    cpex_plugin_spec_init(&spec);
    spec.name = name;
    spec.state_namespace = ns;
    spec.timeout = timeout;
    cpex_plugin_registration reg;
    memset(&reg, 0, sizeof reg);
    reg.struct_size = (uint32_t)sizeof reg;
    reg.abi_version = CPEX_ABI_VERSION;
    reg.instance = &sop_current[i];
    reg.handler_count = 1;
    reg.handlers = sop_regs[i];
    cpex_error err = CPEX_ERROR_INIT;
    cpex_status st = cpex_manager_register(m, &spec, &reg, &err);
    if (st != CPEX_OK)
        print_error("%s\n", cpex_error_message(&err));
    assert_int_equal(st, CPEX_OK);
    cpex_error_cleanup(&err);
}

/** Run `n` operations inside one call of probe `i`. */
static inline void sop_run(cpex_manager *m, int i, sop *ops, size_t n)
{
    for (size_t k = 0; k < n; k++) {
        ops[k].st = -1;
        ops[k].text[0] = '\0';
        ops[k].text_len = 0;
        ops[k].count = 0;
        ops[k].value = ops[k].left = 0;
        ops[k].fanout_failures = 0;
    }
    sop_current[i].ops = ops;
    sop_current[i].n = n;
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    cpex_manager_invoke(m, sop_hooks[i], NULL, NULL, NULL, &res);
    cpex_pipeline_result_cleanup(&res);
    sop_current[i].ops = NULL;
    sop_current[i].n = 0;
}

#define SOP_RUN(m, i, ops) sop_run((m), (i), (ops), sizeof(ops) / sizeof((ops)[0]))

/** One operation in a call of probe `i`; returns it with its outcome. */
static inline sop sop_do(cpex_manager *m, int i, sop o)
{
    sop_run(m, i, &o, 1);
    return o;
}

#define S_GET(k) ((sop){.kind = SOP_GET, .key = (k)})
#define S_SET(k, v, t_)                                                                            \
    ((sop){.kind = SOP_SET, .key = (k), .val = (v), .len = strlen(v), .ttl = (t_)})
#define S_INCR(k, d, t_) ((sop){.kind = SOP_INCR, .key = (k), .num = (d), .ttl = (t_)})
#define S_DEL(k) ((sop){.kind = SOP_DEL, .key = (k)})
#define S_ADD(k, v, t_)                                                                            \
    ((sop){.kind = SOP_ADD, .key = (k), .val = (v), .len = strlen(v), .ttl = (t_)})
#define S_MEMBERS(k) ((sop){.kind = SOP_MEMBERS, .key = (k)})
#define S_SLEEP(ms) ((sop){.kind = SOP_SLEEP, .num = (ms)})

/* ---- a log sink that keeps the lines ---- */

typedef struct sop_log {
    pthread_mutex_t lock;
    char lines[64][400];
    size_t count;
} sop_log;

static inline void sop_log_fn(void *user, uint32_t level, const char *plugin, const char *message)
{
    (void)level;
    (void)plugin;
    sop_log *l = user;
    pthread_mutex_lock(&l->lock);
    if (l->count < 64)
        snprintf(l->lines[l->count++], sizeof l->lines[0], "%s", message);
    pthread_mutex_unlock(&l->lock);
}

/** Lines containing `needle`. */
static inline size_t sop_log_count(sop_log *l, const char *needle)
{
    size_t n = 0;
    pthread_mutex_lock(&l->lock);
    for (size_t i = 0; i < l->count; i++)
        n += strstr(l->lines[i], needle) != NULL;
    pthread_mutex_unlock(&l->lock);
    return n;
}

static inline void sop_log_dump(sop_log *l)
{
    pthread_mutex_lock(&l->lock);
    for (size_t i = 0; i < l->count; i++)
        print_message("log: %s\n", l->lines[i]);
    pthread_mutex_unlock(&l->lock);
}

#endif
