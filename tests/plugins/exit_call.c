/*
 * exit_call.c — a plugin that ends the process with exit(), as a careless
 * plugin might (a library that "handles" an error by exiting). The host must
 * notice that it did not finish; the `cpex` command exits 1 naming the
 * plugin (tests/scripts/test_cli_robustness.sh).
 *
 * config:
 *   in:     "handler" (default), "initialize" or "shutdown": where to exit
 *   at:     the handler call that exits (1 = the first; default 1)
 *   status: the exit status (default 0: a success, as far as the shell knows)
 */
#include <stdlib.h>
#include <string.h>

#include <cpex/plugin.h>

typedef struct exiter {
    char in[16];
    long long at, calls;
    int status;
} exiter;

static int32_t on_call(void *instance, const cpex_call *call)
{
    (void)call;
    exiter *self = instance;
    if (strcmp(self->in, "handler") == 0 && ++self->calls == self->at)
        exit(self->status);
    return CPEX_ALLOW;
}

static int32_t initialize(void *instance, char *err, size_t err_cap)
{
    (void)err;
    (void)err_cap;
    exiter *self = instance;
    if (strcmp(self->in, "initialize") == 0)
        exit(self->status);
    return 0;
}

static void shutdown_(void *instance)
{
    exiter *self = instance;
    if (strcmp(self->in, "shutdown") == 0)
        exit(self->status);
}

static void destroy(void *instance) { free(instance); }

static const cpex_handler_reg handlers[] = {CPEX_HANDLER("cmf.tool_pre_invoke", on_call, "cmf"),
                                            CPEX_HANDLER("cmf.tool_post_invoke", on_call, "cmf")};

static int32_t create(const cpex_host_api *host, const cpex_plugin_config *config,
                      cpex_plugin_registration *out, char *err, size_t err_cap)
{
    exiter *self = calloc(1, sizeof *self);
    if (!self) {
        cpex_plugin_errorf(err, err_cap, "out of memory");
        return CPEX_CREATE_INIT_FAILED;
    }
    const char *in = cpex_config_string(host, config, "in", "handler");
    strncpy(self->in, in, sizeof self->in - 1);
    self->at = (long long)cpex_config_int(host, config, "at", 1);
    self->status = (int)cpex_config_int(host, config, "status", 0);
    out->name = "exit-call";
    out->version = "1.0.0";
    out->instance = self;
    out->initialize = initialize;
    out->shutdown = shutdown_;
    out->destroy = destroy;
    out->handler_count = sizeof handlers / sizeof handlers[0];
    out->handlers = handlers;
    return CPEX_CREATE_OK;
}

CPEX_PLUGIN(create, "exit-call", "1.0.0", "calls exit() in a handler, initialize or shutdown",
            "cmf.tool_pre_invoke", "cmf.tool_post_invoke")
