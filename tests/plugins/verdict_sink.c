/*
 * verdict_sink.c — an audit sink in a shared library (ABI 1.1): a verdict
 * handler that counts verdicts and denies, and an ordinary handler for
 * cmf.tool_pre_invoke that counts its calls. Configured without hooks in
 * mode audit, only the verdict handler runs. The counts are read through
 * verdict_sink_counts (exported for the test).
 */
#include <stdatomic.h>
#include <stdlib.h>

#include <cpex/plugin.h>

static atomic_int verdicts, denies, calls, records, destroyed;

CPEX__EXTERN CPEX_EXPORT void verdict_sink_counts(int *v, int *d, int *c, int *r, int *x);
void verdict_sink_counts(int *v, int *d, int *c, int *r, int *x)
{
    *v = atomic_load(&verdicts);
    *d = atomic_load(&denies);
    *c = atomic_load(&calls);
    *r = atomic_load(&records);
    *x = atomic_load(&destroyed);
}

static int32_t on_call(void *instance, const cpex_call *call)
{
    (void)instance;
    (void)call;
    atomic_fetch_add(&calls, 1);
    return CPEX_ALLOW;
}

static int32_t on_verdict(void *instance, const cpex_call *call, const cpex_verdict *v)
{
    (void)instance;
    (void)call;
    atomic_fetch_add(&verdicts, 1);
    if (v->decision == CPEX_DENY)
        atomic_fetch_add(&denies, 1);
    atomic_fetch_add(&records, (int)v->record_count);
    return CPEX_ALLOW;
}

static void destroy(void *instance)
{
    (void)instance;
    atomic_fetch_add(&destroyed, 1);
}

static const cpex_handler_reg handlers[] = {CPEX_HANDLER("cmf.tool_pre_invoke", on_call, "cmf")};

static int32_t create(const cpex_host_api *host, const cpex_plugin_config *config,
                      cpex_plugin_registration *out, char *err, size_t err_cap)
{
    (void)host;
    (void)config;
    (void)err;
    (void)err_cap;
    out->name = "verdict-sink";
    out->version = "1.0.0";
    out->instance = &verdicts;
    out->destroy = destroy;
    out->handler_count = 1;
    out->handlers = handlers;
    out->verdict = on_verdict;
    return CPEX_CREATE_OK;
}

CPEX_PLUGIN(create, "verdict-sink", "1.0.0", "counts verdicts (an audit sink)",
            "cmf.tool_pre_invoke")
