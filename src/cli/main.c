/*
 * main.c — the `cpex` command: dispatch to a subcommand.
 *
 *   cpex run CONFIG ...      cmd_run.c
 *   cpex check CONFIG ...    cmd_check.c
 *   cpex inspect LIBRARY ... cmd_inspect.c
 *   cpex serve CONFIG ...    cmd_serve.c
 *
 * Whatever the command, its standard output is flushed and closed here and
 * a failure to write it is an exit code of 1 (io.c).
 */
#include <string.h>

#include "cli.h"

static int dispatch(int argc, char **argv, const char **name, const char **what)
{
    *name = "cpex";
    *what = "the output";
    if (argc < 2) {
        cli_help_main(stderr);
        return CLI_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "help") == 0) {
        *what = "the help text";
        /* "cpex help run" is what people type after "cpex --help". */
        if (argc > 2 && strcmp(cmd, "help") == 0) {
            if (strcmp(argv[2], "run") == 0)
                cli_help_run(stdout);
            else if (strcmp(argv[2], "check") == 0)
                cli_help_check(stdout);
            else if (strcmp(argv[2], "inspect") == 0)
                cli_help_inspect(stdout);
            else if (strcmp(argv[2], "serve") == 0)
                cli_help_serve(stdout);
            else {
                cli_line(stderr, "cpex: no command '%s'; commands: run, check, inspect, serve",
                         argv[2]);
                return CLI_USAGE;
            }
            return CLI_OK;
        }
        cli_help_main(stdout);
        return CLI_OK;
    }
    if (strcmp(cmd, "-V") == 0 || strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
        *what = "the version";
        cli_print_version(stdout);
        return CLI_OK;
    }
    if (strcmp(cmd, "run") == 0) {
        *name = "cpex run";
        *what = "the results";
        return cli_cmd_run(argc - 1, argv + 1);
    }
    if (strcmp(cmd, "check") == 0) {
        *name = "cpex check";
        *what = "the report";
        return cli_cmd_check(argc - 1, argv + 1);
    }
    if (strcmp(cmd, "inspect") == 0) {
        *name = "cpex inspect";
        *what = "the description of the library";
        return cli_cmd_inspect(argc - 1, argv + 1);
    }
    if (strcmp(cmd, "serve") == 0) {
        *name = "cpex serve";
        *what = "the help text";
        return cli_cmd_serve(argc - 1, argv + 1);
    }
    if (cmd[0] == '-')
        cli_line(stderr, "cpex: unknown option '%s'", cmd);
    else
        cli_line(stderr, "cpex: unknown command '%s'; commands: run, check, inspect, serve", cmd);
    fprintf(stderr, "Run 'cpex --help' for usage.\n");
    return CLI_USAGE;
}

int main(int argc, char **argv)
{
    const char *name, *what;
    int rc = dispatch(argc, argv, &name, &what);
    return cli_close_output(name, what, rc);
}
