/*
 * hostile_abi_split.c — the manifest and the entry point disagree about the
 * ABI: the manifest says 1.0 (what this host speaks), the registration the
 * entry point fills says 2.0. The host must refuse the registration with
 * both versions named, and destroy the instance the create made (counted
 * in the exported `hostile_live_instances`).
 */
#define TEST_PLUGIN_RAW_ABI
#define TEST_PLUGIN_LIVE_COUNT
#include "common_plugin.h"

TEST_RAW_CREATE(cpex_plugin_create)
{
    (void)host_abi, (void)host, (void)config, (void)err, (void)err_cap;
    out->struct_size = (uint32_t)sizeof *out;
    out->abi_version = CPEX_ABI_MAKE_VERSION(2, 0);
    out->instance = malloc(16);
    hostile_live_instances++;
    out->destroy = destroy;
    return TEST_REGISTER(out, "abi-split", "2.0.0", allow_handlers);
}

TEST_ONE_ENTRY_MANIFEST("ABI split", "2.0.0", "manifest 1.0, registration 2.0", CPEX_ABI_VERSION,
                        1);
