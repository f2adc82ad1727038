/*
 * hostile_init_garbage.c — an initialize callback that fails and writes
 * garbage into its message buffer: the whole buffer, no terminating NUL,
 * with a terminal escape sequence and a newline that forges a second line.
 * The host must keep the message bounded and printable on one line.
 */
#include <stdlib.h>
#include <string.h>

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
    static const char forged[] = "init_garbage: failed\x1b[2J\nFAKE: all plugins loaded fine ";
    if (err && err_cap) {
        memset(err, 'X', err_cap); /* no NUL anywhere */
        memcpy(err, forged, sizeof forged - 1 < err_cap ? sizeof forged - 1 : err_cap);
    }
    return -1;
}

static void destroy(void *instance) { free(instance); }

static const cpex_handler_reg handlers[] = {{"cmf.tool_pre_invoke", allow, "cmf"}};

static int32_t create(const cpex_host_api *host, const cpex_plugin_config *config,
                      cpex_plugin_registration *out, char *err, size_t err_cap)
{
    (void)host;
    (void)config;
    out->instance = malloc(16);
    if (!out->instance) {
        cpex_plugin_errorf(err, err_cap, "out of memory");
        return CPEX_PLUGIN_INIT_FAILED;
    }
    out->name = "init-garbage";
    out->version = "1.0.0";
    out->initialize = initialize;
    out->destroy = destroy;
    out->handler_count = 1;
    out->handlers = handlers;
    return CPEX_PLUGIN_OK;
}

CPEX_PLUGIN(create, "init-garbage", "1.0.0", "fails initialize with a garbage message",
            "cmf.tool_pre_invoke")
