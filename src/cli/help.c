/* help.c — the usage texts (docs/cli.md says the same at more length). */
#include "cli.h"

void cli_help_main(FILE *out)
{
    fputs("usage: cpex COMMAND [ARGS]\n"
          "\n"
          "The libcpex plugin runtime's command line tool.\n"
          "\n"
          "commands:\n"
          "  run CONFIG [--hook NAME] [--input FILE|-] [--json] [--max-contexts N] [--verbose]\n"
          "             [--stats] [--no-executions] [--watch [--debounce MS]]\n"
          "                      load CONFIG, run one hook invocation per JSON request line\n"
          "  check CONFIG [--json] [--tool NAME|--resource URI|--prompt NAME|--llm NAME\n"
          "               [--scope S] [--tag T]... [--hook NAME]]\n"
          "                      load and initialize every plugin; list them and every problem;\n"
          "                      with an entity, which plugins its invokes run and why\n"
          "  inspect LIBRARY [--json]\n"
          "                      describe a plugin library without creating any plugin\n"
          "  serve CONFIG [--listen ADDR:PORT | --unix PATH] [--threads N] [limits]\n"
          "                      answer decisions over HTTP: /v1/invoke, /v1/authz (nginx,\n"
          "                      Envoy, Traefik forward auth), /healthz, /metrics\n"
          "\n"
          "options:\n"
          "  -h, --help          this text (cpex COMMAND --help: the command's)\n"
          "  -V, --version       versions of the tool, the library and the plugin ABI\n"
          "\n"
          "exit codes: 0 success, 1 the work failed (a plugin failed to load, a request\n"
          "was malformed, ...), 2 usage error.\n",
          out);
}

void cli_help_run(FILE *out)
{
    fputs(
        "usage: cpex run CONFIG [--hook NAME] [--input FILE|-] [--json] [--max-contexts N]\n"
        "                [--verbose] [--stats] [--no-executions] [--watch [--debounce MS]]\n"
        "\n"
        "Load CONFIG (YAML: every plugin, static and lib:), initialize it, then read\n"
        "requests, one JSON object per line, and write one result per request.\n"
        "\n"
        "  --hook NAME     hook for request lines that do not name one\n"
        "  --input FILE    read requests from FILE ('-' or no option: standard input)\n"
        "  --json          one JSON result object per line instead of the readable form\n"
        "  --max-contexts N\n"
        "                  keep the context tables of at most N ids (default 10000); one\n"
        "                  more drops the least recently used, which starts over if it\n"
        "                  comes back; the summary counts the ids dropped\n"
        "  -v, --verbose   also print the plugins' and the manager's info messages, and\n"
        "                  one line per plugin call (its execution record)\n"
        "  --stats         count per plugin and hook; print a table (calls, outcomes,\n"
        "                  p50/p99 latency) to standard error at the end\n"
        "  --no-executions leave the execution records out (on by default)\n"
        "  --watch         reload CONFIG whenever it changes (edits, renames, ConfigMap\n"
        "                  swaps) while requests are read; each result shows the\n"
        "                  generation it ran on, each reload is reported on stderr,\n"
        "                  and a bad edit keeps the configuration in use\n"
        "  --debounce MS   --watch: wait for MS ms without changes before reading\n"
        "                  (default 500)\n"
        "\n"
        "request line:\n"
        "  {\"hook\":\"cmf.tool_pre_invoke\",          (or --hook)\n"
        "   \"payload\":{CMF message},               (any JSON for non-cmf hooks)\n"
        "   \"payload_type\":\"cmf\"|\"json\",           (optional; default: cmf for cmf.* hooks)\n"
        "   \"extensions\":{...},                    (optional)\n"
        "   \"context\":\"req-1\"}                     (optional: pre and post hooks of one\n"
        "                                           request share plugin state through it)\n"
        "Blank lines and lines starting with '#' are skipped.\n"
        "\n"
        "result line (--json):\n"
        "  "
        "{\"line\":N,\"hook\":...,\"context\":...,\"decision\":\"allow\"|\"deny\",\"violation\":{.."
        ".},\n"
        "   \"payload_modified\":bool,\"payload\":{final},\"extensions\":{changed parts},\n"
        "   \"metadata\":{...},\"errors\":[soft errors],\"executions\":[one per plugin call],\n"
        "   \"generation\":N}\n"
        "  a bad line: {\"line\":N,\"error\":\"cause\"}; the run goes on with the next line.\n"
        "\n"
        "A summary goes to standard error. Exit code 0 when every line was processed\n"
        "(allowed or denied), 1 when the configuration failed or any line was bad,\n"
        "2 on a usage error.\n",
        out);
}

void cli_help_check(FILE *out)
{
    fputs("usage: cpex check CONFIG [--json]\n"
          "       cpex check CONFIG --tool NAME|--resource URI|--prompt NAME|--llm NAME\n"
          "                         [--scope S] [--tag T]... [--hook NAME] [--json]\n"
          "\n"
          "Load CONFIG and initialize every plugin without running any hook. Prints one\n"
          "line per plugin (name, kind, resolved library, reported name and version,\n"
          "hooks wired, mode, priority), then every problem found, each naming its\n"
          "plugin, then the warnings.\n"
          "\n"
          "With an entity, also prints, per hook (or for --hook only), the plugins an\n"
          "invoke for that entity would run, in order, and why: the route chosen (its\n"
          "matcher, line and specificity), the groups applied, where each plugin comes\n"
          "from, and whether it is a route's own instance (a config override).\n"
          "\n"
          "  --json          one JSON document instead of the readable form (the routing\n"
          "                  report under \"routing\")\n"
          "  --tool NAME, --resource URI, --prompt NAME, --llm NAME\n"
          "                  the entity (meta entity type and name) to route\n"
          "  --scope S       its scope (meta scope)\n"
          "  --tag T         a runtime tag (meta tags); repeat for more\n"
          "  --hook NAME     only this hook\n"
          "\n"
          "Exit code 0 when every plugin loaded and initialized, 1 otherwise, 2 on a\n"
          "usage error.\n",
          out);
}

void cli_help_inspect(FILE *out)
{
    fputs("usage: cpex inspect LIBRARY [--json]\n"
          "\n"
          "Describe a plugin library without creating any plugin: its ABI version and\n"
          "this host's, whether they are compatible, each entry of its manifest (entry\n"
          "name, display name, version, description, hooks), the entry symbols it\n"
          "exports, and what to write in `kind:` to use each entry. A library without a\n"
          "manifest is described from its exported symbols.\n"
          "\n"
          "LIBRARY is a path; a bare name such as 'rate_limit' is also looked up as\n"
          "lib<name>.so in the plugin directory of this build.\n"
          "\n"
          "  --json          one JSON document instead of the readable form\n"
          "\n"
          "The library is opened (dlopen) and its constructors, if any, run; no entry\n"
          "point is called. Exit code 0 when the library is usable by this host, 1 when\n"
          "it is not (not a library, invalid manifest, incompatible ABI, missing entry\n"
          "symbol), 2 on a usage error.\n",
          out);
}

void cli_help_serve(FILE *out)
{
    fputs("usage: cpex serve CONFIG [--listen ADDR:PORT | --unix PATH] [--threads N]\n"
          "                  [--context-ttl SECONDS] [--max-contexts N] [limits] [--verbose]\n"
          "\n"
          "Load CONFIG, initialize it, and answer over HTTP (docs/serve.md):\n"
          "  POST /v1/invoke   a `cpex run` request object -> the `cpex run --json` result\n"
          "                    object (400 with {\"error\"} for a bad request)\n"
          "  ANY  /v1/authz    forward auth: the original request (nginx X-Original-URI,\n"
          "                    Traefik X-Forwarded-Uri, Envoy /v1/authz/<path>) runs the\n"
          "                    hook cmf.http_request; allow 200, deny 403 (or the status\n"
          "                    the violation asks for) with x-cpex-violation\n"
          "  GET  /healthz     200 when loaded and initialized, else 503; the generation\n"
          "                    serving and how reloads went\n"
          "  GET  /metrics     Prometheus text: requests, latency, decisions, reloads,\n"
          "                    and per plugin and hook: calls, outcomes, latency\n"
          "\n"
          "  --listen ADDR:PORT   TCP address (default 127.0.0.1:8787; port 0: any free)\n"
          "  --unix PATH          listen on a Unix socket instead\n"
          "  --threads N          HTTP threads (default: the number of CPUs, at most 64)\n"
          "  --context-ttl SECONDS   a context id unused this long is dropped (default 300)\n"
          "  --max-contexts N     context ids kept at once (default 10000)\n"
          "  --deny-status CODE   the status of every /v1/authz denial (nginx needs 403)\n"
          "  --no-watch           do not reload CONFIG when it changes (SIGHUP still does)\n"
          "  --debounce MS        quiet time before a changed CONFIG is read (default 500)\n"
          "  --no-metrics         no per-plugin metrics (the server's own stay)\n"
          "  -v, --verbose        also log the plugins' and the manager's info messages\n"
          "limits (a request past one is refused, or its connection closed):\n"
          "  --max-body BYTES (1048576)        --max-headers N (100)\n"
          "  --max-header-bytes BYTES (16384)  --read-timeout SECONDS (10, a whole request)\n"
          "  --idle-timeout SECONDS (60)       --max-connections N (4096)\n"
          "  --drain-timeout SECONDS (30: to finish requests in flight at shutdown)\n"
          "  --null-endpoint      also answer /v1/null with 200, invoking nothing (benchmarks)\n"
          "\n"
          "A change of CONFIG, or SIGHUP, reloads it: the new configuration serves at once,\n"
          "or, when it fails, the old one serves on and the log says why. SIGTERM or\n"
          "SIGINT stops: no new connections, requests in flight finish, background work\n"
          "drains.\n"
          "Exit code 0 after a clean stop, 1 when the configuration or the socket failed,\n"
          "2 on a usage error.\n",
          out);
}

void cli_print_version(FILE *out)
{
    fprintf(out, "cpex %s (libcpex %s, plugin ABI %u.%u)\n", CPEX_VERSION_STRING, cpex_version(),
            (unsigned)CPEX_ABI_VERSION_MAJOR, (unsigned)CPEX_ABI_VERSION_MINOR);
}
