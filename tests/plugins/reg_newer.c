/*
 * reg_newer.c — a hand-written plugin (no manifest, no handshake) whose
 * create succeeds but whose registration claims ABI 1.99. The host must
 * refuse the registration AND call the plugin's destroy (the instance is
 * allocated: forgetting destroy leaks, which LeakSanitizer reports).
 */
#define TEST_PLUGIN_RAW_ABI
#include "common_plugin.h"

TEST_RAW_CREATE(cpex_plugin_create)
{
    (void)host_abi;
    (void)host;
    (void)config;
    (void)err;
    (void)err_cap;
    out->abi_version = CPEX_ABI_MAKE_VERSION(1, 99);
    out->instance = malloc(8);
    out->destroy = destroy;
    return TEST_REGISTER(out, "reg-newer", "1.99.0", allow_handlers);
}
