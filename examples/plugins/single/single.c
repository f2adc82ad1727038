/*
 * single.c — the smallest libcpex plugin.
 *
 * Allows every call on cmf.tool_pre_invoke and records one value read from
 * its `config:` block (`greeting`, default "hello") in the result metadata
 * under "greeting", so a host (or a test) can see that the handler ran.
 *
 *   plugins:
 *     - name: hello
 *       kind: "lib:./libsingle.so"
 *       hooks: [cmf.tool_pre_invoke]
 *       config: { greeting: "bonjour" }
 */
#include <stdlib.h>
#include <string.h>

#include <cpex/plugin.h>

/* Per-instance state: the same library may be loaded under several names,
   each with its own config, so nothing lives in globals. */
typedef struct single {
    const cpex_host_api *host; /* valid for the life of the instance */
    char *greeting;            /* our own copy (the config is valid during create only) */
} single;

static int32_t on_tool_pre_invoke(void *instance, const cpex_call *call)
{
    single *self = instance;
    const cpex_host_api *host = self->host;
    /* The new JSON string is handed to the host, which takes ownership. */
    host->set_metadata(call, "greeting",
                       host->json_new_string(self->greeting, strlen(self->greeting)));
    return CPEX_ALLOW;
}

static void destroy(void *instance)
{
    single *self = instance;
    free(self->greeting);
    free(self);
}

static const cpex_handler_reg handlers[] = {
    CPEX_HANDLER("cmf.tool_pre_invoke", on_tool_pre_invoke, "cmf"),
};

static int32_t create(const cpex_host_api *host, const cpex_plugin_config *config,
                      cpex_plugin_registration *out, char *err, size_t err_cap)
{
    const cpex_json *g = cpex_config_get(host, config, "greeting");
    if (g && host->json_type(g) != CPEX_JSON_STRING) {
        cpex_plugin_errorf(err, err_cap, "config.greeting must be a string");
        return CPEX_CREATE_CONFIG_REJECTED;
    }
    single *self = calloc(1, sizeof *self);
    if (!self) {
        cpex_plugin_errorf(err, err_cap, "out of memory");
        return CPEX_CREATE_INIT_FAILED;
    }
    self->host = host;
    const char *greeting = cpex_config_string(host, config, "greeting", "hello");
    size_t len = strlen(greeting);
    self->greeting = malloc(len + 1); /* not strdup: plain C11 has none */
    if (!self->greeting) {
        free(self);
        cpex_plugin_errorf(err, err_cap, "out of memory");
        return CPEX_CREATE_INIT_FAILED;
    }
    memcpy(self->greeting, greeting, len + 1);
    out->name = "single";
    out->version = "1.0.0";
    out->instance = self;
    out->destroy = destroy;
    out->handler_count = sizeof handlers / sizeof handlers[0];
    out->handlers = handlers;
    return CPEX_CREATE_OK;
}

CPEX_PLUGIN(create, "single", "1.0.0", "Allows every tool call and echoes config.greeting",
            "cmf.tool_pre_invoke")
