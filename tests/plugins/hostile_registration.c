/*
 * hostile_registration.c — hand-written entry points (no SDK, no manifest)
 * that return CPEX_PLUGIN_OK with a registration that cannot be used. One
 * entry per case (kind "lib:…/libhostile_registration.so?entry=<case>"):
 *
 *   untouched        ok, but the registration is left as the host passed it
 *                    (a "NULL registration": no version, no handlers)
 *   no_handlers      ok, a valid header but zero handlers and no array
 *   count_no_array   ok, handler_count 3 but handlers NULL
 *   absurd_count     ok, handler_count 1<<40 over a one-element array
 *   too_small        ok, struct_size 16 (smaller than any ABI 1.0 registration)
 *   too_big          ok, struct_size far beyond the host's struct
 *
 * Each successful create counts a live instance in the exported
 * `hostile_live_instances`; destroy (when the registration offers one) counts
 * it down, so a test holding its own reference to the library can prove the
 * host destroyed what it refused.
 */
#include <stdlib.h>
#include <string.h>

#include <cpex/abi.h>

__attribute__((visibility("default"))) int hostile_live_instances;

static int32_t allow(void *instance, const cpex_call *call)
{
    (void)instance;
    (void)call;
    return CPEX_ALLOW;
}

static void destroy(void *instance)
{
    hostile_live_instances--;
    free(instance);
}

static const cpex_handler_reg one_handler[] = {{"cmf.tool_pre_invoke", allow, "cmf"}};

/* A well-formed registration header with an allocated instance. */
static void fill(cpex_plugin_registration *out)
{
    out->struct_size = (uint32_t)sizeof *out;
    out->abi_version = CPEX_ABI_VERSION;
    out->name = "hostile-registration";
    out->version = "6.6.6";
    out->instance = malloc(16);
    out->destroy = destroy;
    hostile_live_instances++;
}

#define ENTRY(name)                                                                                \
    __attribute__((visibility("default"))) int32_t cpex_plugin_create_##name(                      \
        uint32_t host_abi, const cpex_host_api *host, const cpex_plugin_config *config,            \
        cpex_plugin_registration *out, char *err, size_t err_cap);                                 \
    int32_t cpex_plugin_create_##name(uint32_t host_abi, const cpex_host_api *host,                \
                                      const cpex_plugin_config *config,                            \
                                      cpex_plugin_registration *out, char *err, size_t err_cap)

ENTRY(untouched)
{
    (void)host_abi, (void)host, (void)config, (void)out, (void)err, (void)err_cap;
    return CPEX_PLUGIN_OK;
}

ENTRY(no_handlers)
{
    (void)host_abi, (void)host, (void)config, (void)err, (void)err_cap;
    fill(out);
    out->handler_count = 0;
    out->handlers = NULL;
    return CPEX_PLUGIN_OK;
}

ENTRY(count_no_array)
{
    (void)host_abi, (void)host, (void)config, (void)err, (void)err_cap;
    fill(out);
    out->handler_count = 3;
    out->handlers = NULL;
    return CPEX_PLUGIN_OK;
}

ENTRY(absurd_count)
{
    (void)host_abi, (void)host, (void)config, (void)err, (void)err_cap;
    fill(out);
    out->handler_count = (size_t)1 << 40;
    out->handlers = one_handler;
    return CPEX_PLUGIN_OK;
}

ENTRY(too_small)
{
    (void)host_abi, (void)host, (void)config, (void)err, (void)err_cap;
    /* Only the first 16 bytes are claimed; nothing else is set. */
    out->struct_size = 16;
    out->abi_version = CPEX_ABI_VERSION;
    return CPEX_PLUGIN_OK;
}

ENTRY(too_big)
{
    (void)host_abi, (void)host, (void)config, (void)err, (void)err_cap;
    fill(out);
    out->handler_count = 1;
    out->handlers = one_handler;
    out->struct_size = 1u << 20;
    return CPEX_PLUGIN_OK;
}
