/*
 * bench_routing.c — what routing costs an invoke (cpex_bench_routing; `make
 * bench` runs it after cpex_bench).
 *
 * Ten in-process plugins that allow and do nothing, on cmf.tool_pre_invoke,
 * so the numbers are the pipeline's and the router's, not a plugin's. The
 * same request (a tool entity) in every case:
 *
 *   unrouted      routing off: the hook's ten entries run
 *   hit           routing on, a route selects the ten plugins, its plan in
 *                 the route cache (the steady state of a gateway)
 *   hit+tags      the same with two runtime tags (one names a group)
 *   hit+long      hit with a tool name longer than 16 bytes: the cache
 *                 probe that compares strings (route_lookup.h), out of line
 *   no-entity     routing on, an invoke without meta: every plugin of the hook
 *   miss          routing on, route_cache_max_entries 0: every invoke
 *                 resolves the route and builds its plan
 *   conditions    routing off, five plugins with `conditions:` (checked on
 *                 every invoke)
 *
 * Each case: R rounds of N invokes after a warm-up; the median of the
 * rounds' ns/invoke, and libcpex's allocations per invoke (its own
 * counter). The difference hit - unrouted is what the router adds to a
 * cached route. --quick: a smoke run (ctest), which also fails if a cache
 * hit allocates. --json: one JSON document.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../bench.h"
#include "cpex/cpex.h"
#include "util/alloc.h"

#define PLUGINS 10
#define HOOK "cmf.tool_pre_invoke"
#define LONG_NAME "github_create_pull_request" /* 26 bytes */

/* ---- the plugin: allow, nothing else ---- */

static bool counting;
static long calls;

static int32_t allow(void *instance, const cpex_call *call)
{
    (void)instance;
    (void)call;
    if (counting)
        calls++;
    return CPEX_ALLOW;
}

static const cpex_handler_reg handlers[] = {CPEX_HANDLER(HOOK, allow, "cmf")};

static cpex_status create(void *data, const cpex_factory_request *req, cpex_factory_product *out,
                          cpex_error *err)
{
    (void)data;
    (void)req;
    (void)err;
    out->registration.abi_version = CPEX_ABI_VERSION;
    out->registration.name = "allow";
    out->registration.version = "1";
    out->registration.handlers = handlers;
    out->registration.handler_count = 1;
    out->registration.handler_size = (uint32_t)sizeof handlers[0];
    return CPEX_OK;
}

/* ---- fixtures ---- */

typedef struct fixture {
    const char *name;
    cpex_manager *m;
    const cpex_hook_handle *hook;
    cpex_extensions *ext; /* NULL: no entity */
    cpex_cmf_message *msg;
} fixture;

static char *yaml_for(const char *settings, const char *plugin_extra, bool routes, bool tags)
{
    size_t cap = 8192, o = 0;
    char *y = malloc(cap);
    if (!y)
        abort();
    o += (size_t)snprintf(y + o, cap - o, "plugin_settings: {%s}\nplugins:\n", settings);
    for (int i = 0; i < PLUGINS; i++)
        o += (size_t)snprintf(y + o, cap - o,
                              "  - {name: p%d, kind: bench/allow, hooks: [" HOOK "]%s}\n", i,
                              i % 2 == 0 ? plugin_extra : "");
    if (routes) {
        o += (size_t)snprintf(y + o, cap - o,
                              "groups:\n  all: {plugins: [p0, p1]}\n  pii: {plugins: [p2, p3]}\n"
                              "  spare: {plugins: [p4]}\n"
                              "routes:\n  - {tool: other, plugins: [p5]}\n"
                              "  - {tool: 'search_*', plugins: [p5]}\n"
                              "  - tool: [get_weather, " LONG_NAME "]\n    meta: {tags: [%s]}\n"
                              "    plugins: [p4, p5, p6, p7, p8, p9]\n",
                              tags ? "pii" : "pii");
    }
    return y;
}

static void quiet(void *user, uint32_t level, const char *plugin, const char *message)
{
    (void)user;
    (void)level;
    (void)plugin;
    (void)message;
}

static fixture *fixture_new(const char *name, const char *yaml, const char *entity, bool tags)
{
    fixture *f = calloc(1, sizeof *f);
    cpex_manager_options o;
    cpex_manager_options_init(&o);
    o.log = quiet; /* the unrouted case warns that its routes select nothing */
    cpex_error err = CPEX_ERROR_INIT;
    cpex_factory fac;
    memset(&fac, 0, sizeof fac);
    fac.struct_size = (uint32_t)sizeof fac;
    fac.create = create;
    if (!f || cpex_manager_new(&o, &f->m, &err) != CPEX_OK ||
        cpex_manager_register_factory(f->m, "bench/allow", &fac, &err) != CPEX_OK ||
        cpex_manager_load_string(f->m, yaml, strlen(yaml), name, NULL, &err) != CPEX_OK ||
        cpex_manager_initialize(f->m, &err) != CPEX_OK) {
        fprintf(stderr, "bench_routing: %s: %s\n", name, cpex_error_message(&err));
        exit(1);
    }
    f->name = name;
    f->hook = cpex_manager_hook(f->m, HOOK, NULL);
    if (entity) {
        f->ext = cpex_extensions_new();
        cpex_extensions_set(f->ext, CPEX_EXT_ENTITY_TYPE, "tool");
        cpex_extensions_set(f->ext, CPEX_EXT_ENTITY_NAME, entity);
        if (tags) {
            cpex_extensions_add(f->ext, CPEX_EXT_TAGS, "spare");
            cpex_extensions_add(f->ext, CPEX_EXT_TAGS, "request-1234");
        }
    }
    f->msg = cpex_cmf_new(CPEX_ROLE_USER);
    cpex_cmf_append_text(f->msg, CPEX_PART_TEXT, "what is the weather in Paris?", 29);
    return f;
}

static void fixture_free(fixture *f)
{
    cpex_cmf_free(f->msg);
    cpex_extensions_unref(f->ext);
    cpex_manager_free(f->m);
    free(f);
}

static void run(fixture *f, long n)
{
    cpex_payload p = cpex_payload_cmf(f->msg);
    for (long i = 0; i < n; i++) {
        cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
        cpex_manager_invoke_hook(f->m, f->hook, &p, f->ext, NULL, &res);
        if (!res.continue_processing || res.error_count) {
            fprintf(stderr, "bench_routing: %s: an invoke did not allow cleanly\n", f->name);
            exit(1);
        }
        cpex_pipeline_result_cleanup(&res);
    }
}

typedef struct result {
    const char *name;
    double ns, min_ns, allocs;
} result;

/* Every case runs the same ten plugins: only the way there differs. */
static void check_case(fixture *f)
{
    counting = true;
    calls = 0;
    run(f, 1);
    counting = false;
    if (calls != PLUGINS) {
        fprintf(stderr, "bench_routing: %s ran %ld plugins, not %d\n", f->name, calls, PLUGINS);
        exit(1);
    }
}

static double allocs_per_invoke(fixture *f)
{
    cpex__alloc_count_reset();
    run(f, 1000);
    return (double)cpex__alloc_count() / 1000.0;
}

int main(int argc, char **argv)
{
    bool quick = false, json = false;
    const char *only = NULL; /* --case NAME --iters N: for instruction counts (callgrind) */
    long only_iters = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0)
            quick = true;
        else if (strcmp(argv[i], "--json") == 0)
            json = true;
        else if (strcmp(argv[i], "--case") == 0 && i + 2 < argc &&
                 strcmp(argv[i + 1 + 1], "--iters") == 0 && i + 3 < argc) {
            only = argv[i + 1];
            only_iters = atol(argv[i + 3]);
            i += 3;
        } else {
            fprintf(stderr, "usage: cpex_bench_routing [--quick] [--json]\n"
                            "       cpex_bench_routing --case NAME --iters N   (one case, for "
                            "valgrind --tool=callgrind)\n");
            return 2;
        }
    }
    int rounds = quick ? 3 : 15;
    long n = quick ? 2000 : 200000;

    char *off = yaml_for("routing_enabled: false", "", true, false);
    char *on = yaml_for("routing_enabled: true", "", true, false);
    char *nocache = yaml_for("routing_enabled: true, route_cache_max_entries: 0", "", true, false);
    char *conds = yaml_for("routing_enabled: false",
                           ", conditions: [{tools: [get_weather, search_docs]}]", false, false);
    const char *tool = "get_weather";
    fixture *cases[] = {
        fixture_new("unrouted", off, tool, false),
        fixture_new("hit", on, tool, false),
        fixture_new("hit+tags", on, tool, true),
        fixture_new("hit+long", on, LONG_NAME, false),
        fixture_new("no-entity", on, NULL, false),
        fixture_new("miss", nocache, tool, false),
        fixture_new("conditions", conds, tool, false),
    };
    free(off);
    free(on);
    free(nocache);
    free(conds);
    size_t count = sizeof cases / sizeof cases[0];
    if (only) {
        /* Instructions per invoke = (Ir(N) - Ir(0)) / N under callgrind. */
        int rc = 1;
        for (size_t i = 0; i < count; i++)
            if (strcmp(cases[i]->name, only) == 0) {
                run(cases[i], 100); /* the route cache is warm, as in the timed runs */
                run(cases[i], only_iters);
                rc = 0;
            }
        for (size_t i = 0; i < count; i++)
            fixture_free(cases[i]);
        return rc;
    }
    result res[sizeof cases / sizeof cases[0]];
    /* Rounds interleave the cases, so that a machine busy with something
     * else slows them all alike; the router's cost is the median of the
     * per-round differences hit - unrouted (paired). */
    double *ns = calloc(count * (size_t)rounds, sizeof *ns),
           *diff = calloc((size_t)rounds, sizeof *diff);
    if (!ns || !diff)
        return 1;
    for (size_t i = 0; i < count; i++) {
        check_case(cases[i]);
        run(cases[i], n / 4 + 1); /* warm: caches, predictors, the route cache */
    }
    for (int r = 0; r < rounds; r++)
        for (size_t i = 0; i < count; i++) {
            int64_t t0 = bench_now_ns();
            run(cases[i], n);
            ns[i * (size_t)rounds + (size_t)r] = (double)(bench_now_ns() - t0) / (double)n;
        }
    for (int r = 0; r < rounds; r++)
        diff[r] = ns[1 * (size_t)rounds + (size_t)r] - ns[r];
    for (size_t i = 0; i < count; i++) {
        double *s = ns + i * (size_t)rounds;
        res[i].name = cases[i]->name;
        bench_stat st = bench_stats(s, rounds); /* sorts: s[0] is the minimum */
        res[i].ns = st.median;
        res[i].min_ns = st.min;
        res[i].allocs = allocs_per_invoke(cases[i]);
    }
    double added = bench_stats(diff, rounds).median;
    free(ns);
    free(diff);
    if (json) {
        printf("{\"plugins\":%d,\"rounds\":%d,\"invokes_per_round\":%ld,\"cases\":[", PLUGINS,
               rounds, n);
        for (size_t i = 0; i < count; i++)
            printf("%s{\"case\":\"%s\",\"median_ns\":%.1f,\"min_ns\":%.1f,\"allocs\":%.2f}",
                   i ? "," : "", res[i].name, res[i].ns, res[i].min_ns, res[i].allocs);
        printf("],\"hit_minus_unrouted_ns\":%.1f}\n", added);
    } else {
        printf("routing: %d plugins on %s, %d rounds x %ld invokes, medians\n", PLUGINS, HOOK,
               rounds, n);
        printf("  %-12s %10s %10s %12s\n", "case", "ns/invoke", "min", "allocs/inv");
        for (size_t i = 0; i < count; i++)
            printf("  %-12s %10.1f %10.1f %12.2f\n", res[i].name, res[i].ns, res[i].min_ns,
                   res[i].allocs);
        printf("  a cached route adds %.1f ns to an unrouted invoke (median of the rounds'\n"
               "  paired differences hit - unrouted)\n",
               added);
    }
    int rc = 0;
    if (res[1].allocs != 0 || res[2].allocs != 0 || res[3].allocs != 0) {
        fprintf(stderr,
                "bench_routing: a route cache hit allocated (%.2f, %.2f, %.2f per invoke)\n",
                res[1].allocs, res[2].allocs, res[3].allocs);
        rc = 1;
    }
    for (size_t i = 0; i < count; i++)
        fixture_free(cases[i]);
    return rc;
}
