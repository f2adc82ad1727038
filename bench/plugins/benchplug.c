/*
 * benchplug.c — libbenchplug.so, the benchmark's shared-library plugin.
 * Two entries over the handlers of bench_handlers.h (which cpex_bench also
 * compiles in):
 *
 *   kind: "lib:<dir>/libbenchplug.so?entry=allow"
 *   kind: "lib:<dir>/libbenchplug.so?entry=modify"
 */
#include "bench_handlers.h"

static int32_t allow_create(const cpex_host_api *host, const cpex_plugin_config *config,
                            cpex_plugin_registration *out, char *err, size_t err_cap)
{
    (void)config;
    return bench_fill(host, 0, out, err, err_cap);
}

static int32_t modify_create(const cpex_host_api *host, const cpex_plugin_config *config,
                             cpex_plugin_registration *out, char *err, size_t err_cap)
{
    (void)config;
    return bench_fill(host, 1, out, err, err_cap);
}

CPEX_PLUGIN_ENTRY(allow, allow_create, "bench-allow", "1.0.0",
                  "benchmark: reads the CMF message and allows", BENCH_HOOK)
CPEX_PLUGIN_ENTRY(modify, modify_create, "bench-modify", "1.0.0",
                  "benchmark: replaces the text of part 0", BENCH_HOOK)
CPEX_PLUGIN_LIST(allow, modify)
