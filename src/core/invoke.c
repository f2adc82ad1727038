/*
 * invoke.c — the entry of every invoke: one snapshot, one hash lookup,
 * the payload type check, then the executor.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/call.h"
#include "core/config.h"
#include "core/core.h"
#include "core/manager_internal.h"
#include "cpex/version.h"
#include "util/alloc.h"
#include "util/errors.h"

/* ------------------------------------------------------------------ */
/* Invoke                                                              */
/* ------------------------------------------------------------------ */

static void deny_invoke(cpex_pipeline_result *res, const char *code, const char *reason)
{
    res->continue_processing = false;
    res->violation = cpex_violation_new(code, reason, NULL, NULL, NULL);
}

/* With a literal `b`, n is a constant and memcmp is inlined. */
static inline bool str_eq(cpex_str a, const char *b)
{
    size_t n = strlen(b);
    return a.ptr && a.len == n && memcmp(a.ptr, b, n) == 0;
}

void cpex_manager_invoke(cpex_manager *m, const char *hook, const cpex_payload *payload,
                         const cpex_extensions *extensions, cpex_context_table *context,
                         cpex_pipeline_result *res)
{
    if (!res)
        return;
    cpex_pipeline_result_init(res);
    res->context = context;
    if (!m || !hook) {
        deny_invoke(res, "invalid_argument", "cpex_manager_invoke: manager and hook required");
        return;
    }
    size_t len = strlen(hook);
    cpex_rcu_ticket t = cpex_rcu_enter(&m->rcu);
    const cpex_snapshot *s = atomic_load_explicit(&m->snapshot, memory_order_seq_cst);
    const cpex_hook *h = cpex_snapshot_find(s, hook, len);
    if (!h || h->count == 0) {
        cpex_rcu_exit(t);
        return; /* allow, payload and extensions untouched */
    }
    if (h->payload_type) {
        char reason[300];
        if (!payload || !payload->type_name.ptr ||
            payload->type_name.len != h->payload_type_len ||
            memcmp(payload->type_name.ptr, h->payload_type, h->payload_type_len) != 0) {
            snprintf(reason, sizeof reason, "hook '%.100s' carries payload type '%.60s' but the "
                     "invoke passed '%.*s'", hook, h->payload_type,
                     payload && payload->type_name.ptr ? (int)payload->type_name.len : 4,
                     payload && payload->type_name.ptr ? payload->type_name.ptr : "none");
            res->context = NULL;
            deny_invoke(res, "payload_type_mismatch", reason);
            res->context = context;
            cpex_rcu_exit(t);
            return;
        }
    }
    if (payload && payload->kind == CPEX_PAYLOAD_CUSTOM &&
        (!payload->type_name.ptr ||
         !cpex_snapshot_type(s, payload->type_name.ptr, payload->type_name.len))) {
        deny_invoke(res, "payload_type_mismatch",
                    "the invoke passed a custom payload whose type is not registered with this "
                    "manager");
        cpex_rcu_exit(t);
        return;
    }
    if (payload && ((payload->kind == CPEX_PAYLOAD_CMF && !str_eq(payload->type_name, "cmf")) ||
                    (payload->kind == CPEX_PAYLOAD_JSON && !str_eq(payload->type_name, "json")) ||
                    payload->kind < CPEX_PAYLOAD_CMF || payload->kind > CPEX_PAYLOAD_CUSTOM)) {
        deny_invoke(res, "payload_type_mismatch",
                    "the payload's kind and type name disagree; build it with cpex_payload_cmf, "
                    "cpex_payload_json or cpex_payload_custom");
        cpex_rcu_exit(t);
        return;
    }
    cpex_execute(m, s, h, payload, extensions, context,
                 atomic_load_explicit(&m->closing, memory_order_relaxed) != 0, res);
    cpex_rcu_exit(t);
}
