/*
 * no_manifest.c — a plugin written by hand against abi.h alone, as an older
 * SDK or another language would: it exports only `cpex_plugin_create`, no
 * `cpex_plugin_list` manifest. The host must still load it.
 */
#include <string.h>

#define TEST_PLUGIN_RAW_ABI
#include "common_plugin.h"

static int32_t mark(void *instance, const cpex_call *call)
{
    const cpex_host_api *host = instance;
    host->set_metadata(call, "no_manifest", host->json_new_bool(1));
    return CPEX_ALLOW;
}

static const cpex_handler_reg mark_handlers[] = {CPEX_HANDLER("cmf.tool_pre_invoke", mark, "cmf")};

TEST_RAW_CREATE(cpex_plugin_create)
{
    (void)config;
    /* It needs nothing newer than 1.0, so any host of major 1 will do. */
    if (CPEX_ABI_MAJOR(host_abi) != 1u) {
        static const char msg[] = "no_manifest: built for ABI 1.0; rebuild it for this host";
        if (err && err_cap) {
            size_t n = sizeof msg < err_cap ? sizeof msg : err_cap;
            memcpy(err, msg, n);
            err[n - 1] = '\0';
        }
        return CPEX_CREATE_ABI_MISMATCH;
    }
    /* The host zero-filled *out and set struct_size to its size. */
    out->struct_size = (uint32_t)sizeof *out;
    out->abi_version = CPEX_ABI_VERSION;
    out->instance = (void *)host;
    return TEST_REGISTER(out, "no-manifest", "0.1.0", mark_handlers);
}
