/*
 * bench_cases.c — every case of cpex_bench: its name, what it measures,
 * the fixture it needs and how bench/callgrind.sh runs it.
 *
 * Groups:
 *   hot path     the plain call (baseline), empty invokes, sequential
 *                plugins, by hook name and by pre-resolved handle, with
 *                1,000 hooks in the manager, from a shared library
 *   concurrent   5 sequential + 5 audit + 5 concurrent; 1 concurrent plugin
 *                on a 1 KB, 100 KB and 10 MB payload
 *   modify       10 sequential plugins of which the 5th rewrites one tool
 *                argument (the 1.0 way and through the 1.1 slot) on 1 KB,
 *                100 KB and 10 MB, the all-allow invokes they are compared
 *                with, a text replacement, and the handler's own JSON work
 *   setup        register / YAML-load + initialize 1 … 1,000 distinct hooks;
 *                load + initialize 1 … 1,000 lib: plugins
 *   threads      2 threads vs 1 on one manager, against the control loop
 *
 * cg_iters is N for bench-callgrind (it runs N and 2N and reports the
 * difference over N, so setup cancels); 0 leaves a case out there, with
 * cg_note saying why.
 */
#include <string.h>

#include "bench.h"
#include "plugins/bench_handlers.h"

#define KB BENCH_KB
#define MB BENCH_MB

#define INVOKE(n, g, w, cg, ...)                                                                   \
    {                                                                                              \
        .name = n, .group = g, .what = w, .kind = BENCH_CASE_INVOKE, .cg_iters = cg, .spec = {     \
            __VA_ARGS__                                                                            \
        }                                                                                          \
    }
#define SETUP(n, w, k, count, cg, note)                                                            \
    {                                                                                              \
        .name = n, .group = "setup", .what = w, .kind = BENCH_CASE_SETUP, .setup_kind = k,         \
        .setup_count = count, .cg_iters = cg, .cg_note = note                                      \
    }

/* Left out of bench-callgrind unless asked for: minutes under valgrind. */
#define SLOW(n, note) .cg_iters = n, .cg_slow = 1, .cg_note = note
#define SLOW_10MB                                                                                  \
    SLOW(20, "left out of bench-callgrind by default: parsing the 10 MB message takes about a "    \
             "minute per run under valgrind (bench/callgrind.sh --all or --case NAME runs it)")

#define MOD_ARGS BENCH_ROLE_MODIFY_ARGS
#define MOD_ARGS_SLOT BENCH_ROLE_MODIFY_ARGS_SLOT
#define MOD_TEXT BENCH_ROLE_MODIFY_TEXT
#define MOD_TEXT_SLOT BENCH_ROLE_MODIFY_TEXT_SLOT

bench_case bench_cases[] = {
    /* ---- hot path ---- */
    INVOKE("baseline", "hot path", "plain indirect call of the allow handler", 200000,
           .special = BENCH_BASELINE),
    INVOKE("empty", "hot path", "invoke by name, hook with no plugins", 20000, .seq = 10,
           .other_hook = 1),
    INVOKE("empty_handle", "hot path", "the same by pre-resolved hook handle", 20000, .seq = 10,
           .other_hook = 1, .by_handle = 1),
    INVOKE("seq_1", "hot path", "1 sequential plugin", 10000, .seq = 1),
    INVOKE("seq_5", "hot path", "5 sequential plugins", 10000, .seq = 5),
    INVOKE("seq_10", "hot path", "10 sequential plugins", 10000, .seq = 10),
    INVOKE("seq_50", "hot path", "50 sequential plugins", 2000, .seq = 50),
    INVOKE("seq_1_handle", "hot path", "1 sequential plugin, by handle", 10000, .seq = 1,
           .by_handle = 1),
    INVOKE("seq_10_handle", "hot path", "10 sequential plugins, by handle", 10000, .seq = 10,
           .by_handle = 1),
    INVOKE("hooks_1000", "hot path", "1 plugin on one of 1,000 hooks, by name", 10000,
           .hooks = 1000),
    INVOKE("hooks_1000_handle", "hot path", "1 plugin on one of 1,000 hooks, by handle", 10000,
           .hooks = 1000, .by_handle = 1),
    INVOKE("lib_1", "hot path", "1 sequential plugin from a .so", 10000, .lib = 1),
    INVOKE("lib_10", "hot path", "10 sequential plugins from a .so", 10000, .lib = 10),

    /* ---- concurrent ---- */
    INVOKE("mixed", "concurrent", "5 sequential + 5 audit + 5 concurrent, 1 KB", 300, .seq = 5,
           .audit = 5, .conc = 5),
    INVOKE("conc_1_1k", "concurrent", "1 concurrent plugin, 1 KB payload", 1000, .conc = 1,
           .payload = KB),
    INVOKE("conc_1_100k", "concurrent", "1 concurrent plugin, 100 KB payload", 1000, .conc = 1,
           .payload = 100 * KB),
    {.name = "conc_1_10m",
     .group = "concurrent",
     .what = "1 concurrent plugin, 10 MB payload",
     .kind = BENCH_CASE_INVOKE,
     .spec = {.conc = 1, .payload = 10 * MB},
     SLOW_10MB},

    /* ---- modify ---- */
    INVOKE("seq_10_100k", "modify", "10 sequential allow, 100 KB payload", 5000, .seq = 10,
           .payload = 100 * KB),
    {.name = "seq_10_10m",
     .group = "modify",
     .what = "10 sequential allow, 10 MB payload",
     .kind = BENCH_CASE_INVOKE,
     .spec = {.seq = 10, .payload = 10 * MB},
     SLOW_10MB},
    INVOKE("modify_args_1k", "modify", "10 seq, the 5th rewrites a tool argument, 1 KB", 2000,
           .seq = 10, .modify = MOD_ARGS),
    INVOKE("modify_args_100k", "modify", "the same, 100 KB payload", 2000, .seq = 10,
           .modify = MOD_ARGS, .payload = 100 * KB),
    {.name = "modify_args_10m",
     .group = "modify",
     .what = "the same, 10 MB payload",
     .kind = BENCH_CASE_INVOKE,
     .spec = {.seq = 10, .modify = MOD_ARGS, .payload = 10 * MB},
     SLOW_10MB},
    INVOKE("modify_args_slot_1k", "modify", "the same by payload_set_tool_arguments, 1 KB", 2000,
           .seq = 10, .modify = MOD_ARGS_SLOT),
    INVOKE("modify_args_slot_100k", "modify", "the same (slot), 100 KB payload", 2000, .seq = 10,
           .modify = MOD_ARGS_SLOT, .payload = 100 * KB),
    {.name = "modify_args_slot_10m",
     .group = "modify",
     .what = "the same (slot), 10 MB payload",
     .kind = BENCH_CASE_INVOKE,
     .spec = {.seq = 10, .modify = MOD_ARGS_SLOT, .payload = 10 * MB},
     SLOW_10MB},
    INVOKE("modify_text_1k", "modify", "10 seq, the 5th replaces the text, 1 KB", 2000, .seq = 10,
           .modify = MOD_TEXT),
    INVOKE("modify_text_slot_1k", "modify", "the same by payload_set_text, 1 KB", 2000, .seq = 10,
           .modify = MOD_TEXT_SLOT),
    INVOKE("args_work", "modify", "the rewrite's own JSON work, no invoke", 10000,
           .special = BENCH_ARGS_WORK),

    /* ---- setup ---- */
    SETUP("register_hooks_1", "register + initialize, 1 hook (1 plugin)", BENCH_SETUP_REGISTER, 1,
          20, NULL),
    SETUP("register_hooks_10", "register + initialize, 10 distinct hooks", BENCH_SETUP_REGISTER, 10,
          10, NULL),
    SETUP("register_hooks_100", "register + initialize, 100 distinct hooks", BENCH_SETUP_REGISTER,
          100, 2, NULL),
    SETUP("register_hooks_1000", "register + initialize, 1,000 distinct hooks",
          BENCH_SETUP_REGISTER, 1000, 1, NULL),
    SETUP("yaml_hooks_1", "YAML load + initialize, 1 hook", BENCH_SETUP_YAML, 1, 20, NULL),
    SETUP("yaml_hooks_10", "YAML load + initialize, 10 distinct hooks", BENCH_SETUP_YAML, 10, 10,
          NULL),
    SETUP("yaml_hooks_100", "YAML load + initialize, 100 distinct hooks", BENCH_SETUP_YAML, 100, 2,
          NULL),
    SETUP("yaml_hooks_1000", "YAML load + initialize, 1,000 distinct hooks", BENCH_SETUP_YAML, 1000,
          1, NULL),
    SETUP("load_lib_1", "load + initialize 1 lib: plugin", BENCH_SETUP_LIB, 1, 10, NULL),
    SETUP("load_lib_100", "load + initialize 100 lib: plugins", BENCH_SETUP_LIB, 100, 2, NULL),
    SETUP("load_lib_1000", "load + initialize 1,000 lib: plugins", BENCH_SETUP_LIB, 1000, 1, NULL),

    /* ---- threads ---- */
    {.name = "threads",
     .group = "threads",
     .what = "2 threads vs 1 (5 sequential plugins)",
     .kind = BENCH_CASE_THREADS,
     .cg_note = "not run under callgrind: valgrind runs one thread at a time"},
};

const size_t bench_case_count = sizeof bench_cases / sizeof bench_cases[0];

bench_case *bench_find_case(const char *name)
{
    for (size_t i = 0; name && i < bench_case_count; i++)
        if (strcmp(bench_cases[i].name, name) == 0)
            return &bench_cases[i];
    return NULL;
}
