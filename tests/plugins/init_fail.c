/* init_fail.c — a plugin that is created fine but whose initialize callback
   fails with its own message. Its instance is allocated, so a host that
   forgets to destroy it leaks (LeakSanitizer catches that). */
#include <stdlib.h>

#include <cpex/plugin.h>

static int32_t allow(void *instance, const cpex_call *call)
{
    (void)instance;
    (void)call;
    return CPEX_ALLOW;
}

static int32_t initialize(void *instance, char *err, size_t err_cap)
{
    (void)instance;
    cpex_plugin_errorf(err, err_cap, "init_fail: backend at 10.0.0.1:9 is unreachable");
    return 1;
}

static void destroy(void *instance) { free(instance); }

static const cpex_handler_reg handlers[] = {{"cmf.tool_pre_invoke", allow, "cmf"}};

static int32_t create(const cpex_host_api *host, const cpex_plugin_config *config,
                      cpex_plugin_registration *out, char *err, size_t err_cap)
{
    (void)host;
    (void)config;
    void *self = malloc(16);
    if (!self) {
        cpex_plugin_errorf(err, err_cap, "out of memory");
        return CPEX_PLUGIN_INIT_FAILED;
    }
    out->name = "init-fail";
    out->version = "1.0.0";
    out->instance = self;
    out->initialize = initialize;
    out->destroy = destroy;
    out->handler_count = 1;
    out->handlers = handlers;
    return CPEX_PLUGIN_OK;
}

CPEX_PLUGIN(create, "init-fail", "1.0.0", "fails in initialize", "cmf.tool_pre_invoke")
