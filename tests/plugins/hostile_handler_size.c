/*
 * hostile_handler_size.c — hand-written entry points (no SDK, no manifest)
 * whose registrations play with `handler_size` (ABI 1.1), the stride of
 * the handler array. One entry per case (kind "…?entry=<case>"):
 *
 *   wide_zero     entries of 32 bytes (a "newer" cpex_handler_reg with an
 *                 extra field) whose extra field is 0: the host must walk
 *                 the array with that stride and load it (two handlers,
 *                 pre and post, each writing metadata "wide.<hook>")
 *   wide_tail     the same with the extra field set: a field this host
 *                 does not know; refused
 *   too_small     handler_size 8 (less than a 1.0 entry); refused
 *   too_large     handler_size 1 MiB; refused as corrupt
 *   unaligned     handler_size 28 (not a multiple of the alignment); refused
 *   reserved_set  a well-formed registration whose reserved field is 7; refused
 *   v10_garbage   a 1.0-sized registration (struct_size 1.0) that leaves
 *                 garbage where 1.1 keeps handler_size: the host must ignore
 *                 what lies past the declared size and load it
 *
 * Live instances are counted in `hostile_live_instances` (destroy counts
 * down), so a test can prove a refused instance was destroyed.
 */
#include <stdio.h>

#define TEST_PLUGIN_RAW_ABI
#define TEST_PLUGIN_LIVE_COUNT
#include "common_plugin.h"

static const cpex_host_api *g_host;

/* Write metadata "wide.<hook>" = true. */
static int32_t mark(void *instance, const cpex_call *call)
{
    char key[128];
    (void)instance;
    snprintf(key, sizeof key, "wide.%.*s", (int)call->hook.len, call->hook.ptr);
    g_host->set_metadata(call, key, g_host->json_new_bool(1));
    return CPEX_ALLOW;
}

/* A handler entry of a later minor: the 1.0 fields, then one more. */
typedef struct wide_handler {
    cpex_handler_reg base;
    uint64_t extra;
} wide_handler;

static const wide_handler wide_zero[] = {{CPEX_HANDLER("cmf.tool_pre_invoke", mark, "cmf"), 0},
                                         {CPEX_HANDLER("cmf.tool_post_invoke", mark, "cmf"), 0}};
static const wide_handler wide_tail[] = {{CPEX_HANDLER("cmf.tool_pre_invoke", mark, "cmf"), 42}};

/* A registration with an allocated instance over `count` entries of `size`
   bytes at `handlers`; returns CPEX_CREATE_OK. */
static int32_t fill(cpex_plugin_registration *out, const void *handlers, size_t count,
                    uint32_t size)
{
    out->struct_size = (uint32_t)sizeof *out;
    out->abi_version = CPEX_ABI_VERSION;
    out->name = "hostile-handler-size";
    out->version = "1.1.0";
    out->instance = malloc(16);
    out->destroy = destroy;
    out->handlers = handlers;
    out->handler_count = count;
    out->handler_size = size;
    hostile_live_instances++;
    return CPEX_CREATE_OK;
}

/* Entry point cpex_plugin_create_<name>, whose body (following) fills `out`. */
#define ENTRY(name)                                                                                \
    static int32_t name##_fill(cpex_plugin_registration *out);                                     \
    TEST_RAW_CREATE(cpex_plugin_create_##name)                                                     \
    {                                                                                              \
        (void)host_abi, (void)config, (void)err, (void)err_cap;                                    \
        g_host = host;                                                                             \
        return name##_fill(out);                                                                   \
    }                                                                                              \
    static int32_t name##_fill(cpex_plugin_registration *out)

ENTRY(wide_zero) { return fill(out, wide_zero, 2, (uint32_t)sizeof(wide_handler)); }

ENTRY(wide_tail) { return fill(out, wide_tail, 1, (uint32_t)sizeof(wide_handler)); }

ENTRY(too_small) { return fill(out, allow_handlers, 1, 8); }

ENTRY(too_large) { return fill(out, allow_handlers, 1, 1u << 20); }

ENTRY(unaligned) { return fill(out, allow_handlers, 1, 28); }

ENTRY(reserved_set)
{
    fill(out, allow_handlers, 1, (uint32_t)sizeof(cpex_handler_reg));
    out->reserved = 7;
    return CPEX_CREATE_OK;
}

ENTRY(v10_garbage)
{
    fill(out, allow_handlers, 1, 0xdeadbeefu);
    out->reserved = 0xdeadbeefu;
    out->struct_size = (uint32_t)CPEX_REGISTRATION_SIZE_1_0;
    return CPEX_CREATE_OK;
}
