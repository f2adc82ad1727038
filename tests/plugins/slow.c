/*
 * slow.c — a plugin that takes its time, for the `cpex serve` tests: a
 * server answers /healthz with 503 while plugins initialize, and finishes
 * the requests in flight when told to stop.
 *
 *   - name: slow
 *     kind: "lib:…/libslow.so"
 *     config: { initialize_ms: 1500, call_ms: 1000 }
 *
 * Both handlers (cmf.tool_pre_invoke, cmf.http_request) sleep call_ms and
 * allow; initialize sleeps initialize_ms.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#include <stdlib.h>
#include <time.h>

#include <cpex/plugin.h>

typedef struct slow {
    int64_t initialize_ms, call_ms;
} slow;

static void pause_ms(int64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (ms > 0 && nanosleep(&ts, &ts) != 0) {
    }
}

static int32_t on_call(void *instance, const cpex_call *call)
{
    (void)call;
    pause_ms(((slow *)instance)->call_ms);
    return CPEX_ALLOW;
}

static int32_t initialize(void *instance, char *err, size_t err_cap)
{
    (void)err;
    (void)err_cap;
    pause_ms(((slow *)instance)->initialize_ms);
    return 0;
}

static const cpex_handler_reg handlers[] = {
    CPEX_HANDLER("cmf.tool_pre_invoke", on_call, "cmf"),
    CPEX_HANDLER("cmf.http_request", on_call, "json"),
};

static int32_t create(const cpex_host_api *host, const cpex_plugin_config *config,
                      cpex_plugin_registration *out, char *err, size_t err_cap)
{
    slow *self = calloc(1, sizeof *self);
    if (!self) {
        cpex_plugin_errorf(err, err_cap, "out of memory");
        return CPEX_CREATE_INIT_FAILED;
    }
    self->initialize_ms = cpex_config_int(host, config, "initialize_ms", 0);
    self->call_ms = cpex_config_int(host, config, "call_ms", 0);
    out->name = "slow";
    out->version = "1.0.0";
    out->instance = self;
    out->destroy = free;
    out->initialize = initialize;
    out->handler_count = sizeof handlers / sizeof handlers[0];
    out->handlers = handlers;
    return CPEX_CREATE_OK;
}

CPEX_PLUGIN(create, "slow", "1.0.0", "Sleeps in initialize and in each call", "cmf.tool_pre_invoke",
            "cmf.http_request")
