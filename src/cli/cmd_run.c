/*
 * cmd_run.c — `cpex run CONFIG [--hook NAME] [--input FILE|-] [--json]
 * [--watch [--debounce MS]]`.
 *
 * Loads the configuration, initializes it, then turns each request line
 * into one cpex_manager_invoke and writes one result line. A bad line gets
 * an error line and the run goes on: one typo in a file of a thousand
 * requests should not hide the other 999 results. Context tables are kept
 * by the lines' "context" ids, so a post hook sees the state its pre hook
 * left.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "contexts.h"
#include "guard.h"
#include "output.h"
#include "request.h"

typedef struct run_opts {
    const char *config;
    const char *hook;
    const char *input;
    size_t max_contexts;
    bool json;
    bool verbose;
    bool watch;         /* reload CONFIG whenever it changes */
    size_t debounce_ms; /* 0: the library's default */
    bool stats;         /* metrics on, and the table at the end */
    bool no_records;    /* execution records off */
} run_opts;

typedef struct run_stats {
    size_t requests, allowed, denied, errors, soft_errors;
} run_stats;

static int parse_args(int argc, char **argv, run_opts *o)
{
    memset(o, 0, sizeof *o);
    o->max_contexts = CLI_CONTEXTS_DEFAULT_MAX;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = NULL;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            cli_output_is("the help text");
            cli_help_run(stdout);
            return -1;
        } else if (strcmp(a, "--json") == 0) {
            o->json = true;
        } else if (strcmp(a, "-v") == 0 || strcmp(a, "--verbose") == 0) {
            o->verbose = true;
        } else if (strcmp(a, "--watch") == 0) {
            o->watch = true;
        } else if (cli_opt_value(argc, argv, &i, "--debounce", &v)) {
            if (!cli_parse_count(v, &o->debounce_ms) || o->debounce_ms > 60000)
                return cli_usage_error("run", "--debounce needs milliseconds from 1 to 60000, "
                                              "e.g. --debounce 500");
        } else if (strcmp(a, "--stats") == 0) {
            o->stats = true;
        } else if (strcmp(a, "--no-executions") == 0) {
            o->no_records = true;
        } else if (cli_opt_value(argc, argv, &i, "--hook", &v)) {
            if (!v || !*v)
                return cli_usage_error("run",
                                       "--hook needs a hook name, e.g. --hook cmf.tool_pre_invoke");
            o->hook = v;
        } else if (cli_opt_value(argc, argv, &i, "--input", &v)) {
            if (!v || !*v)
                return cli_usage_error("run",
                                       "--input needs a file name, or '-' for standard input");
            o->input = v;
        } else if (cli_opt_value(argc, argv, &i, "--max-contexts", &v)) {
            if (!cli_parse_count(v, &o->max_contexts))
                return cli_usage_error("run",
                                       "--max-contexts needs a number of context ids "
                                       "of at least 1, e.g. --max-contexts %d",
                                       CLI_CONTEXTS_DEFAULT_MAX);
        } else if (a[0] == '-' && a[1] != '\0') {
            return cli_usage_error("run", "unknown option '%s'", a);
        } else if (!o->config) {
            o->config = a;
        } else {
            return cli_usage_error("run", "unexpected argument '%s' (the configuration is '%s')", a,
                                   o->config);
        }
    }
    if (!o->config)
        return cli_usage_error("run", "missing CONFIG: the YAML file that lists the plugins");
    if (o->debounce_ms && !o->watch)
        return cli_usage_error("run", "--debounce goes with --watch");
    return 0;
}

/* --watch: the reloads that worked, on standard error (the watcher's
 * thread). Refusals and a lost watch are errors the library logs itself. */
static void on_reload(void *user, const cpex_reload_event *ev)
{
    (void)user;
    if (ev->kind == CPEX_RELOAD_APPLIED || ev->kind == CPEX_RELOAD_WATCH_RESTORED)
        cli_line(stderr, "cpex run: %s '%s' (generation %llu)%s%s",
                 ev->kind == CPEX_RELOAD_APPLIED ? "reloaded" : "watch restored", ev->path,
                 (unsigned long long)ev->generation, ev->message[0] ? ": " : "", ev->message);
}

/* Start watching CONFIG (after it loaded): later changes apply between lines. */
static bool start_watch(cpex_manager *m, const run_opts *o)
{
    cpex_error err = CPEX_ERROR_INIT;
    cpex_manager_on_reload(m, on_reload, NULL);
    if (cpex_manager_watch_file(m, o->config, (uint32_t)o->debounce_ms, &err) != CPEX_OK) {
        cli_line(stderr, "cpex run: cannot watch '%s':", o->config);
        cli_print_problems(stderr, &err, "  ");
        cpex_error_cleanup(&err);
        return false;
    }
    cli_output_show_generation(true);
    return true;
}

/* Load and initialize; prints every problem. */
static bool load(cpex_manager *m, const char *config)
{
    cpex_error err = CPEX_ERROR_INIT;
    if (cpex_manager_load_file(m, config, &err) != CPEX_OK) {
        cli_line(stderr, "cpex run: cannot load '%s' (%zu problem%s):", config, err.count,
                 err.count == 1 ? "" : "s");
        cli_print_problems(stderr, &err, "  ");
        cli_line(stderr, "cpex run: 'cpex check %s' lists every plugin and problem", config);
        cpex_error_cleanup(&err);
        return false;
    }
    cli_guard_plugins(m);
    cli_guard_doing("initializing the plugins");
    if (cpex_manager_initialize(m, &err) != CPEX_OK) {
        cli_line(stderr, "cpex run: plugins of '%s' failed to initialize:", config);
        cli_print_problems(stderr, &err, "  ");
        cpex_error_cleanup(&err);
        return false;
    }
    return true;
}

/* Skip blank lines and '#' comments: they are not requests. */
static bool is_blank(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '#')
            return true;
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n')
            return false;
    }
    return true;
}

/* Whether the result of line `lineno` reached standard output. */
static bool written(size_t lineno)
{
    char what[64];
    snprintf(what, sizeof what, "the result of line %zu", lineno);
    return cli_stdout_check("cpex run", what);
}

/* One request line. False when its result could not be written: the
   results are lost, so the run stops. */
static bool run_one(cpex_manager *m, cli_contexts *contexts, const run_opts *o, size_t lineno,
                    const char *text, size_t len, run_stats *st)
{
    cli_request req;
    char *error = NULL;
    st->requests++;
    if (!cli_request_parse(text, len, o->hook, &req, &error)) {
        st->errors++;
        errno = 0;
        cli_output_line_error(stdout, o->json, lineno, error);
        free(error);
        return written(lineno);
    }
    cpex_payload payload = req.is_cmf ? cpex_payload_cmf(req.cmf) : cpex_payload_json(req.json);
    /* The table is consumed by the invoke; the result hands back the next. */
    cpex_context_table *ctx = req.context_id ? cli_contexts_take(contexts, req.context_id) : NULL;
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    char *hook = cli_escape(req.hook);
    cli_guard_hook(req.hook);
    cli_guard_doing("processing line %zu (hook %s)", lineno, hook ? hook : "?");
    cli_guard_lost("the results of line %zu and later are missing", lineno);
    free(hook);
    cpex_manager_invoke(m, req.hook, &payload, req.extensions, ctx, &res);
    if (res.continue_processing)
        st->allowed++;
    else
        st->denied++;
    st->soft_errors += res.error_count;
    errno = 0;
    cli_output_opts out = {o->json, o->verbose};
    cli_output_result(stdout, &out, lineno, &req, &res);
    /* Flush per line: a consumer reading through a pipe sees each result
       as it is made, not in 4 KiB bursts; and a failed write is seen at once. */
    bool ok = written(lineno);
    if (req.context_id) {
        cpex_context_table *next = cpex_pipeline_result_take_context(&res);
        size_t evicted = cli_contexts_evicted(contexts);
        if (next && !cli_contexts_put(contexts, req.context_id, next))
            cli_line(stderr, "cpex run: line %zu: out of memory keeping context '%s'", lineno,
                     req.context_id);
        if (evicted == 0 && cli_contexts_evicted(contexts) > 0)
            fprintf(stderr,
                    "cpex run: line %zu: more than %zu context ids at once; from here on the "
                    "least recently used id is dropped (a later line with it starts with no "
                    "context); --max-contexts sets the limit\n",
                    lineno, o->max_contexts);
    }
    cpex_pipeline_result_cleanup(&res);
    cli_request_cleanup(&req);
    /* Until the next line: background handlers of this one may still run. */
    cli_guard_hook(NULL);
    cli_guard_doing("the run was between line %zu and the next", lineno);
    cli_guard_lost("the results of the lines after line %zu are missing", lineno);
    return ok;
}

/* Report what background (fire-and-forget) handlers failed at. */
static size_t report_background(cpex_manager *m)
{
    if (cpex_manager_wait_background(m, 30.0) != CPEX_OK)
        fprintf(stderr, "cpex run: background plugins still running after 30 s; waiting for "
                        "them at shutdown\n");
    cpex_error_record *recs = NULL;
    size_t n = cpex_manager_take_background_errors(m, &recs);
    for (size_t i = 0; i < n; i++)
        cli_line(stderr, "cpex run: background error: plugin %s [%s]: %s",
                 recs[i].plugin_name ? recs[i].plugin_name : "?", recs[i].code ? recs[i].code : "?",
                 recs[i].message ? recs[i].message : "");
    cpex_error_records_free(recs, n);
    return n;
}

int cli_cmd_run(int argc, char **argv)
{
    run_opts o;
    int rc = parse_args(argc, argv, &o);
    if (rc != 0)
        return rc < 0 ? CLI_OK : rc;

    FILE *in = stdin;
    const char *in_name = "standard input";
    if (o.input && strcmp(o.input, "-") != 0) {
        in = fopen(o.input, "r");
        in_name = o.input;
        if (!in) {
            cli_line(stderr, "cpex run: cannot open input '%s': %s", o.input, strerror(errno));
            return CLI_FAIL;
        }
    }

    /* From here on, a plugin that ends the process makes the run fail. */
    cli_guard_arm("cpex run");
    cli_guard_doing("loading the configuration");
    cli_guard_lost("no request was processed");
    cli_log log;
    cli_log_init(&log, false, o.verbose ? CPEX_LOG_INFO : CPEX_LOG_WARN);
    /* Execution records are on in `cpex run` (off in the library): the
       JSON lines carry them, --verbose shows them. */
    cpex_manager *m = cli_manager_new_observing(&log, !o.no_records, o.stats);
    cli_contexts *contexts = cli_contexts_new(o.max_contexts, 0);
    if (!m || !contexts || !load(m, o.config) || (o.watch && !start_watch(m, &o))) {
        if (!contexts)
            fprintf(stderr, "cpex run: out of memory\n");
        cli_guard_doing("shutting down the plugins after the configuration failed");
        cli_contexts_free(contexts);
        cpex_manager_free(m);
        cli_guard_disarm();
        cli_log_cleanup(&log);
        if (in != stdin)
            fclose(in);
        return CLI_FAIL;
    }

    run_stats st;
    memset(&st, 0, sizeof st);
    double start = cli_now();
    char *line = NULL;
    size_t cap = 0, lineno = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, in)) >= 0) {
        lineno++;
        size_t n = (size_t)len;
        while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            n--;
        if (is_blank(line, n))
            continue;
        if (!run_one(m, contexts, &o, lineno, line, n, &st)) {
            fprintf(stderr,
                    "cpex run: stopped at line %zu: its result was lost, and later "
                    "ones would be too\n",
                    lineno);
            break;
        }
    }
    bool read_failed = ferror(in) != 0;
    free(line);
    if (read_failed)
        cli_line(stderr, "cpex run: error reading %s after line %zu: %s", in_name, lineno,
                 strerror(errno));
    cli_guard_hook(NULL);
    cli_guard_doing("waiting for background handlers after the last line (%zu)", lineno);
    cli_guard_lost("the summary is missing");
    st.soft_errors += report_background(m);
    double elapsed = cli_now() - start;
    if (o.stats) {
        cpex_stats *stats = NULL;
        if (cpex_manager_stats(m, &stats) == CPEX_OK)
            cli_output_stats(stderr, stats);
        else
            fprintf(stderr, "cpex run: out of memory reading the stats\n");
        cpex_stats_free(stats);
    }

    /* Free the contexts before the manager: their state belongs to its plugins. */
    cli_guard_doing("shutting down the plugins");
    size_t evicted = cli_contexts_evicted(contexts);
    cli_contexts_free(contexts);
    cpex_manager_free(m); /* shuts down (waits for background work) and unloads */
    cli_guard_disarm();
    cli_log_cleanup(&log);
    if (in != stdin)
        fclose(in);

    /* Dropped context ids only when there were any: the usual line stays as it was. */
    char dropped[96] = "";
    if (evicted)
        snprintf(dropped, sizeof dropped, ", %zu context%s evicted (--max-contexts %zu)", evicted,
                 evicted == 1 ? "" : "s", o.max_contexts);
    fprintf(stderr,
            "summary: %zu request%s, %zu allowed, %zu denied, %zu error%s, %zu soft error%s%s, "
            "%.1f ms\n",
            st.requests, st.requests == 1 ? "" : "s", st.allowed, st.denied, st.errors,
            st.errors == 1 ? "" : "s", st.soft_errors, st.soft_errors == 1 ? "" : "s", dropped,
            elapsed * 1000.0);
    return st.errors || read_failed || cli_stdout_failed() ? CLI_FAIL : CLI_OK;
}
