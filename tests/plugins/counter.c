/*
 * counter.c — per-instance state, to prove that one library loaded under two
 * operator names gives two independent instances. Each call increments the
 * instance's counter (starting at config.start) and reports it, with
 * config.label, in the result metadata as "<label>.count".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cpex/plugin.h>

typedef struct counter {
    const cpex_host_api *host;
    long long count;
    char label[64];
} counter;

static int32_t on_call(void *instance, const cpex_call *call)
{
    counter *self = instance;
    char key[80];
    self->count++;
    snprintf(key, sizeof key, "%s.count", self->label);
    self->host->set_metadata(call, key, self->host->json_new_integer(self->count));
    return CPEX_ALLOW;
}

static void destroy(void *instance) { free(instance); }

static const cpex_handler_reg handlers[] = {CPEX_HANDLER("cmf.tool_pre_invoke", on_call, "cmf")};

static int32_t create(const cpex_host_api *host, const cpex_plugin_config *config,
                      cpex_plugin_registration *out, char *err, size_t err_cap)
{
    counter *self = calloc(1, sizeof *self);
    if (!self) {
        cpex_plugin_errorf(err, err_cap, "out of memory");
        return CPEX_CREATE_INIT_FAILED;
    }
    self->host = host;
    self->count = (long long)cpex_config_int(host, config, "start", 0);
    snprintf(self->label, sizeof self->label, "%s",
             cpex_config_string(host, config, "label", "counter"));
    out->name = "counter";
    out->version = "1.0.0";
    out->instance = self;
    out->destroy = destroy;
    out->handler_count = 1;
    out->handlers = handlers;
    return CPEX_CREATE_OK;
}

CPEX_PLUGIN(create, "counter", "1.0.0", "counts calls per instance", "cmf.tool_pre_invoke")
