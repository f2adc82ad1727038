/*
 * check_routing.c — `cpex check CONFIG --tool NAME ...`: which plugins an
 * invoke for that entity would run on each hook, and why (which route,
 * which groups), from cpex_manager_explain_route. Operators debug routing
 * with it.
 */
#include <stdlib.h>
#include <string.h>

#include "check_routing.h"

bool cli_route_opt(int argc, char **argv, int *i, cli_route_query *q, int *rc)
{
    static const char *const entity_opts[][2] = {
        {"--tool", "tool"}, {"--resource", "resource"}, {"--prompt", "prompt"}, {"--llm", "llm"}};
    const char *v = NULL;
    *rc = 0;
    for (size_t k = 0; k < sizeof entity_opts / sizeof entity_opts[0]; k++) {
        if (!cli_opt_value(argc, argv, i, entity_opts[k][0], &v))
            continue;
        if (!v || !*v)
            *rc = cli_usage_error("check", "%s needs a name, e.g. %s get_weather",
                                  entity_opts[k][0], entity_opts[k][0]);
        else if (q->type)
            *rc = cli_usage_error("check", "give one entity: --%s and %s both given", q->type,
                                  entity_opts[k][0]);
        else {
            q->type = entity_opts[k][1];
            q->name = v;
        }
        return true;
    }
    if (cli_opt_value(argc, argv, i, "--scope", &v)) {
        if (!v || !*v)
            *rc = cli_usage_error("check", "--scope needs a scope, e.g. --scope tenant-a");
        q->scope = v;
        return true;
    }
    if (cli_opt_value(argc, argv, i, "--tag", &v)) {
        if (!v || !*v)
            *rc = cli_usage_error("check", "--tag needs a tag, e.g. --tag pii");
        else if (q->tag_count == CLI_MAX_ROUTE_TAGS)
            *rc = cli_usage_error("check", "at most %d --tag options", CLI_MAX_ROUTE_TAGS);
        else
            q->tags[q->tag_count++] = v;
        return true;
    }
    if (cli_opt_value(argc, argv, i, "--hook", &v)) {
        if (!v || !*v)
            *rc = cli_usage_error("check",
                                  "--hook needs a hook name, e.g. --hook cmf.tool_pre_invoke");
        q->hook = v;
        return true;
    }
    return false;
}

int cli_route_query_check(const cli_route_query *q)
{
    if (!q->type && (q->scope || q->tag_count || q->hook))
        return cli_usage_error("check", "--scope, --tag and --hook describe an entity: add "
                                        "--tool, --resource, --prompt or --llm");
    return 0;
}

static const char *str(const json_t *v, const char *absent)
{
    return json_is_string(v) ? json_string_value(v) : absent;
}

static void print_hook(const json_t *h)
{
    const json_t *route = json_object_get(h, "route");
    cli_text(stdout, "  %s: ", str(json_object_get(h, "hook"), "?"));
    if (json_is_object(route)) {
        cli_text(stdout, "route %lld (%s, line %lld, specificity %lld",
                 (long long)json_integer_value(json_object_get(route, "index")),
                 str(json_object_get(route, "matcher"), "?"),
                 (long long)json_integer_value(json_object_get(route, "line")),
                 (long long)json_integer_value(json_object_get(route, "specificity")));
        if (json_is_string(json_object_get(route, "scope")))
            cli_text(stdout, ", scope %s", str(json_object_get(route, "scope"), ""));
        fputs(")", stdout);
    } else if (json_object_get(h, "route")) {
        fputs("no route", stdout);
    } else {
        fputs("every plugin of the hook", stdout);
    }
    const json_t *groups = json_object_get(h, "groups");
    if (json_array_size(groups)) {
        fputs("; groups: ", stdout);
        for (size_t i = 0; i < json_array_size(groups); i++)
            cli_text(stdout, "%s%s", i ? ", " : "", str(json_array_get(groups, i), "?"));
    }
    fputc('\n', stdout);
    if (json_is_string(json_object_get(h, "note")))
        cli_line(stdout, "    (%s)", str(json_object_get(h, "note"), ""));
    const json_t *plugins = json_object_get(h, "plugins");
    if (!json_array_size(plugins))
        fputs("    no plugin runs: the invoke is allowed untouched\n", stdout);
    for (size_t i = 0; i < json_array_size(plugins); i++) {
        const json_t *p = json_array_get(plugins, i);
        cli_line(stdout, "    %zu. %-20s %-16s priority %-6lld from %s%s%s", i + 1,
                 str(json_object_get(p, "name"), "?"), str(json_object_get(p, "phase"), "?"),
                 (long long)json_integer_value(json_object_get(p, "priority")),
                 str(json_object_get(p, "from"), "?"),
                 json_is_true(json_object_get(p, "override"))
                     ? " (its own instance: a config override)"
                     : "",
                 json_is_true(json_object_get(p, "disabled")) ? " [disabled at run time]" : "");
    }
    const json_t *skipped = json_object_get(h, "skipped");
    for (size_t i = 0; i < json_array_size(skipped); i++)
        cli_line(stdout, "    -  %-20s skipped: %s",
                 str(json_object_get(json_array_get(skipped, i), "name"), "?"),
                 str(json_object_get(json_array_get(skipped, i), "from"), "?"));
}

json_t *cli_route_explain(cpex_manager *m, const cli_route_query *q, bool json)
{
    cpex_extensions *ext = cpex_extensions_new();
    if (!ext)
        return NULL;
    cpex_extensions_set(ext, CPEX_EXT_ENTITY_TYPE, q->type);
    cpex_extensions_set(ext, CPEX_EXT_ENTITY_NAME, q->name);
    if (q->scope)
        cpex_extensions_set(ext, CPEX_EXT_SCOPE, q->scope);
    for (size_t i = 0; i < q->tag_count; i++)
        cpex_extensions_add(ext, CPEX_EXT_TAGS, q->tags[i]);
    cpex_error err = CPEX_ERROR_INIT;
    json_t *doc = cpex_manager_explain_route(m, q->hook, ext, &err);
    cpex_extensions_unref(ext);
    if (!doc) {
        cli_line(stderr, "cpex check: cannot explain the routing: %s", cpex_error_message(&err));
        cpex_error_cleanup(&err);
        return NULL;
    }
    cpex_error_cleanup(&err);
    if (json)
        return doc;
    printf("\nrouting for %s ", q->type);
    cli_text(stdout, "'%s'", q->name);
    if (q->scope)
        cli_text(stdout, ", scope '%s'", q->scope);
    for (size_t i = 0; i < q->tag_count; i++)
        cli_text(stdout, "%s'%s'", i ? ", " : ", tags ", q->tags[i]);
    printf(" (generation %lld, routing %s):\n",
           (long long)json_integer_value(json_object_get(doc, "generation")),
           json_is_true(json_object_get(doc, "routing_enabled")) ? "enabled"
                                                                 : "off: conditions decide");
    const json_t *hooks = json_object_get(doc, "hooks");
    if (!json_array_size(hooks))
        fputs("  no plugin serves any hook\n", stdout);
    for (size_t i = 0; i < json_array_size(hooks); i++)
        print_hook(json_array_get(hooks, i));
    json_decref(doc);
    return NULL;
}
