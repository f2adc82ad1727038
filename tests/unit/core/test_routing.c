/*
 * test_routing.c — routes, groups, defaults, scope, tags, conditions and
 * overrides: the routing tests of CPEX (reference §1.11, config and
 * manager tables) ported to libcpex, plus libcpex's decisions.
 */
#include "test_support.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/routing_config.h"
#include "cpex/cpex.h"
#include "model/extensions_internal.h"
#include "routes.h"

#define PRE "cmf.tool_pre_invoke"

/* Plugins a..e of kind test/rec on the tool pre hook (YAML text). */
#define PLUG(n) "  - {name: " n ", kind: " RT_KIND ", hooks: [" PRE "]}\n"
#define PLUGINS_ABCDE "plugins:\n" PLUG("a") PLUG("b") PLUG("c") PLUG("d") PLUG("e")
#define ROUTING_ON "plugin_settings: {routing_enabled: true}\n"

static cpex_manager *loaded(const char *yaml)
{
    cpex_manager *m = rt_manager();
    assert_int_equal(rt_load(m, yaml, NULL), CPEX_OK);
    cpex_error err = CPEX_ERROR_INIT;
    assert_int_equal(cpex_manager_initialize(m, &err), CPEX_OK);
    return m;
}

static char *refused(const char *yaml)
{
    cpex_manager *m = rt_manager();
    char *msg = NULL;
    assert_int_not_equal(rt_load(m, yaml, &msg), CPEX_OK);
    cpex_manager_free(m);
    return msg;
}

static const char *tool(cpex_manager *m, const char *name)
{
    return rt_run_entity(m, PRE, "tool", name, NULL, NULL, NULL);
}

/* ------------------------------------------------------------------ */
/* Configuration (CPEX config.rs tests)                                */
/* ------------------------------------------------------------------ */

static cpex__config *parse_ok(const char *yaml)
{
    cpex__config *cfg = NULL;
    cpex_error err = CPEX_ERROR_INIT;
    cpex_status st = cpex__config_parse(yaml, strlen(yaml), "r.yaml", NULL, &cfg, &err);
    if (st != CPEX_OK)
        fail_msg("parse failed: %s", cpex_error_message(&err));
    cpex_error_cleanup(&err);
    return cfg;
}

static char *parse_refused(const char *yaml)
{
    cpex__config *cfg = NULL;
    cpex_error err = CPEX_ERROR_INIT;
    assert_int_not_equal(cpex__config_parse(yaml, strlen(yaml), "r.yaml", NULL, &cfg, &err),
                         CPEX_OK);
    char *msg = strdup(cpex_error_message(&err));
    cpex_error_cleanup(&err);
    return msg;
}

static void test_minimal_config_routing_off(void **state)
{
    (void)state;
    cpex__config *cfg = parse_ok("plugins:\n" PLUG("a"));
    assert_int_equal(cfg->plugin_count, 1);
    assert_true(!cfg->routing || !cfg->routing->enabled);
    cpex__config_free(cfg);
    cfg = parse_ok(ROUTING_ON "plugins:\n" PLUG("a"));
    assert_true(cfg->routing->enabled);
    assert_int_equal(cfg->routing->cache_max, CPEX__ROUTE_CACHE_DEFAULT);
    cpex__config_free(cfg);
}

static void test_route_matcher_rules(void **state)
{
    (void)state;
    char *msg = parse_refused(ROUTING_ON PLUGINS_ABCDE
                              "routes:\n  - meta: {tags: [x]}\n    plugins: [a]\n");
    assert_contains(msg, "route 0 has no entity matcher (need tool, resource, prompt, or llm)");
    free(msg);
    msg = parse_refused(ROUTING_ON PLUGINS_ABCDE "routes:\n  - {tool: t, plugins: [a]}\n"
                                                 "  - {tool: t, resource: r, plugins: [a]}\n");
    assert_contains(msg, "route 1 has multiple entity matchers (need exactly one)");
    free(msg);
    /* Routing off: CPEX skips these checks, and so do we (a warning says routes do nothing). */
    cpex__config *cfg = parse_ok(PLUGINS_ABCDE "routes:\n  - meta: {tags: [x]}\n");
    assert_contains(cfg->warnings[0], "routing_enabled is not true");
    cpex__config_free(cfg);
}

static void test_unknown_references_rejected(void **state)
{
    (void)state;
    char *msg = refused(ROUTING_ON PLUGINS_ABCDE "routes:\n  - {tool: t, plugins: [a, unknown]}\n");
    assert_contains(msg, "routes.yaml:9:28: route 0 references unknown plugin 'unknown'");
    free(msg);
    msg = refused(ROUTING_ON PLUGINS_ABCDE
                  "global:\n  policies:\n    all: {plugins: [nonexistent]}\n");
    assert_contains(msg, "policy group 'all' references unknown plugin 'nonexistent'");
    free(msg);
    msg = refused(ROUTING_ON PLUGINS_ABCDE "global:\n  defaults:\n    tool: {plugins: [ghost]}\n");
    assert_contains(
        msg, "default group 'tool' (global.defaults.tool) references unknown plugin 'ghost'");
    free(msg);
    /* Every problem at once. */
    msg = refused(ROUTING_ON PLUGINS_ABCDE "routes:\n  - {tool: t, plugins: [x1]}\n"
                                           "  - {tool: u, plugins: [x2]}\n");
    assert_contains(msg, "'x1'");
    assert_contains(msg, "'x2'");
    free(msg);
    msg = parse_refused(ROUTING_ON PLUGINS_ABCDE "groups:\n  hr-tools: {plugins: [a]}\n"
                                                 "routes:\n  - {tool: t, groups: [hr-toolz]}\n");
    assert_contains(msg, "route 0 joins unknown group 'hr-toolz'");
    free(msg);
    /* An unknown meta.tags value is allowed (runtime tags may name it). */
    cpex__config_free(parse_ok(ROUTING_ON PLUGINS_ABCDE "groups:\n  hr: {plugins: [a]}\n"
                                                        "routes:\n  - {tool: t, groups: hr, "
                                                        "meta: {tags: [whatever]}}\n"));
}

static void test_plugin_refs(void **state)
{
    (void)state;
    cpex__config *cfg =
        parse_ok(ROUTING_ON PLUGINS_ABCDE "routes:\n  - tool: t\n    plugins:\n      - a\n"
                                          "      - b: {config: {max_requests: 10}}\n      - c\n");
    const cpex__rref_list *l = &cfg->routing->routes[0].plugins;
    assert_int_equal(l->count, 3);
    assert_string_equal(l->items[0].name, "a");
    assert_null(l->items[0].override);
    assert_string_equal(l->items[1].name, "b");
    assert_int_equal(json_integer_value(json_object_get(l->items[1].override, "max_requests")), 10);
    assert_null(l->items[2].override);
    cpex__config_free(cfg);
    /* A mapping is APL's form: accepted, activates nothing, warned. */
    cfg = parse_ok(ROUTING_ON PLUGINS_ABCDE "routes:\n  - tool: t\n    plugins: {a: {x: 1}}\n"
                                            "global:\n  defaults:\n    tool: {plugins: {b: {}}}\n");
    assert_int_equal(cfg->routing->routes[0].plugins.count, 0);
    assert_contains(cfg->warnings[0], "APL per-plugin overrides");
    cpex__config_free(cfg);
    char *msg = parse_refused(ROUTING_ON PLUGINS_ABCDE "routes:\n  - {tool: t, plugins: a}\n");
    assert_contains(msg, "sequence");
    assert_contains(msg, "mapping");
    free(msg);
    msg = parse_refused(ROUTING_ON PLUGINS_ABCDE
                        "routes:\n  - tool: t\n    plugins: [{a: 1, b: 2}]\n");
    assert_contains(msg, "exactly one key");
    free(msg);
}

static void test_globs(void **state)
{
    (void)state;
#define M(p, t) cpex__glob_match(p, t, strlen(t))
    assert_true(M("hr-*", "hr-"));
    assert_true(M("hr-*", "hr-x"));
    assert_false(M("hr-*", "hr"));
    assert_false(M("hr-*", "finance-report"));
    assert_true(M("*", "anything"));
    assert_true(M("*", ""));
    assert_true(M("*-prod", "foo-prod"));
    assert_true(M("*-prod", "-prod"));
    assert_false(M("*-prod", "prod"));
    assert_false(M("*-prod", "foo-staging"));
    assert_true(M("hr-*-v1", "hr--v1"));
    assert_false(M("hr-*-v1", "hr-comp-v2"));
    assert_true(M("*hr*comp*", "xyz-hr-comp-foo"));
    assert_false(M("*hr*comp*", "hr-only"));
    assert_true(M("**", ""));
    assert_true(M("***", "abc"));
    assert_true(M("*****", "x/y"));
    assert_true(M("hr://employees/*", "hr://employees/a/b")); /* '*' crosses '/', as CPEX */
    assert_true(M("a?c", "abc"));
    assert_true(M("a?c", "a\xc3\xa9"
                         "c")); /* '?' is one character, not one byte */
    assert_false(M("a?c", "ac"));
    assert_false(M("A*", "abc")); /* case-sensitive */
#undef M
}

static void test_legacy_identity_key(void **state)
{
    (void)state;
    const char *cases[][2] = {
        {"routes:\n  - {tool: t, identity: []}\n", "in `routes[0]`"},
        {"global:\n  identity: []\n", "in `global`"},
        {"global:\n  policies:\n    all: {identity: []}\n", "in `global.policies.all`"},
        {"global:\n  defaults:\n    tool: {identity: []}\n", "in `global.defaults.tool`"},
        {"groups:\n  finance: {identity: []}\n", "in `groups.finance`"},
    };
    for (size_t i = 0; i < CPEX__COUNT(cases); i++) {
        char yaml[512];
        /* In every routing mode. */
        snprintf(yaml, sizeof yaml, "plugins:\n" PLUG("a") "%s", cases[i][0]);
        char *msg = parse_refused(yaml);
        assert_contains(msg, cases[i][1]);
        assert_contains(msg, "config field `identity` was renamed to `authentication`");
        free(msg);
    }
    /* `authentication`, `when` and APL keys are accepted with a warning. */
    cpex__config *cfg = parse_ok(ROUTING_ON PLUGINS_ABCDE
                                 "routes:\n  - {tool: t, when: 'x > 1', authentication: [a], "
                                 "apl: {}, plugins: [a]}\n");
    assert_int_equal(cfg->warning_count, 3);
    assert_int_equal(cfg->routing->routes[0].specificity, 1010);
    assert_string_equal(cfg->routing->routes[0].when, "x > 1");
    cpex__config_free(cfg);
    char *msg = parse_refused(ROUTING_ON PLUGINS_ABCDE "routes:\n  - {tool: t, plugns: [a]}\n");
    assert_contains(msg, "did you mean 'plugins'?");
    free(msg);
}

/* ------------------------------------------------------------------ */
/* Resolution                                                          */
/* ------------------------------------------------------------------ */

static void test_conditions_mode_runs_all_in_order(void **state)
{
    (void)state;
    cpex_manager *m = loaded("plugins:\n" PLUG("a") PLUG("b"));
    assert_string_equal(tool(m, "anything"), "a,b");
    assert_string_equal(rt_run(m, PRE, NULL, NULL, NULL), "a,b");
    cpex_manager_free(m);
}

static const char *const GROUPS_YAML = ROUTING_ON PLUGINS_ABCDE "global:\n"
                                                                "  policies:\n"
                                                                "    all: {plugins: [a]}\n"
                                                                "groups:\n"
                                                                "  pii: {plugins: [b]}\n"
                                                                "routes:\n"
                                                                "  - tool: hr-*\n"
                                                                "    meta: {tags: [pii]}\n"
                                                                "    plugins: [c]\n"
                                                                "  - tool: hr-compensation\n"
                                                                "    plugins: [d]\n"
                                                                "  - tool: [x, y]\n"
                                                                "    plugins: [e]\n";

static void test_route_selection(void **state)
{
    (void)state;
    cpex_manager *m = loaded(GROUPS_YAML);
    /* A glob route inherits its tag's group and the all group. */
    assert_string_equal(tool(m, "hr-leave"), "a,b,c");
    /* Exact beats glob (1000 > 300). */
    assert_string_equal(tool(m, "hr-compensation"), "a,d");
    /* A list. */
    assert_string_equal(tool(m, "y"), "a,e");
    /* No route: only `all`. */
    assert_string_equal(tool(m, "unrouted"), "a");
    /* Other entity types: no route of theirs. */
    assert_string_equal(rt_run_entity(m, PRE, "resource", "hr-leave", NULL, NULL, NULL), "a");
    cpex_manager_free(m);
}

static void test_dedup_keeps_last_and_priority_orders(void **state)
{
    (void)state;
    cpex_manager *m =
        loaded(ROUTING_ON PLUGINS_ABCDE "global:\n  policies:\n    all: {plugins: [a, b]}\n"
                                        "    pii: {plugins: [b, c]}\n"
                                        "routes:\n  - {tool: t, meta: {tags: [pii]}, plugins: []}\n"
                                        "  - {tool: u, plugins: [b, a]}\n");
    assert_string_equal(tool(m, "t"), "a,b,c"); /* CPEX's test_deduplication_preserves_order */
    assert_string_equal(tool(m, "u"), "b,a");   /* the last occurrence sets the position */
    cpex_manager_free(m);
    /* Decision 1: within a phase, priority first, then resolution order. */
    m = loaded(ROUTING_ON "plugins:\n"
                          "  - {name: a, kind: " RT_KIND ", hooks: [" PRE "], priority: 50}\n"
                          "  - {name: b, kind: " RT_KIND ", hooks: [" PRE "], priority: 10}\n"
                          "  - {name: c, kind: " RT_KIND ", hooks: [" PRE "], priority: 50}\n"
                          "  - {name: d, kind: " RT_KIND ", hooks: [" PRE
                          "], priority: 1, mode: audit}\n"
                          "routes:\n  - {tool: t, plugins: [d, c, a, b]}\n");
    assert_string_equal(tool(m, "t"), "b,c,a,d");
    cpex_manager_free(m);
}

static void test_scope(void **state)
{
    (void)state;
    cpex_manager *m = loaded(ROUTING_ON PLUGINS_ABCDE
                             "routes:\n"
                             "  - {tool: payroll, plugins: [a]}\n"
                             "  - {tool: payroll, meta: {scope: hr-services}, plugins: [b]}\n"
                             "  - {tool: pay*, meta: {scope: billing}, plugins: [c]}\n");
    assert_string_equal(rt_run_entity(m, PRE, "tool", "payroll", "hr-services", NULL, NULL), "b");
    assert_string_equal(rt_run_entity(m, PRE, "tool", "payroll", NULL, NULL, NULL), "a");
    /* A scoped glob (400) loses to an unscoped exact name (1000). */
    assert_string_equal(rt_run_entity(m, PRE, "tool", "payroll", "billing", NULL, NULL), "a");
    assert_string_equal(rt_run_entity(m, PRE, "tool", "payday", "billing", NULL, NULL), "c");
    assert_string_equal(rt_run_entity(m, PRE, "tool", "payday", "other", NULL, NULL), "");
    /* Routed to no plugin: allowed, and the result says no plugin ran
     * (twice: the miss, then the cached empty plan). */
    for (int i = 0; i < 2; i++) {
        cpex_extensions *e = rt_entity("tool", "payday", "other", NULL);
        cpex_cmf_message *msg = test_text_message("hi");
        cpex_payload p = cpex_payload_cmf(msg);
        cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
        cpex_manager_invoke(m, PRE, &p, e, NULL, &res);
        assert_true(res.continue_processing);
        assert_true(res.no_plugin_ran);
        cpex_pipeline_result_cleanup(&res);
        cpex_cmf_free(msg);
        cpex_extensions_unref(e);
    }
    cpex_manager_free(m);
}

static void test_tags_and_groups(void **state)
{
    (void)state;
    /* Groups defined out of alphabetical order: that order is the order they apply in. */
    cpex_manager *m = loaded(ROUTING_ON PLUGINS_ABCDE
                             "groups:\n"
                             "  zeta: {plugins: [c]}\n"
                             "  urgent: {plugins: [b]}\n"
                             "global:\n  policies:\n    alpha: {plugins: [d]}\n"
                             "routes:\n"
                             "  - {tool: t, meta: {tags: [alpha]}, groups: zeta, plugins: [a]}\n"
                             "  - {tool: g1, groups: [zeta]}\n"
                             "  - {tool: g2, groups: zeta}\n"
                             "  - {tool: g3, meta: {tags: [zeta]}}\n");
    /* Runtime tags join groups too (CPEX's test_host_tags_merged_with_route_tags). */
    const char *urgent[] = {"urgent", "not-a-group", NULL};
    assert_string_equal(rt_run_entity(m, PRE, "tool", "t", NULL, urgent, NULL), "c,b,d,a");
    assert_string_equal(rt_run_entity(m, PRE, "tool", "t", NULL, NULL, NULL), "c,d,a");
    /* groups: is sugar for meta.tags, in every spelling. */
    assert_string_equal(tool(m, "g1"), "c");
    assert_string_equal(tool(m, "g2"), "c");
    assert_string_equal(tool(m, "g3"), "c");
    /* Runtime tags apply only through a matching route. */
    assert_string_equal(rt_run_entity(m, PRE, "tool", "none", NULL, urgent, NULL), "");
    cpex_manager_free(m);
}

static void test_top_level_groups_win(void **state)
{
    (void)state;
    cpex_manager *m =
        loaded(ROUTING_ON PLUGINS_ABCDE "global:\n  policies:\n    finance: {plugins: [a]}\n"
                                        "    legacy: {plugins: [b]}\n"
                                        "groups:\n  finance: {plugins: [c]}\n"
                                        "routes:\n  - {tool: t, groups: [finance, legacy]}\n");
    assert_string_equal(tool(m, "t"), "b,c");
    cpex_manager_free(m);
}

static void test_defaults_and_entity_types(void **state)
{
    (void)state;
    cpex_manager *m =
        loaded(ROUTING_ON "plugins:\n"
                          "  - {name: a, kind: " RT_KIND ", hooks: [" PRE
                          ", cmf.resource_pre_fetch, cmf.prompt_pre_fetch, cmf.llm_input]}\n"
                          "  - {name: b, kind: " RT_KIND ", hooks: [cmf.resource_pre_fetch]}\n"
                          "  - {name: c, kind: " RT_KIND ", hooks: [cmf.prompt_pre_fetch]}\n"
                          "  - {name: d, kind: " RT_KIND ", hooks: [cmf.llm_input]}\n"
                          "global:\n  defaults:\n    http: {plugins: [a]}\n"
                          "routes:\n"
                          "  - {resource: 'hr://employees/*', plugins: [b]}\n"
                          "  - {prompt: summarize, plugins: [c]}\n"
                          "  - {llm: gpt-*, plugins: [d]}\n");
    assert_string_equal(rt_run_entity(m, "cmf.resource_pre_fetch", "resource", "hr://employees/1",
                                      NULL, NULL, NULL),
                        "b");
    assert_string_equal(
        rt_run_entity(m, "cmf.resource_pre_fetch", "resource", "fin://x", NULL, NULL, NULL), "");
    assert_string_equal(
        rt_run_entity(m, "cmf.prompt_pre_fetch", "prompt", "summarize", NULL, NULL, NULL), "c");
    assert_string_equal(rt_run_entity(m, "cmf.llm_input", "llm", "gpt-4o", NULL, NULL, NULL), "d");
    assert_string_equal(rt_run_entity(m, "cmf.llm_input", "llm", "claude", NULL, NULL, NULL), "");
    /* defaults apply by the entity type, also one no route can match (CPEX's `http`). */
    assert_string_equal(rt_run_entity(m, PRE, "http", "*", NULL, NULL, NULL), "a");
    cpex_manager_free(m);
}

static void test_full_flow_and_no_entity(void **state)
{
    (void)state;
    cpex_manager *m = loaded(ROUTING_ON "plugins:\n"
                                        "  - {name: guard, kind: " RT_KIND ", hooks: [" PRE
                                        "], config: {deny: true}}\n"
                                        "  - {name: ok, kind: " RT_KIND ", hooks: [" PRE "]}\n"
                                        "groups:\n  pii: {plugins: [guard]}\n"
                                        "routes:\n  - {tool: hr-lookup, meta: {tags: [pii]}}\n"
                                        "  - {tool: '*', plugins: [ok]}\n");
    bool allowed = true;
    rt_run_entity(m, PRE, "tool", "hr-lookup", NULL, NULL, &allowed);
    assert_false(allowed);
    assert_string_equal(rt_run_entity(m, PRE, "tool", "weather", NULL, NULL, &allowed), "ok");
    assert_true(allowed);
    /* Decision 5: no entity, every plugin of the hook (a guard only one route names included). */
    assert_string_equal(rt_run(m, PRE, NULL, &allowed, NULL), "guard");
    assert_false(allowed);
    cpex_extensions *half = rt_entity("tool", NULL, NULL, NULL);
    rt_run(m, PRE, half, &allowed, NULL);
    assert_false(allowed);
    cpex_extensions_unref(half);
    cpex_manager_free(m);
    /* Routing off: a meta does not filter. */
    m = loaded("plugins:\n  - {name: guard, kind: " RT_KIND ", hooks: [" PRE
               "], config: {deny: true}}\n"
               "routes:\n  - {tool: other, plugins: [guard]}\n");
    rt_run_entity(m, PRE, "tool", "weather", NULL, NULL, &allowed);
    assert_false(allowed);
    cpex_manager_free(m);
}

static void test_invoke_by_handle_is_routed(void **state)
{
    (void)state;
    cpex_manager *m = loaded(GROUPS_YAML);
    const cpex_hook_handle *h = cpex_manager_hook(m, PRE, NULL);
    cpex_extensions *e = rt_entity("tool", "hr-leave", NULL, NULL);
    cpex_cmf_message *msg = test_text_message("hi");
    cpex_payload p = cpex_payload_cmf(msg);
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    rt_trace_reset();
    cpex_manager_invoke_hook(m, h, &p, e, NULL, &res);
    assert_string_equal(rt_trace(), "a,b,c");
    cpex_pipeline_result_cleanup(&res);
    cpex_cmf_free(msg);
    cpex_extensions_unref(e);
    cpex_manager_free(m);
}

/* ------------------------------------------------------------------ */
/* The route cache                                                     */
/* ------------------------------------------------------------------ */

static void test_cache(void **state)
{
    (void)state;
    cpex_manager *m = loaded(GROUPS_YAML);
    assert_int_equal(cpex_manager_route_cache_size(m), 0);
    tool(m, "hr-leave");
    assert_int_equal(cpex_manager_route_cache_size(m), 1);
    tool(m, "hr-leave");
    assert_int_equal(cpex_manager_route_cache_size(m), 1);
    tool(m, "x");
    assert_int_equal(cpex_manager_route_cache_size(m), 2);
    rt_run_entity(m, PRE, "tool", "x", "s1", NULL, NULL);
    rt_run_entity(m, PRE, "tool", "x", "s2", NULL, NULL);
    assert_int_equal(cpex_manager_route_cache_size(m), 4);
    /* Decision 3: tags naming groups are part of the key; others are not. */
    const char *pii[] = {"pii", NULL}, *noise[] = {"noise", NULL};
    rt_run_entity(m, PRE, "tool", "x", NULL, pii, NULL);
    assert_int_equal(cpex_manager_route_cache_size(m), 5);
    rt_run_entity(m, PRE, "tool", "x", NULL, noise, NULL);
    assert_int_equal(cpex_manager_route_cache_size(m), 5);
    /* A registration publishes a new registry: an empty cache, never a stale plan. */
    uint64_t before = cpex_manager_generation(m);
    assert_int_equal(rt_load(m, "plugins:\n" PLUG("f"), NULL), CPEX_OK);
    assert_int_equal(cpex_manager_generation(m), before + 1);
    assert_int_equal(cpex_manager_route_cache_size(m), 0);
    tool(m, "hr-leave");
    assert_int_equal(cpex_manager_route_cache_size(m), 1);
    assert_int_equal(cpex_manager_unregister(m, "f", NULL), CPEX_OK);
    assert_int_equal(cpex_manager_route_cache_size(m), 0);
    cpex_manager_free(m);
}

/* The router reads the extensions' meta record (entity hash, type id,
 * name words), made by the setters: it must follow every write, through
 * copies and copy-on-write, and a copy must route as its original. */
static void test_cache_follows_meta_writes(void **state)
{
    (void)state;
    cpex_manager *m = loaded(GROUPS_YAML);
    cpex_extensions *e = rt_entity("tool", "hr-leave", NULL, NULL);
    for (int i = 0; i < 2; i++) /* the miss, then the hit */
        assert_string_equal(rt_run(m, PRE, e, NULL, NULL), "a,b,c");
    cpex_extensions *c = cpex_extensions_copy(e);
    assert_string_equal(rt_run(m, PRE, c, NULL, NULL), "a,b,c"); /* shares e's record */
    assert_int_equal(cpex_manager_route_cache_size(m), 1);
    /* The host rewrites the copy's entity: the copy routes anew, e as before. */
    static const struct {
        const char *type, *name, *scope, *plan;
    } steps[] = {
        {"tool", "x", NULL, "a,e"},
        {"tool", "hr-compensation", NULL, "a,d"},
        {"resource", "hr-compensation", NULL, "a"},
        {"tool", "hr-compensation", "s1", "a,d"},
        /* Names past the two words (16 bytes): the probe that compares strings. */
        {"tool", "hr-compensation-and-benefits", NULL, "a,b,c"},
        {"tool", "hr-compensation-and-benefits", "s1", "a,b,c"},
        {"http", "hr-leave", NULL, "a"},
        {"tool", NULL, NULL, "a,b,c,d,e"}, /* no entity: every plugin of the hook */
        {"tool", "y", NULL, "a,e"},
    };
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        assert_int_equal(cpex_extensions_set(c, CPEX_EXT_ENTITY_TYPE, steps[i].type), CPEX_OK);
        assert_int_equal(cpex_extensions_set(c, CPEX_EXT_ENTITY_NAME, steps[i].name), CPEX_OK);
        assert_int_equal(cpex_extensions_set(c, CPEX_EXT_SCOPE, steps[i].scope), CPEX_OK);
        for (int k = 0; k < 2; k++) {
            assert_string_equal(rt_run(m, PRE, c, NULL, NULL), steps[i].plan);
            assert_string_equal(rt_run(m, PRE, e, NULL, NULL), "a,b,c");
        }
    }
    /* A write elsewhere (a header) clones the body with its record: once
     * the original is gone, the clone still routes as it did, from the
     * same cache entry. */
    cpex_extensions_unref(c);
    c = cpex_extensions_copy(e);
    assert_int_equal(cpex_extensions_set_header(c, CPEX_HEADERS_REQUEST, "x-h", "1"), CPEX_OK);
    cpex_extensions_unref(e);
    size_t entries = cpex_manager_route_cache_size(m);
    assert_string_equal(rt_run(m, PRE, c, NULL, NULL), "a,b,c");
    assert_int_equal(cpex_manager_route_cache_size(m), entries);
    cpex_extensions_unref(c);
    cpex_manager_free(m);
}

static const char *const REWRITE_YAML =
    ROUTING_ON "plugins:\n"
               "  - {name: w, kind: " RT_KIND ", hooks: [" PRE "], "
               "capabilities: [write_headers], config: {header: x-w}}\n" PLUG("a")
                   PLUG("b") "routes:\n"
                             "  - {tool: hr-leave, plugins: [w, a]}\n"
                             "  - {tool: other, plugins: [b]}\n";

/* A plugin writes the extensions (a header: copy-on-write in the
 * pipeline); the host hands the result's extensions to the next invoke,
 * which routes by the entity they carry, on the entry already cached. */
static void test_cache_after_plugin_rewrite(void **state)
{
    (void)state;
    cpex_manager *m = loaded(REWRITE_YAML);
    cpex_extensions *e = rt_entity("tool", "hr-leave", NULL, NULL);
    cpex_cmf_message *msg = test_text_message("hi");
    cpex_payload p = cpex_payload_cmf(msg);
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    rt_trace_reset();
    assert_int_equal(cpex_manager_invoke(m, PRE, &p, e, NULL, &res), CPEX_OK);
    assert_string_equal(rt_trace(), "w,a");
    assert_true(res.extensions_modified);
    assert_non_null(res.extensions);
    cpex_extensions *r = cpex_extensions_ref(res.extensions);
    cpex_pipeline_result_cleanup(&res);
    cpex_cmf_free(msg);
    cpex_extensions_unref(e);
    assert_string_equal(cpex_extensions_header(r, CPEX_HEADERS_REQUEST, "x-w"), "w");
    assert_string_equal(cpex_extensions_get(r, CPEX_EXT_ENTITY_NAME), "hr-leave");
    assert_int_equal(cpex_manager_route_cache_size(m), 1);
    for (int i = 0; i < 2; i++)
        assert_string_equal(rt_run(m, PRE, r, NULL, NULL), "w,a");
    assert_int_equal(cpex_manager_route_cache_size(m), 1);
    /* And the host may rewrite the entity of a copy of it. */
    cpex_extensions *c = cpex_extensions_copy(r);
    cpex_extensions_set(c, CPEX_EXT_ENTITY_NAME, "other");
    assert_string_equal(rt_run(m, PRE, c, NULL, NULL), "b");
    assert_string_equal(rt_run(m, PRE, r, NULL, NULL), "w,a");
    cpex_extensions_unref(c);
    cpex_extensions_unref(r);
    cpex_manager_free(m);
}

/* Two extensions objects with the same entity share one cached plan; the
 * same entity on two hooks has two. */
static void test_cache_shared_by_equal_entities(void **state)
{
    (void)state;
    cpex_manager *m = loaded(
        ROUTING_ON "plugins:\n"
                   "  - {name: a, kind: " RT_KIND ", hooks: [" PRE ", cmf.tool_post_invoke]}\n"
                   "  - {name: b, kind: " RT_KIND ", hooks: [cmf.tool_post_invoke]}\n"
                   "routes:\n  - {tool: get_weather, plugins: [a, b]}\n");
    for (int i = 0; i < 3; i++) {
        cpex_extensions *e = rt_entity("tool", "get_weather", NULL, NULL);
        assert_string_equal(rt_run(m, PRE, e, NULL, NULL), "a");
        assert_int_equal(cpex_manager_route_cache_size(m), 1);
        cpex_extensions_unref(e);
    }
    cpex_extensions *e = rt_entity("tool", "get_weather", NULL, NULL);
    assert_string_equal(rt_run(m, "cmf.tool_post_invoke", e, NULL, NULL), "a,b");
    assert_int_equal(cpex_manager_route_cache_size(m), 2);
    assert_string_equal(rt_run(m, PRE, e, NULL, NULL), "a");
    assert_string_equal(rt_run(m, "cmf.tool_post_invoke", e, NULL, NULL), "a,b");
    assert_int_equal(cpex_manager_route_cache_size(m), 2);
    cpex_extensions_unref(e);
    cpex_manager_free(m);
}

/* Give `e` the entity hash of `like` (the sole owner's own body: writable),
 * as if their names collided. */
static void forge_hash(cpex_extensions *e, const cpex_extensions *like)
{
    ((cpex__ext_meta *)cpex__extensions_meta_of(e))->hash = cpex__extensions_meta_of(like)->hash;
}

/* Keys whose hashes collide are told apart by their strings: names of the
 * same length and the same first and last eight bytes, short names, other
 * scopes, other entity types without a number. */
static void test_cache_hash_collisions(void **state)
{
    (void)state;
    cpex_manager *m =
        loaded(ROUTING_ON PLUGINS_ABCDE "global:\n  defaults:\n    http: {plugins: [c]}\n"
                                        "    grpc: {plugins: [d]}\n"
                                        "routes:\n"
                                        "  - {tool: aaaaaaaa-X-bbbbbbbb, plugins: [a]}\n"
                                        "  - {tool: aaaaaaaa-Y-bbbbbbbb, plugins: [b]}\n"
                                        "  - {tool: abc, plugins: [a]}\n"
                                        "  - {tool: abd, plugins: [b]}\n"
                                        "  - {tool: abcdefgh-1, plugins: [a]}\n"
                                        "  - {tool: abcdefgh-2, plugins: [b]}\n"
                                        "  - {tool: t, meta: {scope: s1}, plugins: [a]}\n"
                                        "  - {tool: t, meta: {scope: s2}, plugins: [b]}\n");
    static const struct {
        const char *type[2], *name[2], *scope[2], *plan[2];
    } pairs[] = {
        {{"tool", "tool"},
         {"aaaaaaaa-X-bbbbbbbb", "aaaaaaaa-Y-bbbbbbbb"},
         {NULL, NULL},
         {"a", "b"}},
        {{"tool", "tool"}, {"abc", "abd"}, {NULL, NULL}, {"a", "b"}},
        {{"tool", "tool"}, {"abcdefgh-1", "abcdefgh-2"}, {NULL, NULL}, {"a", "b"}},
        {{"tool", "tool"}, {"t", "t"}, {"s1", "s2"}, {"a", "b"}},
        {{"http", "grpc"}, {"n", "n"}, {NULL, NULL}, {"c", "d"}},
    };
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        cpex_extensions *x = rt_entity(pairs[i].type[0], pairs[i].name[0], pairs[i].scope[0], NULL);
        cpex_extensions *y = rt_entity(pairs[i].type[1], pairs[i].name[1], pairs[i].scope[1], NULL);
        forge_hash(y, x);
        for (int k = 0; k < 2; k++) { /* x cached first, then y beside it; then both hits */
            assert_string_equal(rt_run(m, PRE, x, NULL, NULL), pairs[i].plan[0]);
            assert_string_equal(rt_run(m, PRE, y, NULL, NULL), pairs[i].plan[1]);
        }
        cpex_extensions_unref(x);
        cpex_extensions_unref(y);
    }
    assert_int_equal(cpex_manager_route_cache_size(m), 10);
    cpex_manager_free(m);
}

static void test_cache_capacity(void **state)
{
    (void)state;
    cpex_manager *m =
        loaded("plugin_settings: {routing_enabled: true, route_cache_max_entries: 2}\n"
               "plugins:\n  - {name: guard, kind: " RT_KIND ", hooks: [" PRE "], "
               "config: {deny: true}}\n"
               "routes:\n  - {tool: '*', plugins: [guard]}\n");
    bool allowed = true;
    tool(m, "one");
    tool(m, "two");
    rt_run_entity(m, PRE, "tool", "three", NULL, NULL, &allowed);
    assert_false(allowed); /* still routed */
    assert_int_equal(cpex_manager_route_cache_size(m), 2);
    cpex_manager_free(m);
    /* 0: no cache at all, every invoke resolves. */
    m = loaded("plugin_settings: {routing_enabled: true, route_cache_max_entries: 0}\n"
               "plugins:\n" PLUG("a") "routes:\n  - {tool: '*', plugins: [a]}\n");
    assert_string_equal(tool(m, "one"), "a");
    assert_string_equal(tool(m, "one"), "a");
    assert_int_equal(cpex_manager_route_cache_size(m), 0);
    cpex_manager_free(m);
    char *msg = parse_refused("plugin_settings: {route_cache_max_entries: -1}\nplugins: []\n");
    assert_contains(msg, "route_cache_max_entries' must be a whole number from 0");
    free(msg);
}

/* ------------------------------------------------------------------ */
/* Overrides                                                           */
/* ------------------------------------------------------------------ */

static void test_override_instances(void **state)
{
    (void)state;
    rt_stats_reset();
    cpex_manager *m = loaded(ROUTING_ON "plugins:\n"
                                        "  - {name: limit, kind: " RT_KIND ", hooks: [" PRE "], "
                                        "on_error: disable, config: {label: lim, value: 100}}\n"
                                        "routes:\n"
                                        "  - tool: strict\n"
                                        "    plugins: [{limit: {config: {value: 10}}}]\n"
                                        "  - tool: loose\n"
                                        "    plugins: [limit]\n");
    rt_stat *s = rt_stat_of("lim");
    /* Built once at load, initialized with the manager, never per invoke. */
    assert_int_equal(atomic_load(&s->creates), 2);
    assert_int_equal(atomic_load(&s->inits), 2);
    for (int i = 0; i < 3; i++) {
        assert_string_equal(tool(m, "strict"), "lim=10");
        assert_string_equal(tool(m, "loose"), "lim=100");
    }
    assert_int_equal(atomic_load(&s->creates), 2);
    /* Its own state. */
    cpex_extensions *strict = rt_entity("tool", "strict", NULL, NULL);
    cpex_extensions *loose = rt_entity("tool", "loose", NULL, NULL);
    assert_int_equal(rt_count(m, PRE, strict, "lim"), 4);
    assert_int_equal(rt_count(m, PRE, loose, "lim"), 4);
    cpex_extensions_unref(strict);
    cpex_extensions_unref(loose);
    cpex_manager_free(m);
    assert_int_equal(atomic_load(&s->shutdowns), 2);
    assert_int_equal(atomic_load(&s->destroys), 2);
}

static void test_override_disable_is_its_own(void **state)
{
    (void)state;
    cpex_manager *m = loaded(
        ROUTING_ON "plugins:\n"
                   "  - {name: flaky, kind: " RT_KIND ", hooks: [" PRE "], "
                   "on_error: disable, config: {fail: false}}\n"
                   "routes:\n"
                   "  - {tool: broken, plugins: [{flaky: {config: {fail: true, value: 1}}}]}\n"
                   "  - {tool: fine, plugins: [flaky]}\n");
    assert_string_equal(tool(m, "broken"), "flaky=1"); /* fails, gets disabled */
    assert_string_equal(tool(m, "broken"), "");        /* the override stays off */
    assert_string_equal(tool(m, "fine"), "flaky");     /* the base is not disabled */
    cpex_plugin_info info = CPEX_PLUGIN_INFO_INIT;
    assert_int_equal(cpex_manager_plugin_info(m, "flaky", &info), CPEX_OK);
    assert_false(info.disabled);
    cpex_plugin_info_cleanup(&info);
    cpex_manager_free(m);
}

static void test_override_failures_fail_the_load(void **state)
{
    (void)state;
    /* A config that cannot take the override's keys. */
    char *msg =
        refused(ROUTING_ON "plugins:\n"
                           "  - {name: a, kind: " RT_KIND ", hooks: [" PRE "], config: [1, 2]}\n"
                           "routes:\n  - {tool: t, plugins: [{a: {config: {x: 1}}}]}\n");
    assert_contains(msg, "routes.yaml:5:26: plugin 'a': cannot apply this override");
    free(msg);
    /* A plugin registered by another load has no entry here to rebuild from. */
    cpex_manager *m = rt_manager();
    assert_int_equal(rt_load(m, "plugins:\n" PLUG("a"), NULL), CPEX_OK);
    assert_int_equal(cpex_manager_initialize(m, NULL), CPEX_OK);
    char *err = NULL;
    assert_int_not_equal(rt_load(m,
                                 ROUTING_ON
                                 "plugins: []\n"
                                 "routes:\n  - {tool: t, plugins: [{a: {config: {x: 1}}}]}\n",
                                 &err),
                         CPEX_OK);
    assert_contains(err,
                    "an override of plugin 'a' needs the plugin's entry in this configuration");
    free(err);
    /* ...while a bare reference to it is fine: routes see every registered plugin. */
    assert_int_equal(
        rt_load(m, ROUTING_ON "plugins: []\nroutes:\n  - {tool: t, plugins: [a]}\n", NULL),
        CPEX_OK);
    assert_string_equal(tool(m, "t"), "a");
    assert_string_equal(tool(m, "u"), "");
    cpex_manager_free(m);
}

/* ------------------------------------------------------------------ */
/* Conditions (routing off)                                            */
/* ------------------------------------------------------------------ */

static void test_conditions(void **state)
{
    (void)state;
    cpex_manager *m = loaded("plugins:\n"
                             "  - {name: a, kind: " RT_KIND ", hooks: [" PRE "], "
                             "conditions: [{tools: [t1]}, {user_patterns: ['admin-*']}]}\n"
                             "  - {name: b, kind: " RT_KIND ", hooks: [" PRE "]}\n"
                             "  - {name: c, kind: " RT_KIND ", hooks: [" PRE "], "
                             "conditions: [{tenant_ids: [acme], tools: [t2]}]}\n");
    assert_string_equal(tool(m, "t1"), "a,b");
    assert_string_equal(tool(m, "t2"), "b");
    cpex_extensions *e = rt_entity("tool", "t2", NULL, NULL);
    cpex_extensions_set(e, CPEX_EXT_SUBJECT_ID, "admin-alice");
    cpex_extensions_set_custom(e, "tenant_id", json_string("acme"));
    assert_string_equal(rt_run(m, PRE, e, NULL, NULL), "a,b,c");
    cpex_extensions_set(e, CPEX_EXT_SUBJECT_ID, "user-bob");
    assert_string_equal(rt_run(m, PRE, e, NULL, NULL), "b,c");
    cpex_extensions_unref(e);
    assert_string_equal(rt_run(m, PRE, NULL, NULL, NULL), "b");
    cpex_manager_free(m);
}

/* ------------------------------------------------------------------ */
/* Hook names, explain                                                 */
/* ------------------------------------------------------------------ */

static void test_prompt_hook_spellings(void **state)
{
    (void)state;
    cpex_manager *m = loaded("plugins:\n"
                             "  - {name: a, kind: " RT_KIND ", hooks: [cmf.prompt_pre_invoke]}\n");
    assert_string_equal(rt_run(m, "cmf.prompt_pre_fetch", NULL, NULL, NULL), "a");
    assert_string_equal(rt_run(m, "cmf.prompt_pre_invoke", NULL, NULL, NULL), "a");
    assert_true(cpex_manager_has_hooks_for(m, "cmf.prompt_pre_invoke"));
    assert_string_equal(cpex_hook_handle_name(cpex_manager_hook(m, "cmf.prompt_pre_invoke", NULL)),
                        "cmf.prompt_pre_fetch");
    cpex_plugin_info info = CPEX_PLUGIN_INFO_INIT;
    assert_int_equal(cpex_manager_plugin_info(m, "a", &info), CPEX_OK);
    assert_string_equal(info.hooks[0], "cmf.prompt_pre_fetch"); /* one canonical name */
    cpex_plugin_info_cleanup(&info);
    cpex_manager_free(m);
}

/* A routed plan carries its own execution records and metric ids: each
 * record and counter names the plugin that ran, overrides included. */
static void test_records_and_metrics_of_plans(void **state)
{
    (void)state;
    cpex_manager_options o;
    cpex_manager_options_init(&o);
    o.log = rt_quiet;
    o.execution_records = true;
    o.metrics = true;
    cpex_manager *m = NULL;
    assert_int_equal(cpex_manager_new(&o, &m, NULL), CPEX_OK);
    cpex_factory f;
    memset(&f, 0, sizeof f);
    f.struct_size = (uint32_t)sizeof f;
    f.create = rt_create;
    assert_int_equal(cpex_manager_register_factory(m, RT_KIND, &f, NULL), CPEX_OK);
    assert_int_equal(rt_load(m,
                             ROUTING_ON PLUGINS_ABCDE
                             "routes:\n  - {tool: t, plugins: [e, {b: {config: {value: 3}}}]}\n",
                             NULL),
                     CPEX_OK);
    assert_int_equal(cpex_manager_initialize(m, NULL), CPEX_OK);
    for (int round = 0; round < 2; round++) { /* a miss, then a cache hit */
        cpex_extensions *e = rt_entity("tool", "t", NULL, NULL);
        cpex_cmf_message *msg = test_text_message("hi");
        cpex_payload p = cpex_payload_cmf(msg);
        cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
        rt_trace_reset();
        cpex_manager_invoke(m, PRE, &p, e, NULL, &res);
        assert_string_equal(rt_trace(), "e,b=3");
        assert_int_equal(res.execution_count, 2);
        const cpex_execution_record *r0 = cpex_pipeline_result_execution(&res, 0);
        const cpex_execution_record *r1 = cpex_pipeline_result_execution(&res, 1);
        assert_true(r0->plugin_name.len == 1 && r0->plugin_name.ptr[0] == 'e');
        assert_true(r1->plugin_name.len == 1 && r1->plugin_name.ptr[0] == 'b');
        cpex_pipeline_result_cleanup(&res);
        cpex_cmf_free(msg);
        cpex_extensions_unref(e);
    }
    char *text = cpex_manager_metrics_text(m);
    assert_non_null(text);
    assert_contains(text, "cpex_plugin_invocations_total{plugin=\"e\",hook=\"" PRE "\"} 2");
    assert_contains(text, "cpex_plugin_invocations_total{plugin=\"b\",hook=\"" PRE "\"} 2");
    assert_contains(text, "cpex_plugin_invocations_total{plugin=\"a\",hook=\"" PRE "\"} 0");
    free(text);
    cpex_manager_free(m);
}

static void test_explain(void **state)
{
    (void)state;
    cpex_manager *m = loaded(GROUPS_YAML);
    const char *tags[] = {"pii", NULL};
    cpex_extensions *e = rt_entity("tool", "hr-leave", NULL, tags);
    json_t *doc = cpex_manager_explain_route(m, PRE, e, NULL);
    assert_non_null(doc);
    char *text = json_dumps(doc, JSON_COMPACT);
    assert_contains(text, "\"routing_enabled\":true");
    assert_contains(text, "\"matcher\":\"tool: hr-*\"");
    assert_contains(text, "\"groups\":[\"global.policies.all\",\"groups.pii\"]");
    assert_contains(text, "{\"name\":\"a\",\"phase\":\"sequential\",\"priority\":100,"
                          "\"from\":\"global.policies.all\"");
    assert_contains(text, "\"from\":\"route 0\"");
    free(text);
    json_decref(doc);
    cpex_extensions_unref(e);
    /* No entity: everything, said so. */
    doc = cpex_manager_explain_route(m, NULL, NULL, NULL);
    text = json_dumps(doc, JSON_COMPACT);
    assert_contains(text, "no entity: every plugin of the hook");
    free(text);
    json_decref(doc);
    cpex_manager_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_minimal_config_routing_off),
        cmocka_unit_test(test_route_matcher_rules),
        cmocka_unit_test(test_unknown_references_rejected),
        cmocka_unit_test(test_plugin_refs),
        cmocka_unit_test(test_globs),
        cmocka_unit_test(test_legacy_identity_key),
        cmocka_unit_test(test_conditions_mode_runs_all_in_order),
        cmocka_unit_test(test_route_selection),
        cmocka_unit_test(test_dedup_keeps_last_and_priority_orders),
        cmocka_unit_test(test_scope),
        cmocka_unit_test(test_tags_and_groups),
        cmocka_unit_test(test_top_level_groups_win),
        cmocka_unit_test(test_defaults_and_entity_types),
        cmocka_unit_test(test_full_flow_and_no_entity),
        cmocka_unit_test(test_invoke_by_handle_is_routed),
        cmocka_unit_test(test_cache),
        cmocka_unit_test(test_cache_capacity),
        cmocka_unit_test(test_cache_follows_meta_writes),
        cmocka_unit_test(test_cache_after_plugin_rewrite),
        cmocka_unit_test(test_cache_shared_by_equal_entities),
        cmocka_unit_test(test_cache_hash_collisions),
        cmocka_unit_test(test_override_instances),
        cmocka_unit_test(test_override_disable_is_its_own),
        cmocka_unit_test(test_override_failures_fail_the_load),
        cmocka_unit_test(test_conditions),
        cmocka_unit_test(test_prompt_hook_spellings),
        cmocka_unit_test(test_records_and_metrics_of_plans),
        cmocka_unit_test(test_explain),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
