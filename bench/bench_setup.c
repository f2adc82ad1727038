/*
 * bench_setup.c — register / load + initialize into a fresh manager.
 *
 *   register  `count` compiled-in allow plugins, each on a hook of its own
 *             ("bench.hook_0000", …), one cpex_manager_register each, then
 *             cpex_manager_initialize;
 *   yaml      the same plugins from one YAML (kind "bench-allow", one hook
 *             each), one cpex_manager_load_string, then initialize;
 *   lib       `count` lib: plugins of libbenchplug.so from one YAML, the
 *             entries taken in turn (allow, modify_args, modify_args_slot,
 *             modify_text, modify_text_slot), all on cmf.tool_pre_invoke,
 *             then initialize.
 *
 * Timed: from the first register (or the load) to the end of initialize.
 * Not timed: creating the manager, writing the YAML text, the checks
 * (plugin count, every hook served, a probe invoke) and freeing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "plugins/bench_handlers.h"

static const char *const lib_entries[] = {"allow", "modify_args", "modify_args_slot", "modify_text",
                                          "modify_text_slot"};
#define LIB_ENTRY_COUNT (sizeof lib_entries / sizeof lib_entries[0])

static void hook_name(char *buf, size_t cap, int i) { snprintf(buf, cap, "bench.hook_%04d", i); }

static char *setup_yaml(int kind, int count)
{
    char *y = NULL;
    size_t len = 0, cap = 0;
    int bad = bench_buf_printf(&y, &len, &cap, "plugins:\n");
    for (int i = 0; !bad && i < count; i++) {
        if (kind == BENCH_SETUP_YAML)
            bad = bench_buf_printf(&y, &len, &cap,
                                   "  - name: h%04d\n"
                                   "    kind: bench-allow\n"
                                   "    hooks: [bench.hook_%04d]\n"
                                   "    mode: sequential\n"
                                   "    capabilities: [read_subject, read_headers]\n",
                                   i, i);
        else
            bad = bench_buf_printf(&y, &len, &cap,
                                   "  - name: p%04d\n"
                                   "    kind: \"lib:libbenchplug.so?entry=%s\"\n"
                                   "    hooks: [" BENCH_HOOK "]\n"
                                   "    mode: sequential\n"
                                   "    priority: %d\n"
                                   "    capabilities: [read_subject, read_headers]\n",
                                   i, lib_entries[(size_t)i % LIB_ENTRY_COUNT], i);
    }
    if (bad) {
        free(y);
        return NULL;
    }
    return y;
}

char *bench_hooks_yaml(int count) { return setup_yaml(BENCH_SETUP_YAML, count); }

/*
 * The measured part, a function of its own (never inlined) so that
 * bench/callgrind.sh can collect exactly it (--toggle-collect).
 */
__attribute__((noinline)) int bench_setup_measured(cpex_manager *m, int kind, int count,
                                                   const char *yaml);
int bench_setup_measured(cpex_manager *m, int kind, int count, const char *yaml)
{
    if (kind == BENCH_SETUP_REGISTER) {
        char name[32], hook[32];
        for (int i = 0; i < count; i++) {
            snprintf(name, sizeof name, "h%04d", i);
            hook_name(hook, sizeof hook, i);
            if (bench_add_builtin(m, name, hook, CPEX_MODE_SEQUENTIAL, 0, BENCH_ROLE_ALLOW) != 0)
                return -1;
        }
    } else if (bench_load_yaml(m, yaml) != 0) {
        return -1;
    }
    return bench_initialize(m);
}

/* Every plugin is there, every hook served, and a probe reaches a plugin. */
static int check(cpex_manager *m, int kind, int count)
{
    char hook[32], first[32];
    size_t have = cpex_manager_plugin_count(m);
    if (have != (size_t)count) {
        fprintf(stderr, "cpex_bench: %zu plugins registered, %d asked for\n", have, count);
        return -1;
    }
    if (kind == BENCH_SETUP_LIB)
        return bench_probe(m, BENCH_HOOK, "p0000");
    for (int i = 0; i < count; i++) {
        hook_name(hook, sizeof hook, i);
        if (!cpex_manager_has_hooks_for(m, hook)) {
            fprintf(stderr, "cpex_bench: hook %s has no plugin\n", hook);
            return -1;
        }
    }
    hook_name(hook, sizeof hook, count - 1);
    snprintf(first, sizeof first, "h%04d", count - 1);
    return bench_probe(m, hook, first);
}

int64_t bench_setup_once(int kind, int count)
{
    if (count < 1 || count > 9999)
        return -1;
    cpex_manager *m = bench_manager_new();
    char *yaml = kind == BENCH_SETUP_REGISTER ? NULL : setup_yaml(kind, count);
    int64_t elapsed = -1;
    if (m && (kind == BENCH_SETUP_REGISTER || yaml)) {
        int64_t t0 = bench_now_ns();
        int rc = bench_setup_measured(m, kind, count, yaml);
        int64_t t1 = bench_now_ns();
        if (rc == 0 && check(m, kind, count) == 0)
            elapsed = t1 - t0;
    }
    free(yaml);
    cpex_manager_free(m);
    return elapsed;
}
