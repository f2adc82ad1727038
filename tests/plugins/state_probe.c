/*
 * state_probe.c — drives the state slots from request lines, for the tests
 * that run `cpex run` processes as replicas (tests/scripts/test_state_*.sh).
 *
 * Hook "state.op" (JSON payload): {"ops": [op, ...]}, each op one of
 *   {"op": "incr", "key": K, "delta": 1, "ttl_ms": 0}
 *   {"op": "get", "key": K}
 *   {"op": "set", "key": K, "value": "text", "ttl_ms": 0}
 *   {"op": "delete", "key": K}
 *   {"op": "add", "key": K, "member": "text", "ttl_ms": 0}
 *   {"op": "members", "key": K}            (-> "members": [...])
 *   {"op": "fanout", "key": K, "threads": 4, "count": 250}
 *       (threads of this call each increment K count times, joined before
 *        the handler returns: the slots are safe from any thread during a call)
 * An op with "only": NAME runs in the plugin of that configured name only
 * (several probes on one hook); a probe that ran no op sets no metadata.
 * The outcomes go into the result's metadata "state": one object per op with
 * "status" (enum cpex_host_status) and "value" / "text" / "failures".
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <cpex/plugin.h>

static const cpex_host_api *g_host;

typedef struct fan {
    const cpex_call *call;
    const char *key;
    int64_t count, failures;
} fan;

static void *fan_main(void *arg)
{
    fan *f = arg;
    for (int64_t i = 0; i < f->count; i++)
        if (g_host->state_incr(f->call, f->key, 1, 0, NULL, NULL) != CPEX_HOST_OK)
            f->failures++;
    return NULL;
}

static int64_t num(const cpex_json *op, const char *key, int64_t fallback)
{
    const cpex_json *v = g_host->json_object_get(op, key);
    return v && g_host->json_type(v) == CPEX_JSON_INTEGER ? g_host->json_integer(v) : fallback;
}

static cpex_json *run_op(const cpex_call *call, const cpex_json *op)
{
    const cpex_host_api *h = g_host;
    cpex_json *out = h->json_new_object();
    const cpex_json *kind = h->json_object_get(op, "op");
    const cpex_json *keyv = h->json_object_get(op, "key");
    const char *what = kind ? h->json_string(kind, NULL) : NULL;
    const char *key = keyv ? h->json_string(keyv, NULL) : NULL;
    int32_t st = -1;
    if (!what || !key) {
        h->json_object_set(out, "error", h->json_new_string("op and key are required", 23));
        return out;
    }
    if (strcmp(what, "incr") == 0) {
        int64_t value = 0, left = 0;
        st = h->state_incr(call, key, num(op, "delta", 1), num(op, "ttl_ms", 0), &value, &left);
        if (st == CPEX_HOST_OK) {
            h->json_object_set(out, "value", h->json_new_integer(value));
            h->json_object_set(out, "left_ms", h->json_new_integer(left));
        }
    } else if (strcmp(what, "get") == 0) {
        cpex_str v = {NULL, 0};
        st = h->state_get(call, key, &v);
        if (st == CPEX_HOST_OK) {
            h->json_object_set(out, "text", h->json_new_string(v.ptr, v.len));
            h->free((void *)v.ptr);
        }
    } else if (strcmp(what, "set") == 0) {
        const cpex_json *v = h->json_object_get(op, "value");
        size_t len = 0;
        const char *text = v ? h->json_string(v, &len) : NULL;
        st = h->state_set(call, key, text ? text : "", len, num(op, "ttl_ms", 0));
    } else if (strcmp(what, "delete") == 0) {
        st = h->state_delete(call, key);
    } else if (strcmp(what, "add") == 0) {
        const cpex_json *v = h->json_object_get(op, "member");
        size_t len = 0;
        const char *text = v ? h->json_string(v, &len) : NULL;
        st = h->state_set_add(call, key, text ? text : "", len, num(op, "ttl_ms", 0));
    } else if (strcmp(what, "members") == 0) {
        cpex_str *members = NULL;
        size_t count = 0;
        st = h->state_set_members(call, key, &members, &count);
        if (st == CPEX_HOST_OK) {
            cpex_json *list = h->json_new_array();
            for (size_t i = 0; i < count; i++)
                h->json_array_append(list, h->json_new_string(members[i].ptr, members[i].len));
            h->json_object_set(out, "members", list);
            h->free(members);
        }
    } else if (strcmp(what, "fanout") == 0) {
        int n = (int)num(op, "threads", 4);
        pthread_t t[16];
        fan f[16];
        int64_t failures = 0;
        n = n < 1 ? 1 : n > 16 ? 16 : n;
        for (int i = 0; i < n; i++) {
            f[i].call = call;
            f[i].key = key;
            f[i].count = num(op, "count", 100);
            f[i].failures = 0;
            pthread_create(&t[i], NULL, fan_main, &f[i]);
        }
        for (int i = 0; i < n; i++) {
            pthread_join(t[i], NULL);
            failures += f[i].failures;
        }
        st = failures ? CPEX_HOST_EUNAVAILABLE : CPEX_HOST_OK;
        h->json_object_set(out, "failures", h->json_new_integer(failures));
    }
    h->json_object_set(out, "status", h->json_new_integer(st));
    return out;
}

static int32_t on_op(void *instance, const cpex_call *call)
{
    (void)instance;
    const cpex_json *doc = cpex_call_json(call);
    const cpex_json *ops = doc ? g_host->json_object_get(doc, "ops") : NULL;
    cpex_json *results = g_host->json_new_array();
    size_t ran = 0;
    for (size_t i = 0; ops && i < g_host->json_size(ops); i++) {
        const cpex_json *op = g_host->json_array_get(ops, i);
        const cpex_json *only = g_host->json_object_get(op, "only");
        size_t len = 0;
        const char *who = only ? g_host->json_string(only, &len) : NULL;
        if (who && (len != call->plugin_name.len || memcmp(who, call->plugin_name.ptr, len) != 0))
            continue;
        g_host->json_array_append(results, run_op(call, op));
        ran++;
    }
    if (ran)
        g_host->set_metadata(call, "state", results);
    else
        g_host->json_free(results);
    return CPEX_ALLOW;
}

static const cpex_handler_reg handlers[] = {CPEX_HANDLER("state.op", on_op, "json")};

static int32_t create(const cpex_host_api *host, const cpex_plugin_config *config,
                      cpex_plugin_registration *out, char *err, size_t err_cap)
{
    (void)config;
    if (!cpex_host_has_state(host, err, err_cap))
        return CPEX_CREATE_INIT_FAILED;
    g_host = host;
    out->name = "state-probe";
    out->version = "1.0.0";
    out->handler_count = 1;
    out->handlers = handlers;
    return CPEX_CREATE_OK;
}

CPEX_PLUGIN(create, "state-probe", "1.0.0", "Drives the state slots from request lines", "state.op")
