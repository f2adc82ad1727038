/*
 * cmd_serve.c — `cpex serve CONFIG [--listen ADDR:PORT | --unix PATH] ...`:
 * the plugin pipeline as an HTTP decision service (docs/serve.md).
 *
 * The order of things:
 *   1. listen first, and answer /healthz with 503 while the configuration
 *      loads and its plugins initialize (which may take a while);
 *   2. load and initialize CONFIG (a failure ends the command: a server
 *      that cannot decide must not pretend to);
 *   3. serve until SIGTERM or SIGINT, reloading CONFIG whenever it
 *      changes (the manager's watcher) and on SIGHUP: a reload publishes
 *      the new configuration at once or, when it fails, nothing (the old
 *      one serves on and the failure is logged); /healthz reports the
 *      generation serving;
 *   4. stop accepting, let the requests in flight finish (at most
 *      --drain-timeout seconds; a second signal cuts it short), close the
 *      connections, wait for background (fire-and-forget) work, free.
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "guard.h"
#include "serve.h"
#include "serve_listen.h"

#define DEFAULT_LISTEN "127.0.0.1:8787"

/* ---- logging ---- */

void serve_log(serve_server *s, int level, const char *fmt, ...)
{
    static const char *const names[] = {"info", "warning", "error"};
    char *text = NULL;
    va_list ap;
    va_start(ap, fmt);
    int n = vasprintf(&text, fmt, ap);
    va_end(ap);
    /* The manager's log sink takes the same lock: lines never interleave. */
    pthread_mutex_lock(&s->log.lock);
    cli_line(stderr, "cpex serve: %s: %s", names[level], n >= 0 ? text : "(out of memory)");
    fflush(stderr);
    pthread_mutex_unlock(&s->log.lock);
    if (n >= 0)
        free(text);
}

/* ---- options ---- */

static unsigned default_threads(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > 64 ? 64 : (unsigned)n;
}

static void opts_init(serve_opts *o)
{
    memset(o, 0, sizeof *o);
    o->listen = DEFAULT_LISTEN;
    o->threads = default_threads();
    o->context_ttl = 300;
    o->max_contexts = CLI_CONTEXTS_DEFAULT_MAX;
    o->max_body = 1 << 20;
    o->max_headers = 100;
    o->max_header_bytes = 16384;
    o->read_timeout = 10;
    o->idle_timeout = 60;
    o->max_connections = 4096;
    o->drain_timeout = 30;
}

/* A count option within [lo, hi]; reports a usage error otherwise. */
static bool count_opt(const char *name, const char *v, size_t lo, size_t hi, size_t *out,
                      const char *example)
{
    size_t n = 0;
    if (!cli_parse_count(v, &n) || n < lo || n > hi) {
        cli_usage_error("serve", "%s needs a number from %zu to %zu, e.g. %s %s", name, lo, hi,
                        name, example);
        return false;
    }
    *out = n;
    return true;
}

static bool seconds_opt(const char *name, const char *v, double *out, const char *example)
{
    if (!cli_parse_seconds(v, out)) {
        cli_usage_error("serve", "%s needs a positive number of seconds, e.g. %s %s", name, name,
                        example);
        return false;
    }
    return true;
}

/* 0: go on; -1: help printed; CLI_USAGE: bad command line (reported). */
static int parse_args(int argc, char **argv, serve_opts *o)
{
    opts_init(o);
    bool listen_given = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = NULL;
        size_t n = 0;
        double d = 0;
        bool ok = true;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            cli_output_is("the help text");
            cli_help_serve(stdout);
            return -1;
        } else if (strcmp(a, "-v") == 0 || strcmp(a, "--verbose") == 0) {
            o->verbose = true;
        } else if (strcmp(a, "--null-endpoint") == 0) {
            o->null_endpoint = true;
        } else if (strcmp(a, "--no-watch") == 0) {
            o->no_watch = true;
        } else if (strcmp(a, "--no-metrics") == 0) {
            o->no_metrics = true;
        } else if (cli_opt_value(argc, argv, &i, "--debounce", &v)) {
            ok = count_opt("--debounce", v, 1, 60000, &o->debounce_ms, "500");
        } else if (cli_opt_value(argc, argv, &i, "--listen", &v)) {
            char host[128], port[8];
            if (!v || !serve_listen_split(v, host, sizeof host, port, sizeof port))
                return cli_usage_error("serve",
                                       "--listen needs ADDR:PORT, e.g. --listen %s, "
                                       "--listen [::1]:8787, --listen 127.0.0.1:0 (a "
                                       "free port)",
                                       DEFAULT_LISTEN);
            o->listen = v;
            listen_given = true;
        } else if (cli_opt_value(argc, argv, &i, "--unix", &v)) {
            if (!v || !*v)
                return cli_usage_error("serve", "--unix needs a socket path, e.g. --unix "
                                                "/run/cpex.sock");
            o->unix_path = v;
        } else if (cli_opt_value(argc, argv, &i, "--threads", &v)) {
            ok = count_opt("--threads", v, 1, 256, &n, "4");
            o->threads = (unsigned)n;
        } else if (cli_opt_value(argc, argv, &i, "--context-ttl", &v)) {
            ok = seconds_opt("--context-ttl", v, &o->context_ttl, "300");
        } else if (cli_opt_value(argc, argv, &i, "--max-contexts", &v)) {
            ok = count_opt("--max-contexts", v, 1, 100000000, &o->max_contexts, "10000");
        } else if (cli_opt_value(argc, argv, &i, "--max-body", &v)) {
            ok = count_opt("--max-body", v, 16, (size_t)1 << 30, &o->max_body, "1048576");
        } else if (cli_opt_value(argc, argv, &i, "--max-headers", &v)) {
            ok = count_opt("--max-headers", v, 1, 10000, &o->max_headers, "100");
        } else if (cli_opt_value(argc, argv, &i, "--max-header-bytes", &v)) {
            ok = count_opt("--max-header-bytes", v, 1024, (size_t)1 << 24, &o->max_header_bytes,
                           "16384");
        } else if (cli_opt_value(argc, argv, &i, "--read-timeout", &v)) {
            ok = seconds_opt("--read-timeout", v, &o->read_timeout, "10");
        } else if (cli_opt_value(argc, argv, &i, "--idle-timeout", &v)) {
            ok = count_opt("--idle-timeout", v, 1, 86400, &n, "60");
            o->idle_timeout = (unsigned)n;
        } else if (cli_opt_value(argc, argv, &i, "--max-connections", &v)) {
            ok = count_opt("--max-connections", v, 1, 1000000, &n, "4096");
            o->max_connections = (unsigned)n;
        } else if (cli_opt_value(argc, argv, &i, "--drain-timeout", &v)) {
            ok = seconds_opt("--drain-timeout", v, &d, "30");
            o->drain_timeout = d;
        } else if (cli_opt_value(argc, argv, &i, "--deny-status", &v)) {
            ok = count_opt("--deny-status", v, 400, 599, &n, "403");
            o->deny_status = (unsigned)n;
        } else if (a[0] == '-' && a[1] != '\0') {
            return cli_usage_error("serve", "unknown option '%s'", a);
        } else if (!o->config) {
            o->config = a;
        } else {
            return cli_usage_error("serve",
                                   "unexpected argument '%s' (the configuration is "
                                   "'%s')",
                                   a, o->config);
        }
        if (!ok)
            return CLI_USAGE;
    }
    if (!o->config)
        return cli_usage_error("serve", "missing CONFIG: the YAML file that lists the plugins");
    if (o->debounce_ms && o->no_watch)
        return cli_usage_error("serve", "--debounce sets the watch's quiet time: it does not go "
                                        "with --no-watch");
    if (listen_given && o->unix_path)
        return cli_usage_error("serve", "--listen and --unix exclude each other: one server "
                                        "listens on one socket");
    return 0;
}

/* Room for every connection: the soft descriptor limit goes up to the hard
   one, and the connection limit down to what fits under it. */
static void fit_descriptors(serve_server *s, serve_opts *o)
{
    enum { RESERVE = 64 }; /* plugins' files, the log, the listening socket */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    rlim_t want = (rlim_t)o->max_connections + RESERVE;
    if (rl.rlim_cur < want) {
        rl.rlim_cur = rl.rlim_max < want ? rl.rlim_max : want;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur < want) {
        unsigned fit = rl.rlim_cur > RESERVE * 2 ? (unsigned)(rl.rlim_cur - RESERVE) : RESERVE;
        serve_log(s, SERVE_WARN,
                  "the descriptor limit (%llu) holds %u connections, not %u: --max-connections "
                  "lowered; raise the limit (ulimit -n) to have more",
                  (unsigned long long)rl.rlim_cur, fit, o->max_connections);
        o->max_connections = fit;
    }
}

/* Every reload attempt (watcher or SIGHUP) and watch change, one line. The
   library's messages never quote the file's text (reload.h). */
static void on_reload(void *user, const cpex_reload_event *ev)
{
    serve_server *s = user;
    const char *src = ev->from_watcher ? "the file changed" : "SIGHUP";
    switch (ev->kind) {
    case CPEX_RELOAD_APPLIED:
        serve_log(s, SERVE_INFO, "reloaded '%s' (%s): generation %llu, %zu plugin%s", ev->path, src,
                  (unsigned long long)ev->generation, cpex_manager_plugin_count(s->manager),
                  cpex_manager_plugin_count(s->manager) == 1 ? "" : "s");
        break;
    case CPEX_RELOAD_FAILED:
        serve_log(s, SERVE_ERROR, "reloading '%s' (%s) failed; generation %llu serves on: %s",
                  ev->path, src, (unsigned long long)ev->generation, ev->message);
        break;
    case CPEX_RELOAD_UNCHANGED:
        if (s->opts->verbose)
            serve_log(s, SERVE_INFO, "'%s' changed on disk but its content did not", ev->path);
        break;
    case CPEX_RELOAD_WATCH_LOST:
        serve_log(s, SERVE_WARN,
                  "lost the watch of '%s' (retrying every second; SIGHUP "
                  "reloads meanwhile): %s",
                  ev->path, ev->message);
        break;
    case CPEX_RELOAD_WATCH_RESTORED:
        serve_log(s, SERVE_INFO, "watching '%s' again", ev->path);
        break;
    }
}

/* ---- the configuration ----
 * serve_load_config loads CONFIG into the manager and initializes it; the
 * server answers the /v1 endpoints from the moment it returns true. Then
 * the manager watches the file (cpex_manager_watch_file), and SIGHUP
 * reloads it (cpex_manager_reload_file); every attempt, from either, is
 * logged by on_reload. */
static bool serve_load_config(serve_server *s)
{
    const char *config = s->opts->config;
    cpex_error err = CPEX_ERROR_INIT;
    cpex_manager_on_reload(s->manager, on_reload, s);
    /* Watching loads the file first (a reload into the empty manager): the
       first generation serves, as in `cpex run`. A watch that cannot start
       for another reason than the file (inotify's limits) is no reason not
       to serve: the file is loaded as such, and SIGHUP still reloads. */
    if (!s->opts->no_watch) {
        if (cpex_manager_watch_file(s->manager, config, (uint32_t)s->opts->debounce_ms, &err) ==
            CPEX_OK)
            goto loaded;
        serve_log(s, SERVE_WARN, "cannot watch '%s' (SIGHUP still reloads it): %s", config,
                  cpex_error_message(&err));
        cpex_error_cleanup(&err);
    }
    if (cpex_manager_load_file(s->manager, config, &err) != CPEX_OK) {
        serve_log(s, SERVE_ERROR, "cannot load '%s' (%zu problem%s):", config, err.count,
                  err.count == 1 ? "" : "s");
        cli_print_problems(stderr, &err, "  ");
        serve_log(s, SERVE_ERROR, "'cpex check %s' lists every plugin and problem", config);
        cpex_error_cleanup(&err);
        return false;
    }
loaded:
    cli_guard_plugins(s->manager);
    if (cpex_manager_initialize(s->manager, &err) != CPEX_OK) {
        serve_log(s, SERVE_ERROR, "plugins of '%s' failed to initialize:", config);
        cli_print_problems(stderr, &err, "  ");
        cpex_error_cleanup(&err);
        return false;
    }
    return true;
}

/* SIGHUP: reload now; on_reload logs the outcome. */
static void reload_now(serve_server *s)
{
    cli_guard_doing("reloading the configuration");
    cpex_error err = CPEX_ERROR_INIT;
    cpex_manager_reload_file(s->manager, s->opts->config, &err);
    cpex_error_cleanup(&err);
    cli_guard_doing("serving requests");
}

/* ---- signals ---- */

static void signal_set(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGHUP);
}

/* Wait for a signal of the set at most `seconds` (negative: for ever);
   returns it, or 0. */
static int wait_signal(const sigset_t *set, double seconds)
{
    if (seconds < 0) {
        int sig = 0;
        return sigwait(set, &sig) == 0 ? sig : 0;
    }
    struct timespec ts = {(time_t)seconds, (long)((seconds - (double)(time_t)seconds) * 1e9)};
    int sig = sigtimedwait(set, NULL, &ts);
    return sig > 0 ? sig : 0;
}

/* Let the requests in flight finish: at most the drain timeout, less if a
   second signal comes. */
static void drain(serve_server *s, const sigset_t *set)
{
    double deadline = cli_now() + s->opts->drain_timeout;
    size_t n = atomic_load(&s->in_flight);
    if (n)
        serve_log(s, SERVE_INFO,
                  "finishing %zu request%s in flight (at most %g s; a second "
                  "signal stops at once)",
                  n, n == 1 ? "" : "s", s->opts->drain_timeout);
    while ((n = atomic_load(&s->in_flight)) > 0) {
        if (cli_now() >= deadline) {
            serve_log(s, SERVE_WARN,
                      "%zu request%s still unfinished after %g s; closing their "
                      "connections",
                      n, n == 1 ? "" : "s", s->opts->drain_timeout);
            return;
        }
        int sig = wait_signal(set, 0.01);
        if (sig && sig != SIGHUP) { /* no reload while stopping */
            serve_log(s, SERVE_WARN, "second signal: closing %zu unfinished request%s now", n,
                      n == 1 ? "" : "s");
            return;
        }
    }
}

/* Report what background (fire-and-forget) handlers failed at. */
static void report_background(serve_server *s)
{
    cpex_error_record *recs = NULL;
    size_t n = cpex_manager_take_background_errors(s->manager, &recs);
    for (size_t i = 0; i < n; i++)
        serve_log(s, SERVE_WARN, "background error: plugin %s [%s]: %s",
                  recs[i].plugin_name ? recs[i].plugin_name : "?",
                  recs[i].code ? recs[i].code : "?", recs[i].message ? recs[i].message : "");
    atomic_fetch_add(&s->metrics.background_errors, n);
    cpex_error_records_free(recs, n);
}

void serve_report_background(serve_server *s) { report_background(s); }

/* Free what `s` holds, in the order the parts depend on each other. */
static void teardown(serve_server *s, serve_listener *l)
{
    serve_http_stop(s);         /* no request runs after this */
    serve_conns_stop(s->conns); /* the housekeeping thread uses the contexts */
    s->conns = NULL;
    if (s->manager) {
        cli_guard_doing("waiting for background handlers");
        if (cpex_manager_wait_background(s->manager, 30.0) != CPEX_OK)
            serve_log(s, SERVE_WARN,
                      "background plugins still running after 30 s; waiting for "
                      "them at shutdown");
        report_background(s);
    }
    /* The contexts before the manager: their state belongs to its plugins. */
    cli_contexts_free(s->contexts);
    s->contexts = NULL;
    cli_guard_doing("shutting down the plugins");
    cpex_manager_free(s->manager); /* shuts down, waits for background work, unloads */
    s->manager = NULL;
    serve_listen_cleanup(l);
}

int cli_cmd_serve(int argc, char **argv)
{
    serve_opts o;
    int rc = parse_args(argc, argv, &o);
    if (rc != 0)
        return rc < 0 ? CLI_OK : rc;

    /* Signals: every thread started from here on inherits the mask, and
       this thread takes them with sigwait. A peer that goes away must not
       kill the process with SIGPIPE. */
    sigset_t set;
    signal_set(&set);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    static serve_server server; /* big (the metrics), and one per process */
    serve_server *s = &server;
    memset(s, 0, sizeof *s);
    s->opts = &o;
    s->listen_fd = -1;
    atomic_init(&s->phase, SERVE_STARTING);
    cli_log_init(&s->log, false, o.verbose ? CPEX_LOG_INFO : CPEX_LOG_WARN);
    fit_descriptors(s, &o);

    cli_guard_arm("cpex serve");
    cli_guard_doing("starting");
    serve_listener l;
    char why[512];
    if (serve_listen_open(o.listen, o.unix_path, &l, why, sizeof why) != 0) {
        serve_log(s, SERVE_ERROR, "%s", why);
        cli_guard_disarm();
        cli_log_cleanup(&s->log);
        return CLI_FAIL;
    }
    snprintf(s->address, sizeof s->address, "%s", l.address);
    s->listen_fd = l.fd;
    s->manager = cli_manager_new_observing(&s->log, false, !o.no_metrics);
    s->contexts = cli_contexts_new(o.max_contexts, o.context_ttl);
    if (!s->manager || !s->contexts || !serve_conns_start(s) || !serve_http_start(s)) {
        if (!s->contexts)
            serve_log(s, SERVE_ERROR, "out of memory");
        teardown(s, &l);
        cli_guard_disarm();
        cli_log_cleanup(&s->log);
        return CLI_FAIL;
    }
    l.fd = -1; /* the daemon's now: it closes it */
    serve_log(s, SERVE_INFO, "listening on %s (%u thread%s); loading '%s'", s->address, o.threads,
              o.threads == 1 ? "" : "s", o.config);
    if (!l.loopback)
        serve_log(s, SERVE_WARN,
                  "%s is reachable from other machines, and the server does not "
                  "authenticate its clients: bind a loopback address or a Unix "
                  "socket unless the network in between is yours",
                  s->address);

    cli_guard_doing("loading the configuration");
    if (!serve_load_config(s)) {
        cli_guard_doing("shutting down after the configuration failed");
        teardown(s, &l);
        cli_guard_disarm();
        cli_log_cleanup(&s->log);
        return CLI_FAIL;
    }
    atomic_store(&s->phase, SERVE_READY);
    if (!cpex_manager_has_hooks_for(s->manager, "cmf.http_request"))
        serve_log(s, SERVE_WARN,
                  "no plugin handles cmf.http_request: /v1/authz answers 503 "
                  "(docs/serve.md)");
    serve_log(s, SERVE_INFO,
              "ready: %zu plugin%s, generation %llu; %sSIGHUP reloads, SIGTERM "
              "or SIGINT stops",
              cpex_manager_plugin_count(s->manager),
              cpex_manager_plugin_count(s->manager) == 1 ? "" : "s",
              (unsigned long long)cpex_manager_generation(s->manager),
              o.no_watch ? "" : "a change of the file or ");
    cli_guard_doing("serving requests");

    int sig;
    while ((sig = wait_signal(&set, -1)) == SIGHUP)
        reload_now(s);
    /* The watcher stops before the server does: no reload during the drain. */
    cpex_manager_watch_stop(s->manager);
    atomic_store(&s->phase, SERVE_STOPPING);
    serve_log(s, SERVE_INFO, "%s: stopping (no new connections)",
              sig == SIGINT ? "SIGINT" : "SIGTERM");
    cli_guard_doing("stopping");
    serve_http_quiesce(s);
    drain(s, &set);
    teardown(s, &l);
    cli_guard_disarm();
    serve_log(s, SERVE_INFO, "stopped");
    cli_log_cleanup(&s->log);
    return CLI_OK;
}
