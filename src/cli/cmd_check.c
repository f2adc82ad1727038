/*
 * cmd_check.c — `cpex check CONFIG [--json] [--tool NAME | --resource URI |
 * --prompt NAME | --llm NAME [--scope S] [--tag T]... [--hook H]]`.
 *
 * Loads the configuration and initializes every plugin, runs no hook, and
 * reports: one line per plugin, then every problem (each naming its
 * plugin), then the warnings. Exit 1 if anything failed.
 *
 * A configuration loads all or nothing (manager.h): when one plugin cannot
 * be created, none is kept, so there is nothing to query. The plugins that
 * were created before the load was abandoned are then shown from what the
 * manager logged about them, and the failed ones from the problems.
 */
#include <stdlib.h>
#include <string.h>

#include "check_routing.h"
#include "cli.h"
#include "guard.h"

typedef struct check_opts {
    const char *config;
    bool json;
    cli_route_query route; /* an entity: the routing report (check_routing.c) */
} check_opts;

static int parse_args(int argc, char **argv, check_opts *o)
{
    memset(o, 0, sizeof *o);
    int rc = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            cli_output_is("the help text");
            cli_help_check(stdout);
            return -1;
        } else if (strcmp(a, "--json") == 0) {
            o->json = true;
        } else if (cli_route_opt(argc, argv, &i, &o->route, &rc)) {
            if (rc)
                return rc;
        } else if (a[0] == '-' && a[1] != '\0') {
            return cli_usage_error("check", "unknown option '%s'", a);
        } else if (!o->config) {
            o->config = a;
        } else {
            return cli_usage_error("check", "unexpected argument '%s' (the configuration is '%s')",
                                   a, o->config);
        }
    }
    if (!o->config)
        return cli_usage_error("check", "missing CONFIG: the YAML file to check");
    return cli_route_query_check(&o->route);
}

static const char *state_word(const cpex_plugin_info *info)
{
    if (info->state == CPEX_STATE_FAILED)
        return "FAILED";
    if (info->disabled)
        return "disabled";
    if (info->mode == CPEX_MODE_DISABLED)
        return "off";
    return "ok";
}

static json_t *strv_json(char **v)
{
    json_t *a = json_array();
    for (size_t i = 0; v && v[i]; i++)
        json_array_append_new(a, cli_json_str(v[i]));
    return a;
}

static json_t *opt_str(const char *s) { return s ? cli_json_str(s) : json_null(); }

static json_t *info_json(const cpex_plugin_info *info)
{
    json_t *o = json_object();
    json_object_set_new(o, "name", cli_json_str(info->name));
    json_object_set_new(o, "status", json_string(state_word(info)));
    json_object_set_new(o, "kind", opt_str(info->kind));
    json_object_set_new(o, "library", opt_str(info->origin));
    json_object_set_new(o, "reported_name", opt_str(info->reported_name));
    json_object_set_new(o, "reported_version", opt_str(info->reported_version));
    json_object_set_new(o, "hooks", strv_json(info->hooks));
    json_object_set_new(o, "mode", json_string(cpex_mode_name(info->mode)));
    json_object_set_new(o, "priority", json_integer(info->priority));
    json_object_set_new(o, "on_error", json_string(cpex_on_error_name(info->on_error)));
    json_object_set_new(o, "timeout", json_real(info->timeout));
    json_object_set_new(o, "capabilities", strv_json(info->capabilities));
    if (info->audit_sink)
        json_object_set_new(o, "audit_sink",
                            info->sink_hooks ? strv_json(info->sink_hooks) : json_string("all"));
    if (info->reason)
        json_object_set_new(o, "reason", cli_json_str(info->reason));
    json_object_set_new(o, "isolation", opt_str(info->isolation));
    return o;
}

static void print_info(const cpex_plugin_info *info)
{
    char *hooks = cli_join(info->hooks, ", ");
    cli_line(stdout,
             "%-8s %s: kind \"%s\", library %s, reports %s %s, hooks [%s], mode %s, priority %d",
             state_word(info), info->name, info->kind ? info->kind : "(none)",
             info->origin ? info->origin : "(none: not from a library)",
             info->reported_name ? info->reported_name : "(unnamed)",
             info->reported_version ? info->reported_version : "(no version)", hooks ? hooks : "",
             cpex_mode_name(info->mode), (int)info->priority);
    if (info->audit_sink) {
        char *sinks = info->sink_hooks ? cli_join(info->sink_hooks, ", ") : NULL;
        cli_line(stdout, "         %s: audit sink for %s%s%s", info->name,
                 sinks ? "the verdicts of [" : "the verdicts of every hook", sinks ? sinks : "",
                 sinks ? "]" : "");
        free(sinks);
    }
    if (info->reason)
        cli_line(stdout, "         %s: %s", info->name, info->reason);
    if (info->isolation)
        cli_line(stdout, "         isolation: %s", info->isolation);
    free(hooks);
}

/* Whether a plugin name appears among the problems of `err`. */
static bool has_problem(const cpex_error *err, const char *plugin)
{
    for (size_t i = 0; i < err->count; i++) {
        if (err->items[i].plugin && strcmp(err->items[i].plugin, plugin) == 0)
            return true;
    }
    return false;
}

/* Whether an info or debug line for the same plugin follows line i: the
   loader and the manager both speak while a plugin is created, and the last
   line (the manager's "created ...") says most. */
static bool later_info(const cli_log *log, size_t i)
{
    for (size_t j = i + 1; j < log->count; j++) {
        if (log->lines[j].level < CPEX_LOG_WARN && log->lines[j].plugin &&
            strcmp(log->lines[j].plugin, log->lines[i].plugin) == 0)
            return true;
    }
    return false;
}

int cli_cmd_check(int argc, char **argv)
{
    check_opts o;
    int rc = parse_args(argc, argv, &o);
    if (rc != 0)
        return rc < 0 ? CLI_OK : rc;

    /* A plugin that ends the process makes the check fail. */
    cli_guard_arm("cpex check");
    cli_guard_doing("loading the configuration");
    cli_guard_lost("the report is missing");
    cli_log log;
    cli_log_init(&log, true, CPEX_LOG_WARN);
    cpex_manager *m = cli_manager_new(&log);
    if (!m) {
        cli_guard_disarm();
        cli_log_cleanup(&log);
        return CLI_FAIL;
    }
    cpex_error load_err = CPEX_ERROR_INIT, init_err = CPEX_ERROR_INIT;
    bool loaded = cpex_manager_load_file(m, o.config, &load_err) == CPEX_OK;
    if (loaded) {
        cli_guard_plugins(m);
        cli_guard_doing("initializing the plugins");
        cpex_manager_initialize(m, &init_err);
    }
    cli_guard_doing("writing the report");
    char **names = loaded ? cpex_manager_plugin_names(m) : NULL;

    size_t ok = 0, failed = 0, total = 0;
    json_t *plugins = json_array(), *problems = json_array(), *warnings = json_array();

    /* One line per plugin. */
    if (!o.json)
        cli_line(stdout, "%s", o.config);
    for (size_t i = 0; names && names[i]; i++) {
        cpex_plugin_info info = CPEX_PLUGIN_INFO_INIT;
        if (cpex_manager_plugin_info(m, names[i], &info) != CPEX_OK)
            continue;
        total++;
        if (info.state == CPEX_STATE_FAILED)
            failed++;
        else
            ok++;
        if (o.json)
            json_array_append_new(plugins, info_json(&info));
        else
            print_info(&info);
        cpex_plugin_info_cleanup(&info);
    }
    if (!loaded) {
        /* Nothing was kept: show what the manager said it created, then the
           plugins the problems name. */
        for (size_t i = 0; i < log.count; i++) {
            const cli_log_line *l = &log.lines[i];
            if (l->level >= CPEX_LOG_WARN || !l->plugin || has_problem(&load_err, l->plugin) ||
                later_info(&log, i))
                continue;
            total++;
            ok++;
            if (o.json) {
                json_t *p = json_object();
                json_object_set_new(p, "name", cli_json_str(l->plugin));
                json_object_set_new(p, "status", json_string("created"));
                json_object_set_new(p, "note", cli_json_str(l->message));
                json_array_append_new(plugins, p);
            } else {
                cli_line(stdout, "%-8s %s: %s (not kept: the configuration did not load)",
                         "created", l->plugin, l->message);
            }
        }
        for (size_t i = 0; i < load_err.count; i++) {
            const char *p = load_err.items[i].plugin;
            bool seen = false;
            for (size_t j = 0; p && j < i; j++)
                seen =
                    seen || (load_err.items[j].plugin && strcmp(load_err.items[j].plugin, p) == 0);
            if (!p || seen)
                continue;
            total++;
            failed++;
            if (o.json) {
                json_t *pj = json_object();
                json_object_set_new(pj, "name", cli_json_str(p));
                json_object_set_new(pj, "status", json_string("FAILED"));
                json_array_append_new(plugins, pj);
            } else {
                cli_line(stdout, "%-8s %s: not loaded (see the problems below)", "FAILED", p);
            }
        }
    }

    /* Where plugin state lives, and whether it answers (a backend that does
       not is reported, not a failure: the host loads and serves without it). */
    json_t *state_json = NULL;
    if (loaded) {
        cpex_state_status ss;
        memset(&ss, 0, sizeof ss);
        ss.struct_size = (uint32_t)sizeof ss;
        if (cpex_manager_state_status(m, 2.0, &ss) == CPEX_OK) {
            if (o.json) {
                state_json = json_object();
                json_object_set_new(state_json, "backend",
                                    json_string(cpex_state_backend_name(ss.backend)));
                json_object_set_new(state_json, "description", cli_json_str(ss.description));
                json_object_set_new(state_json, "origin", cli_json_str(ss.origin));
                json_object_set_new(state_json, "answers", json_boolean(ss.answers));
                json_object_set_new(state_json, "message", opt_str(ss.message));
            } else if (strcmp(ss.origin, "default") == 0) {
                /* the default memory backend: nothing to report */
            } else if (ss.answers) {
                cli_line(stdout, "%-8s %s (chosen by %s): %s", "state", ss.description, ss.origin,
                         ss.message ? ss.message : "answers");
            } else {
                cli_line(stdout,
                         "%-8s %s (chosen by %s): DOES NOT ANSWER: %s; the host still "
                         "loads and serves, and the state slots fail (each plugin decides) "
                         "until it answers",
                         "state", ss.description, ss.origin, ss.message ? ss.message : "");
            }
            cpex_state_status_cleanup(&ss);
        }
    }

    if (!loaded && !o.json)
        printf("(a configuration loads all or nothing: %s)\n",
               total ? "fix the problems below and check again"
                     : "no plugin was created; fix the problems below and check again");

    /* Every problem, load first, then initialize. */
    const cpex_error *errs[2] = {&load_err, &init_err};
    size_t problem_count = load_err.count + init_err.count;
    if (!o.json && problem_count)
        printf("\nproblems (%zu):\n", problem_count);
    for (int e = 0; e < 2; e++) {
        if (!o.json) {
            cli_print_problems(stdout, errs[e], "  ");
            continue;
        }
        for (size_t i = 0; i < errs[e]->count; i++) {
            const cpex_error_item *it = &errs[e]->items[i];
            json_t *pj = json_object();
            json_object_set_new(pj, "phase", json_string(e == 0 ? "load" : "initialize"));
            json_object_set_new(pj, "plugin", opt_str(it->plugin));
            json_object_set_new(pj, "file", opt_str(it->file));
            json_object_set_new(pj, "line", json_integer(it->line));
            json_object_set_new(pj, "column", json_integer(it->column));
            json_object_set_new(pj, "key", opt_str(it->key));
            json_object_set_new(pj, "code", json_string(cpex_status_name(it->code)));
            json_object_set_new(pj, "message", cli_json_str(it->message ? it->message : ""));
            json_array_append_new(problems, pj);
        }
    }

    /* Warnings: what the manager and the plugins said at warning level. */
    size_t warning_count = 0;
    for (size_t i = 0; i < log.count; i++) {
        const cli_log_line *l = &log.lines[i];
        if (l->level < CPEX_LOG_WARN)
            continue;
        if (!o.json && warning_count++ == 0)
            printf("\nwarnings:\n");
        if (o.json) {
            json_t *w = json_object();
            json_object_set_new(w, "plugin", opt_str(l->plugin));
            json_object_set_new(w, "message", cli_json_str(l->message));
            json_array_append_new(warnings, w);
        } else if (l->plugin) {
            cli_line(stdout, "  - plugin '%s': %s", l->plugin, l->message);
        } else {
            /* The manager's own warnings quote the configuration. */
            const char *quoted[] = {o.config, NULL};
            fputs("  - ", stdout);
            cli_put_message(stdout, l->message, "    ", quoted);
            putchar('\n');
        }
    }

    /* Which plugins an entity's invokes would run, and why. */
    json_t *routing = NULL;
    if (o.route.type && loaded)
        routing = cli_route_explain(m, &o.route, o.json);
    else if (o.route.type && !o.json)
        printf("\nrouting: not shown, the configuration did not load\n");

    bool good = loaded && init_err.count == 0 && failed == 0;
    if (o.json) {
        json_t *doc = json_object();
        json_object_set_new(doc, "config", cli_json_str(o.config));
        json_object_set_new(doc, "ok", json_boolean(good));
        json_object_set_new(doc, "loaded", json_boolean(loaded));
        json_object_set_new(doc, "plugins", plugins);
        if (state_json)
            json_object_set_new(doc, "state", state_json);
        state_json = NULL;
        json_object_set_new(doc, "problems", problems);
        json_object_set_new(doc, "warnings", warnings);
        if (o.route.type)
            json_object_set_new(doc, "routing", routing ? routing : json_null());
        plugins = problems = warnings = NULL;
        cli_print_json(stdout, doc);
        putchar('\n');
        json_decref(doc);
    } else {
        printf("\n%s: %zu plugin%s, %zu ok, %zu failed, %zu problem%s\n", good ? "ok" : "FAILED",
               total, total == 1 ? "" : "s", ok, failed, problem_count,
               problem_count == 1 ? "" : "s");
    }
    json_decref(state_json);
    json_decref(plugins);
    json_decref(problems);
    json_decref(warnings);
    cpex_strv_free(names);
    cpex_error_cleanup(&load_err);
    cpex_error_cleanup(&init_err);
    /* The report is complete: out it goes before plugin code runs again. */
    bool written = cli_stdout_check("cpex check", "the report");
    cli_guard_doing("shutting down the plugins");
    cli_guard_lost("the report above is complete, but the plugins were not shut down");
    cpex_manager_free(m);
    cli_guard_disarm();
    cli_log_cleanup(&log);
    return good && written ? CLI_OK : CLI_FAIL;
}
