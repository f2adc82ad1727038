/*
 * hostile_registration.c — hand-written entry points (no SDK, no manifest)
 * that return CPEX_CREATE_OK with a registration that cannot be used. One
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
#define TEST_PLUGIN_RAW_ABI
#define TEST_PLUGIN_LIVE_COUNT
#include "common_plugin.h"

/* A well-formed registration header with an allocated instance, and
   `count` handlers at `handlers`; returns CPEX_CREATE_OK. */
static int32_t fill(cpex_plugin_registration *out, size_t count, const cpex_handler_reg *handlers)
{
    out->struct_size = (uint32_t)sizeof *out;
    out->abi_version = CPEX_ABI_VERSION;
    out->instance = malloc(16);
    out->destroy = destroy;
    hostile_live_instances++;
    return TEST_REGISTER_N(out, "hostile-registration", "6.6.6", handlers, count);
}

/* Entry point cpex_plugin_create_<name>, whose body (following) fills `out`. */
#define ENTRY(name)                                                                                \
    static int32_t name##_fill(cpex_plugin_registration *out);                                     \
    TEST_RAW_CREATE(cpex_plugin_create_##name)                                                     \
    {                                                                                              \
        (void)host_abi, (void)host, (void)config, (void)err, (void)err_cap;                        \
        return name##_fill(out);                                                                   \
    }                                                                                              \
    static int32_t name##_fill(cpex_plugin_registration *out)

ENTRY(untouched)
{
    (void)out;
    return CPEX_CREATE_OK;
}

ENTRY(no_handlers) { return fill(out, 0, NULL); }

ENTRY(count_no_array) { return fill(out, 3, NULL); }

ENTRY(absurd_count) { return fill(out, (size_t)1 << 40, allow_handlers); }

ENTRY(too_small)
{
    /* Only the first 16 bytes are claimed; nothing else is set. */
    out->struct_size = 16;
    out->abi_version = CPEX_ABI_VERSION;
    return CPEX_CREATE_OK;
}

ENTRY(too_big)
{
    fill(out, 1, allow_handlers);
    out->struct_size = 1u << 20;
    return CPEX_CREATE_OK;
}
