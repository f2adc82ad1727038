/*
 * dup_host.c — a plugin that carries its own copy of the host: it defines
 * cpex_host_api_get (as a plugin that statically embeds libcpex would),
 * whose table has another host_identity than the host loading it. The
 * SDK's duplicated-host check must refuse the create.
 */
#include <cpex/plugin.h>

static const int embedded_identity;
static const cpex_host_api embedded = {
    .struct_size = (uint32_t)sizeof(cpex_host_api),
    .abi_version = CPEX_ABI_VERSION,
    .host_identity = &embedded_identity,
};

/* Hidden like every other symbol of the plugin: only the SDK's weak
   reference inside this library sees it. */
const cpex_host_api *cpex_host_api_get(void);
const cpex_host_api *cpex_host_api_get(void) { return &embedded; }

#define TEST_PLUGIN_NAME "dup-host"
#define TEST_PLUGIN_VERSION "1.0.0"
#define TEST_PLUGIN_DESCRIPTION "embeds its own host"
#include "common_plugin.h"
