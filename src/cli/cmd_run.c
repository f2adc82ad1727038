/*
 * cmd_run.c — `cpex run CONFIG [--hook NAME] [--input FILE|-] [--json]`.
 *
 * Loads the configuration, initializes it, then turns each request line
 * into one cpex_manager_invoke and writes one result line. A bad line gets
 * an error line and the run goes on: one typo in a file of a thousand
 * requests should not hide the other 999 results. Context tables are kept
 * by the lines' "context" ids, so a post hook sees the state its pre hook
 * left.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "contexts.h"
#include "output.h"
#include "request.h"

typedef struct run_opts {
    const char *config;
    const char *hook;
    const char *input;
    bool json;
    bool verbose;
} run_opts;

typedef struct run_stats {
    size_t requests, allowed, denied, errors, soft_errors;
} run_stats;

static int parse_args(int argc, char **argv, run_opts *o)
{
    memset(o, 0, sizeof *o);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = NULL;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            cli_help_run(stdout);
            return -1;
        } else if (strcmp(a, "--json") == 0) {
            o->json = true;
        } else if (strcmp(a, "-v") == 0 || strcmp(a, "--verbose") == 0) {
            o->verbose = true;
        } else if (cli_opt_value(argc, argv, &i, "--hook", &v)) {
            if (!v || !*v)
                return cli_usage_error("run", "--hook needs a hook name, e.g. --hook cmf.tool_pre_invoke");
            o->hook = v;
        } else if (cli_opt_value(argc, argv, &i, "--input", &v)) {
            if (!v || !*v)
                return cli_usage_error("run", "--input needs a file name, or '-' for standard input");
            o->input = v;
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
    return 0;
}

/* Load and initialize; prints every problem. */
static bool load(cpex_manager *m, const char *config)
{
    cpex_error err = CPEX_ERROR_INIT;
    if (cpex_manager_load_file(m, config, &err) != CPEX_OK) {
        fprintf(stderr, "cpex run: cannot load '%s' (%zu problem%s):\n%s\n", config, err.count,
                err.count == 1 ? "" : "s", cpex_error_message(&err));
        fprintf(stderr, "cpex run: 'cpex check %s' lists every plugin and problem\n", config);
        cpex_error_cleanup(&err);
        return false;
    }
    if (cpex_manager_initialize(m, &err) != CPEX_OK) {
        fprintf(stderr, "cpex run: plugins of '%s' failed to initialize:\n%s\n", config,
                cpex_error_message(&err));
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

static void run_one(cpex_manager *m, cli_contexts *contexts, const run_opts *o, size_t lineno,
                    const char *text, size_t len, run_stats *st)
{
    cli_request req;
    char *error = NULL;
    st->requests++;
    if (!cli_request_parse(text, len, o->hook, &req, &error)) {
        st->errors++;
        cli_output_line_error(stdout, o->json, lineno, error);
        free(error);
        return;
    }
    cpex_payload payload = req.is_cmf ? cpex_payload_cmf(req.cmf) : cpex_payload_json(req.json);
    /* The table is consumed by the invoke; the result hands back the next. */
    cpex_context_table *ctx = req.context_id ? cli_contexts_take(contexts, req.context_id) : NULL;
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    cpex_manager_invoke(m, req.hook, &payload, req.extensions, ctx, &res);
    if (res.continue_processing)
        st->allowed++;
    else
        st->denied++;
    st->soft_errors += res.error_count;
    cli_output_result(stdout, o->json, lineno, &req, &res, cpex_manager_has_hooks_for(m, req.hook));
    if (req.context_id) {
        cpex_context_table *next = cpex_pipeline_result_take_context(&res);
        if (next && !cli_contexts_put(contexts, req.context_id, next))
            fprintf(stderr, "cpex run: line %zu: out of memory keeping context '%s'\n", lineno,
                    req.context_id);
    }
    cpex_pipeline_result_cleanup(&res);
    cli_request_cleanup(&req);
    /* Flush per line: a consumer reading through a pipe sees each result
       as it is made, not in 4 KiB bursts. */
    fflush(stdout);
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
        fprintf(stderr, "cpex run: background error: plugin %s [%s]: %s\n",
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
            fprintf(stderr, "cpex run: cannot open input '%s': %s\n", o.input, strerror(errno));
            return CLI_FAIL;
        }
    }

    cli_log log;
    cli_log_init(&log, false, o.verbose ? CPEX_LOG_INFO : CPEX_LOG_WARN);
    cpex_manager *m = cli_manager_new(&log);
    cli_contexts *contexts = cli_contexts_new();
    if (!m || !contexts || !load(m, o.config)) {
        if (!contexts)
            fprintf(stderr, "cpex run: out of memory\n");
        cli_contexts_free(contexts);
        cpex_manager_free(m);
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
        run_one(m, contexts, &o, lineno, line, n, &st);
    }
    bool read_failed = ferror(in) != 0;
    free(line);
    if (read_failed)
        fprintf(stderr, "cpex run: error reading %s after line %zu: %s\n", in_name, lineno,
                strerror(errno));
    st.soft_errors += report_background(m);
    double elapsed = cli_now() - start;

    /* Free the contexts before the manager: their state belongs to its plugins. */
    cli_contexts_free(contexts);
    cpex_manager_free(m); /* shuts down (waits for background work) and unloads */
    cli_log_cleanup(&log);
    if (in != stdin)
        fclose(in);

    fprintf(stderr,
            "summary: %zu request%s, %zu allowed, %zu denied, %zu error%s, %zu soft error%s, "
            "%.1f ms\n",
            st.requests, st.requests == 1 ? "" : "s", st.allowed, st.denied, st.errors,
            st.errors == 1 ? "" : "s", st.soft_errors, st.soft_errors == 1 ? "" : "s",
            elapsed * 1000.0);
    return st.errors || read_failed ? CLI_FAIL : CLI_OK;
}
