/*
 * benchplug.c — libbenchplug.so, the benchmark's shared-library plugin.
 * One entry per handler of bench_handlers.h (which cpex_bench also
 * compiles in), all on cmf.tool_pre_invoke:
 *
 *   kind: "lib:<dir>/libbenchplug.so?entry=allow"
 *   kind: "lib:<dir>/libbenchplug.so?entry=modify_args"       (and modify_args_slot)
 *   kind: "lib:<dir>/libbenchplug.so?entry=modify_text"       (and modify_text_slot)
 */
#include "bench_handlers.h"

#define BENCH_ENTRY(entry, role)                                                                   \
    static int32_t entry##_create(const cpex_host_api *host, const cpex_plugin_config *config,     \
                                  cpex_plugin_registration *out, char *err, size_t err_cap)        \
    {                                                                                              \
        (void)config;                                                                              \
        return bench_fill(host, role, out, err, err_cap);                                          \
    }

BENCH_ENTRY(allow, BENCH_ROLE_ALLOW)
BENCH_ENTRY(modify_args, BENCH_ROLE_MODIFY_ARGS)
BENCH_ENTRY(modify_args_slot, BENCH_ROLE_MODIFY_ARGS_SLOT)
BENCH_ENTRY(modify_text, BENCH_ROLE_MODIFY_TEXT)
BENCH_ENTRY(modify_text_slot, BENCH_ROLE_MODIFY_TEXT_SLOT)

CPEX_PLUGIN_ENTRY(allow, allow_create, "bench-allow", "1.0.0",
                  "benchmark: reads the CMF message and allows", BENCH_HOOK)
CPEX_PLUGIN_ENTRY(modify_args, modify_args_create, "bench-modify-args", "1.0.0",
                  "benchmark: rewrites one tool argument (clone, edit, hand back)", BENCH_HOOK)
CPEX_PLUGIN_ENTRY(modify_args_slot, modify_args_slot_create, "bench-modify-args-slot", "1.0.0",
                  "benchmark: rewrites one tool argument in place (ABI 1.1 slot)", BENCH_HOOK)
CPEX_PLUGIN_ENTRY(modify_text, modify_text_create, "bench-modify-text", "1.0.0",
                  "benchmark: replaces the text of the first text part", BENCH_HOOK)
CPEX_PLUGIN_ENTRY(modify_text_slot, modify_text_slot_create, "bench-modify-text-slot", "1.0.0",
                  "benchmark: replaces the first text in place (ABI 1.1 slot)", BENCH_HOOK)
CPEX_PLUGIN_LIST(allow, modify_args, modify_args_slot, modify_text, modify_text_slot)
